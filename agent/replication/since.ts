import { int8, tid, type Tid } from "./answers.js";
import type { TableInfo } from "./catalog.js";
import { MAX_CHANGED_SHARE, type TablePlan } from "./delta.js";
import { XMIN_HASH } from "./memo.js";
import { on, type Session } from "./session.js";
import { ident, literal, qualified } from "./sql.js";

/**
 * A changed table's delta found from what the master wrote since the last run, without hashing
 * a row — for the common case of a configuration change on the master while the slave sat still.
 *
 * Given: at the last run both nodes held the same rows, the master's as of a snapshot whose xmin
 * the memo kept (`since`), and the slave's table has not changed since (its exact marker says so).
 * A row the master shows now whose xmin is older than `since` was committed before that snapshot,
 * so it was visible in it and is on the slave, unchanged: row versions are immutable. Every other
 * row — xmin `since` or newer, found by one scan with a cheap filter — is a *candidate*: its key's
 * row on the slave is deleted (found through the primary key's index) and the master's copied in.
 * Afterwards the slave holds the master's rows plus, possibly, rows the master deleted whose key
 * no candidate has. Those are caught by counting, before anything is applied: the slave's row count
 * after the plan must be the master's, else the table goes through the hashing delta instead
 * (null). An over-wide filter (a wrapped xid of a very old frozen row looks young) only adds
 * candidates, which are replaced by themselves.
 */

/**
 * Past this many candidates the hashing delta is used instead: the candidates' keys are held in
 * memory and sent back to the slave, each at most MAX_KEY_BYTES.
 */
const MAX_CANDIDATES = 20_000;
const MAX_KEY_BYTES = 8192;

/** The memo's `since`: the master's snapshot xmin as the 32-bit xid a row's xmin is compared with. */
export async function snapshotXmin(s: Session): Promise<string> {
  const r = await s.client.query<{ x: string }>(
    `SELECT (pg_snapshot_xmin(pg_current_snapshot())::text::int8 % 4294967296)::text AS x`,
  );
  const x = int8(r.rows[0]?.x);
  if (x === null || BigInt(x) < 0n) throw new Error("a malformed snapshot xmin");
  return x;
}

export interface SinceResult {
  /** The delta, or null: more written than a delta is worth, or rows deleted that no candidate names. */
  plan: Extract<TablePlan, { method: "delta" }> | null;
  /** The master's row count in the run's snapshot. */
  masterRows: number;
  /** The slave rows the plan deletes: the sum of their shares of the table's marker (memo.ts). */
  removedSum: bigint;
}

export async function sincePlan(
  master: Session,
  slave: Session,
  schema: string,
  /** The slave's catalog entry (its key columns' types are the ones the keys are read back as). */
  t: TableInfo,
  since: string,
  /** The slave's row count, as the memo left it. */
  slaveRows: number,
): Promise<SinceResult> {
  const table = qualified(schema, t.name);
  const pk = t.primaryKey.map(ident);
  // The key as JSON of its typed values, so that the slave reads it back into its own column types.
  const key = `json_build_object(${t.primaryKey.map((c, i) => `${literal(c)}, t.${pk[i]}`).join(", ")})::text`;
  // The row count and the candidates, in one round trip; the count's row is the one without a place.
  const found = await on(master, `rows written since the last run in table ${t.name}`, () =>
    master.client.query<{ c: string | null; k: string | null; n: string | null }>(
      `SELECT NULL::text AS c, NULL::text AS k, count(*)::text AS n FROM ONLY ${table} AS t
       UNION ALL
       (SELECT t.ctid::text, ${key}, NULL FROM ONLY ${table} AS t WHERE age(t.xmin) <= age($1::text::xid) LIMIT ${MAX_CANDIDATES + 1})`,
      [since],
    ),
  );
  const counts = found.rows.filter((r) => r.c === null);
  const n = counts.length === 1 ? int8(counts[0]!.n) : null;
  if (n === null) throw refused(master, `a malformed row count ${JSON.stringify(counts).slice(0, 120)}`);
  const masterRows = Number(n);
  const none = { plan: null, masterRows, removedSum: 0n };
  const candidates = found.rows.filter((r) => r.c !== null);
  if (candidates.length > MAX_CANDIDATES) return none;
  const add: Tid[] = [];
  const keys: unknown[] = [];
  for (const row of candidates) {
    const at = tid(row.c);
    const k = typeof row.k === "string" && row.k.length <= MAX_KEY_BYTES ? parseKey(row.k, t.primaryKey) : null;
    if (!at || !k) throw refused(master, `a malformed candidate row ${JSON.stringify(row).slice(0, 120)}`);
    add.push(at);
    keys.push(k);
  }
  if (add.length > MAX_CHANGED_SHARE * Math.max(masterRows, 1)) return none;
  // The keys travel as one bound JSON parameter, read back as the slave's own key column types
  // (format_type() from the slave's catalog).
  const types = t.primaryKey.map((c) => t.columns.find((x) => x.name === c)?.type);
  if (types.some((x) => !x)) return none;
  const record = pk.map((c, i) => `${c} ${types[i]}`).join(", ");
  const gone = add.length
    ? await on(slave, `rows to replace in table ${t.name}`, async () => {
        const r = await slave.client.query<{ c: string; h: string }>(
          `SELECT t.ctid::text AS c, ${XMIN_HASH}::text AS h FROM ONLY ${table} AS t WHERE (${pk.map((c) => `t.${c}`).join(", ")}) IN (SELECT ${pk.map((c) => `k.${c}`).join(", ")} FROM json_to_recordset($1::json) AS k(${record}))`,
          [JSON.stringify(keys)],
        );
        return r.rows;
      })
    : [];
  const remove: Tid[] = [];
  let removedSum = 0n;
  for (const row of gone) {
    const at = tid(row.c);
    const h = int8(row.h);
    if (!at || h === null)
      throw new Error(`${slave.label}: a malformed row place ${JSON.stringify(row).slice(0, 120)}`);
    remove.push(at);
    removedSum += BigInt(h);
  }
  if (slaveRows - remove.length + add.length !== masterRows) return none;
  return { plan: { method: "delta", remove, add }, masterRows, removedSum };
}

/** A candidate's key: an object with exactly the key's columns. */
function parseKey(text: string, columns: string[]): Record<string, unknown> | null {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) return null;
  const o = v as Record<string, unknown>;
  const names = Object.keys(o);
  if (names.length !== columns.length || !columns.every((c) => names.includes(c))) return null;
  return o;
}

const refused = (s: Session, what: string) => new Error(`${s.label}: ${what}; refused, nothing applied`);

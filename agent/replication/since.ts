import { int8, tid, type Tid } from "./answers.js";
import type { TableInfo } from "./catalog.js";
import { MAX_CHANGED_SHARE, type TablePlan } from "./delta.js";
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

/** Past this many candidates the hashing delta is used instead: the plan's tids are held in memory. */
const MAX_CANDIDATES = 100_000;

/** The memo's `since`: the master's snapshot xmin as the 32-bit xid a row's xmin is compared with. */
export async function snapshotXmin(s: Session): Promise<string> {
  const r = await s.client.query<{ x: string }>(
    `SELECT (pg_snapshot_xmin(pg_current_snapshot())::text::int8 % 4294967296)::text AS x`,
  );
  const x = int8(r.rows[0]?.x);
  if (x === null || BigInt(x) < 0n) throw new Error("a malformed snapshot xmin");
  return x;
}

export async function sincePlan(
  master: Session,
  slave: Session,
  schema: string,
  t: TableInfo,
  since: string,
  rows: { master: number; slave: number },
): Promise<Extract<TablePlan, { method: "delta" }> | null> {
  const table = qualified(schema, t.name);
  const pk = t.primaryKey.map(ident);
  // The key as JSON of its typed values, so that the slave reads it back into its own column types.
  const key = `json_build_object(${t.primaryKey.map((c, i) => `${literal(c)}, t.${pk[i]}`).join(", ")})::text`;
  const found = await on(master, `rows written since the last run in table ${t.name}`, () =>
    master.client.query<{ c: string; k: string }>(
      `SELECT t.ctid::text AS c, ${key} AS k FROM ONLY ${table} AS t WHERE age(t.xmin) <= age($1::text::xid) LIMIT ${MAX_CANDIDATES + 1}`,
      [since],
    ),
  );
  if (found.rows.length > MAX_CANDIDATES) return null;
  const add: Tid[] = [];
  const keys: unknown[] = [];
  for (const row of found.rows) {
    const at = tid(row.c);
    const k = typeof row.k === "string" && row.k.length <= 65_536 ? parseKey(row.k, t.primaryKey) : null;
    if (!at || !k)
      throw new Error(
        `${master.label}: a malformed candidate row ${JSON.stringify(row).slice(0, 120)}; refused, nothing applied`,
      );
    add.push(at);
    keys.push(k);
  }
  if (add.length > MAX_CHANGED_SHARE * Math.max(rows.master, 1)) return null;
  // The keys travel as one bound JSON parameter, read back by the slave's own row type.
  const remove = add.length
    ? await on(slave, `rows to replace in table ${t.name}`, async () => {
        const r = await slave.client.query<{ c: string }>(
          `SELECT t.ctid::text AS c FROM ONLY ${table} AS t WHERE (${pk.map((c) => `t.${c}`).join(", ")}) IN (SELECT ${pk.map((c) => `k.${c}`).join(", ")} FROM json_populate_recordset(NULL::${table}, $1::json) AS k)`,
          [JSON.stringify(keys)],
        );
        return r.rows.map((x) => tid(x.c) ?? badSlave(x));
      })
    : [];
  return rows.slave - remove.length + add.length === rows.master ? { method: "delta", remove, add } : null;
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

function badSlave(row: unknown): never {
  throw new Error(`a malformed row place ${JSON.stringify(row).slice(0, 120)}`);
}

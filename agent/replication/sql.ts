import { ident, literal, qualified } from "../pg.js";
import { tidText, type Tid } from "./answers.js";
import type { TableInfo } from "./catalog.js";

/**
 * The SQL text of a run, built from catalog names: pure, quoted, and the same on both nodes so
 * that what is hashed and what is copied line up column for column.
 */

export type CopyFormat = "binary" | "text";

export { ident, literal, qualified };

/** The columns that travel: all but generated ones, which the slave computes itself. By name, on both sides. */
export function copyColumns(t: TableInfo): string[] {
  return t.columns.filter((c) => !c.generated).map((c) => c.name);
}

function columnList(cols: string[]): string {
  // A table with no column at all still has rows (zero-width ones): COPY without a list handles it.
  return cols.length ? ` (${cols.map(ident).join(", ")})` : "";
}

/**
 * A table's fingerprint, computed server-side in one sequential scan: the row count and the sum
 * of a 64-bit hash of each row's text. A sum is order-free, so no sort and no giant string (an
 * md5 over string_agg of 1M rows would sort and build hundreds of MB); sum(int8) accumulates in
 * 128-bit integers, so it is cheap. Equal tables give equal fingerprints; a changed, added or
 * removed row changes it except with probability ~2^-64. The row text depends on session
 * settings (time zone, date style…): `SESSION_SETTINGS` pins them on both nodes.
 */
export function fingerprintSql(schema: string, t: TableInfo): string {
  return `SELECT count(*)::int8 AS n, coalesce(sum(${rowHash(t)}), 0)::text AS h FROM ONLY ${qualified(schema, t.name)} AS t`;
}

/** A row's text hashed to 64 bits, over the columns that travel. The text tells NULL (`()`) from '' (`("")`). */
function rowHash(t: TableInfo): string {
  const cols = copyColumns(t);
  const row = cols.length ? `ROW(${cols.map((c) => `t.${ident(c)}`).join(", ")})::text` : `''`;
  return `hashtextextended(${row}, 0)`;
}

/**
 * The primary key's text hashed to 64 bits: where a row belongs, the same on both nodes whatever
 * their collations. A one-column key (nearly all of them) is hashed as the column's own text, a
 * third of the cost of a ROW's; several columns go as a ROW, whose text keeps them apart.
 */
function keyHash(t: TableInfo): string {
  const cols = t.primaryKey.map((c) => `t.${ident(c)}`);
  return `hashtextextended(${cols.length === 1 ? `${cols[0]}::text` : `ROW(${cols.join(", ")})::text`}, 0)`;
}

/** The low `bits` bits of the key hash, as an int8 mask: a number of our own, never a node's. */
function bucketMask(bits: number): string {
  if (!Number.isInteger(bits) || bits < 0 || bits > 62) throw new Error(`bucket bits out of range: ${bits}`);
  return ((1n << BigInt(bits)) - 1n).toString();
}

/**
 * A delta's first level: the fingerprint per bucket of rows (the key hash's low `bits` bits),
 * one row per non-empty bucket. Equal buckets hold equal rows, as for the fingerprint.
 */
export function bucketDigestSql(schema: string, t: TableInfo, bits: number): string {
  return perBucketSql(schema, t, bits, rowHash(t));
}

/** Per non-empty bucket of key hashes: its number, row count and the sum of `hash` over its rows. */
function perBucketSql(schema: string, t: TableInfo, bits: number, hash: string): string {
  return `SELECT (${keyHash(t)} & ${bucketMask(bits)})::text AS b, count(*)::text AS n, sum(${hash})::text AS s FROM ONLY ${qualified(schema, t.name)} AS t GROUP BY 1`;
}

/**
 * A delta's second level: each row of the buckets listed in `$1` (int8[], buckets of `bits`
 * bits; 0 bits is one bucket, `{0}`, holding every row) as its key hash, row hash and ctid. The
 * row hash is computed only for the rows that pass the filter.
 */
export function rowDigestSql(schema: string, t: TableInfo, bits: number): string {
  return `SELECT k.h::text AS h, ${rowHash(t)}::text AS r, t.ctid::text AS c FROM ONLY ${qualified(schema, t.name)} AS t, LATERAL (SELECT ${keyHash(t)} AS h) AS k WHERE (k.h & ${bucketMask(bits)}) = ANY($1::int8[])`;
}

/**
 * The master's rows at the given places, as COPY: COPY takes no bound parameters, so the tids
 * are written into the text — from their two checked integers, never from the master's text.
 * Read in the run's snapshot, a tid names exactly the row version seen there.
 */
export function copyRowsOutSql(schema: string, t: TableInfo, format: CopyFormat, tids: Tid[]): string {
  const cols = copyColumns(t).map((c) => `t.${ident(c)}`);
  const list = `{${tids.map((x) => `"${tidText(x)}"`).join(",")}}`;
  return `COPY (SELECT ${cols.join(", ")} FROM ONLY ${qualified(schema, t.name)} AS t WHERE t.ctid = ANY(${literal(list)}::tid[])) TO STDOUT WITH (FORMAT ${format})`;
}

/** The slave's rows at the places in `$1` (tid[], a bound parameter). */
export function deleteRowsSql(schema: string, table: string): string {
  return `DELETE FROM ONLY ${qualified(schema, table)} WHERE ctid = ANY($1::tid[])`;
}

/**
 * A whole table as COPY. `ordered`: in primary-key order, which the slave's load pays back many
 * times over: each key then lands at the right edge of its index (PostgreSQL's fast path for
 * ascending inserts) instead of a descent to a random leaf — a quarter less of the slave's
 * time on tables keyed by uuid, for the price of a sort on the master.
 */
export function copyOutSql(schema: string, t: TableInfo, format: CopyFormat, ordered = false): string {
  const cols = copyColumns(t);
  if (ordered && t.primaryKey.length) {
    const list = cols.map((c) => `t.${ident(c)}`).join(", ");
    const key = t.primaryKey.map((c) => `t.${ident(c)}`).join(", ");
    return `COPY (SELECT ${list} FROM ONLY ${qualified(schema, t.name)} AS t ORDER BY ${key}) TO STDOUT WITH (FORMAT ${format})`;
  }
  return `COPY ${qualified(schema, t.name)}${columnList(cols)} TO STDOUT WITH (FORMAT ${format})`;
}

/**
 * FREEZE when the table was truncated in this transaction: rows land already frozen and
 * all-visible, so the next fingerprint scan on the slave does not rewrite every page to set hint
 * bits. Identity columns need no OVERRIDING clause: COPY FROM always takes the given values.
 */
export function copyInSql(schema: string, t: TableInfo, format: CopyFormat, freeze: boolean): string {
  const opts = [`FORMAT ${format}`, ...(freeze ? ["FREEZE"] : [])].join(", ");
  return `COPY ${qualified(schema, t.name)}${columnList(copyColumns(t))} FROM STDIN WITH (${opts})`;
}

/** Pinned on both nodes so that a row's text (hashed by the fingerprint, and text COPY) means the same on each. */
export const SESSION_SETTINGS: Record<string, string> = {
  search_path: "pg_catalog",
  TimeZone: "UTC",
  DateStyle: "ISO, YMD",
  IntervalStyle: "postgres",
  extra_float_digits: "3",
  bytea_output: "hex",
  client_encoding: "UTF8",
};

/** One query reading every listed sequence's state (row `i` is `names[i]`), or null when there is none. */
export function sequencesSql(schema: string, names: string[]): string | null {
  if (!names.length) return null;
  return names
    .map((n, i) => `SELECT ${i}::int AS i, last_value::text AS last_value, is_called FROM ${qualified(schema, n)}`)
    .join(" UNION ALL ");
}

/**
 * How to empty the tables about to be reloaded. TRUNCATE is instant but PostgreSQL refuses it
 * while a table outside the TRUNCATE list has a foreign key to it (even with triggers off), so a
 * table referenced from a table we keep (unchanged, excluded, another schema) is emptied with
 * DELETE instead — FK triggers do not fire under session_replication_role = replica. Dropping a
 * table from the TRUNCATE set can disqualify the tables it references in turn: iterate to a
 * fixed point. Cycles among reloaded tables are fine: they are truncated together.
 */
export function planClear(
  schema: string,
  copied: string[],
  referencedBy: Map<string, Set<string>>,
): { truncate: string[]; delete: string[] } {
  const truncate = new Set(copied);
  for (let changed = true; changed; ) {
    changed = false;
    for (const t of [...truncate]) {
      const refs = referencedBy.get(t) ?? new Set<string>();
      const outside = [...refs].some((q) => !(q.startsWith(`${schema}.`) && truncate.has(q.slice(schema.length + 1))));
      if (outside) {
        truncate.delete(t);
        changed = true;
      }
    }
  }
  return { truncate: copied.filter((t) => truncate.has(t)), delete: copied.filter((t) => !truncate.has(t)) };
}

/**
 * Which tables of a clear plan (planClear) can be left as they are because they are empty on the
 * slave (`empty`, checked under a lock that keeps writers out): all of them, except an empty
 * table whose foreign key points at a table still truncated — PostgreSQL refuses to TRUNCATE a
 * table referenced from one outside the TRUNCATE list, however empty that one is. Keeping one
 * in the list can keep others: iterate to a fixed point.
 */
export function skipEmpty(
  schema: string,
  plan: { truncate: string[]; delete: string[] },
  empty: Set<string>,
  referencedBy: Map<string, Set<string>>,
): Set<string> {
  const skip = new Set([...plan.truncate, ...plan.delete].filter((t) => empty.has(t)));
  for (let changed = true; changed; ) {
    changed = false;
    for (const t of plan.truncate) {
      if (skip.has(t)) continue;
      for (const q of referencedBy.get(t) ?? []) {
        const name = q.startsWith(`${schema}.`) ? q.slice(schema.length + 1) : null;
        if (name !== null && skip.delete(name) && plan.truncate.includes(name)) changed = true;
      }
    }
  }
  return skip;
}

/** Of the listed tables (row `i` is `names[i]`), the positions of those holding any row; null when none is listed. */
export function nonEmptySql(schema: string, names: string[]): string | null {
  if (!names.length) return null;
  return names
    .map((n, i) => `SELECT ${i}::int AS i WHERE EXISTS (SELECT 1 FROM ONLY ${qualified(schema, n)})`)
    .join(" UNION ALL ");
}

/** No writer may touch these tables until the transaction ends; readers may. */
export function lockAgainstWritersSql(schema: string, names: string[]): string {
  return `LOCK TABLE ${names.map((n) => `ONLY ${qualified(schema, n)}`).join(", ")} IN EXCLUSIVE MODE`;
}

import { int8 } from "./answers.js";
import type { TableInfo } from "./catalog.js";
import { bucketDigests } from "./delta.js";
import type { Session } from "./session.js";
import { qualified, xminBucketSql } from "./sql.js";

/**
 * A shortcut past the fingerprints, kept in memory by the caller (the daemon) between runs.
 *
 * A row's text hash costs most of a no-change run. A table's *marker* is far cheaper: its row
 * count, a 64-bit sum of a hash of each row version's xmin, and its storage file number. Every
 * INSERT, UPDATE or COPY writes row versions with a new xmin, a DELETE changes the count,
 * TRUNCATE/VACUUM FULL change the file. After a successful run, master (in its snapshot) and
 * slave (as committed) hold the same rows, and the memo records both markers. On the next run a
 * table whose two markers are both unchanged is still equal and is skipped unread; any other
 * goes through the fingerprint as usual. Markers are only comparable with themselves (xids are
 * per server), never across nodes. A new process starts with an empty memo: fingerprints for all.
 */
export interface ReplicationMemo {
  readonly markers: Map<string, string>;
  /**
   * Per table (same key as markers) that a delta was last run on: each node's xmin digest per
   * bucket of key hashes (xminBucketSql), taken when both nodes held the same rows. Next time,
   * only the buckets whose digest moved on either node can differ: the delta's first level
   * without hashing any row's text.
   */
  readonly buckets: Map<string, XminBuckets>;
}

export interface XminBuckets {
  bits: number;
  master: Map<string, string>;
  slave: Map<string, string>;
}

export function createReplicationMemo(): ReplicationMemo {
  return { markers: new Map(), buckets: new Map() };
}

/**
 * A row version's xmin as the 32-bit number it is, without printing it: `age()` is an integer
 * subtraction from the transaction's stable latest xid, and age('3') gives that xid back (3 is
 * the first normal xid). Half the cost of `xmin::text::int8` on a scan. Special xids (frozen
 * before 9.4) have no age: they map to 2, which is what they are.
 */
const XMIN = `CASE WHEN age(t.xmin) = 2147483647 THEN 2 ELSE (age('3'::xid)::int8 + 3 - age(t.xmin)) & 4294967295 END`;

/**
 * Every listed table's marker in one statement (row `i` is `tables[i]`): one round trip and one
 * plan per node instead of one per table. The tables' names are bound parameters (for their
 * storage file numbers), never SQL text.
 */
function markersSql(schema: string, tables: string[]): string {
  return tables
    .map(
      (name, i) =>
        `SELECT ${i}::int AS i, (SELECT count(*)::text || '/' || coalesce(sum(hashint8extended(${XMIN}, 0)), 0)::text || '/' || pg_relation_filenode($${i + 1}::regclass)::text FROM ONLY ${qualified(schema, name)} AS t) AS m`,
    )
    .join(" UNION ALL ");
}

/** The markers of `tables`, in their order. */
export async function markers(s: Session, schema: string, tables: string[]): Promise<string[]> {
  if (!tables.length) return [];
  const r = await s.client.query<{ i: number; m: string }>(
    markersSql(schema, tables),
    tables.map((t) => qualified(schema, t)),
  );
  const out: string[] = [];
  for (const row of r.rows) out[row.i] = row.m;
  if (out.length !== tables.length || out.some((m) => typeof m !== "string"))
    throw new Error(`markers: ${r.rows.length} answers for ${tables.length} tables`);
  return out;
}

/** One node's xmin digests per bucket of `t` (see ReplicationMemo.buckets), checked. */
export async function xminBuckets(
  s: Session,
  schema: string,
  t: TableInfo,
  bits: number,
): Promise<Map<string, string>> {
  return bucketDigests(bits, (await s.client.query(xminBucketSql(schema, t, bits, XMIN))).rows);
}

/** A marker's row count (the master's marker is the master's text: only ever read as a number). */
export function markerRows(marker: string): number | null {
  const n = int8(marker.slice(0, marker.indexOf("/")));
  return n === null ? null : Number(n);
}

/** The memo key of one table between one master and one slave. */
export function memoKey(scope: string, table: string): string {
  return `${scope}\u0000${table}`;
}

/**
 * The markers of tables reloaded in the current transaction, computed instead of scanned: their
 * visible rows are exactly the `rows` this transaction copied, each with this transaction's xid
 * as xmin (FREEZE keeps the raw xmin), so the hash sum is rows × hash(xid). The storage file is
 * the one TRUNCATE gave (or the old one, after DELETE). Same text as markersSql gives.
 */
export async function reloadedMarkers(
  s: Session,
  schema: string,
  tables: { table: string; rows: number }[],
): Promise<string[]> {
  if (!tables.length) return [];
  const cols = tables.map((_, i) => `pg_relation_filenode($${i + 1}::regclass)::text AS f${i}`);
  const r = await s.client.query<Record<string, string>>(
    `SELECT hashint8extended((pg_current_xact_id()::text::int8 % 4294967296), 0)::text AS h, ${cols.join(", ")}`,
    tables.map((t) => qualified(schema, t.table)),
  );
  const row = r.rows[0]!;
  const h = BigInt(row.h!);
  return tables.map((t, i) => `${t.rows}/${(BigInt(t.rows) * h).toString()}/${row[`f${i}`]}`);
}

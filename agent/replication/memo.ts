import { int8 } from "./answers.js";
import type { Session } from "./session.js";
import { qualified } from "./sql.js";

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
}

export function createReplicationMemo(): ReplicationMemo {
  return { markers: new Map() };
}

/** The table's name as `$1` (for its storage file number): a bound parameter, never SQL text. */
export function markerSql(schema: string, table: string): string {
  return `SELECT count(*)::text || '/' || coalesce(sum(hashint8extended(t.xmin::text::int8, 0)), 0)::text || '/' || pg_relation_filenode($1::regclass)::text AS m FROM ONLY ${qualified(schema, table)} AS t`;
}

export async function marker(s: Session, schema: string, table: string): Promise<string> {
  return (await s.client.query<{ m: string }>(markerSql(schema, table), [qualified(schema, table)])).rows[0]!.m;
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
 * the one TRUNCATE gave (or the old one, after DELETE). Same text as markerSql gives.
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

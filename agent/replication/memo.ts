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
 *
 * Reading a marker is still a scan. Between exact runs (`verifyEveryMs`) only the tables whose
 * write counters moved have their markers read (activity.ts); the others are left unread.
 */
export interface ReplicationMemo {
  readonly markers: Map<string, string>;
  /** Per table (same key as markers): each node's activity (activity.ts) after the last run that read the table. */
  readonly activity: Map<string, { m: string; s: string }>;
  /**
   * Per table: the xmin of the master's snapshot at the last run that left both nodes with the
   * same rows (see since.ts): what the master wrote since is every row version not older.
   */
  readonly since: Map<string, string>;
  /** Epoch ms of the last run that read every table's markers, whatever the activity said. */
  verifiedAt: number;
}

export function createReplicationMemo(): ReplicationMemo {
  return { markers: new Map(), activity: new Map(), since: new Map(), verifiedAt: 0 };
}

/**
 * A row version's xmin as the 32-bit number it is, without printing it: `age()` is an integer
 * subtraction from the transaction's stable latest xid, and age('3') gives that xid back (3 is
 * the first normal xid). Half the cost of `xmin::text::int8` on a scan. Special xids (frozen
 * before 9.4) have no age: they map to 2, which is what they are.
 */
const XMIN = `CASE WHEN age(t.xmin) = 2147483647 THEN 2 ELSE (age('3'::xid)::int8 + 3 - age(t.xmin)) & 4294967295 END`;
/** A row version's share of its table's marker (the rows of table alias `t`). */
export const XMIN_HASH = `hashint8extended(${XMIN}, 0)`;

/**
 * Every listed table's marker in one statement (row `i` is `tables[i]`): one round trip and one
 * plan per node instead of one per table. The tables' names are bound parameters (for their
 * storage file numbers), never SQL text.
 */
function markersSql(schema: string, tables: string[]): string {
  return tables
    .map(
      (name, i) =>
        `SELECT ${i}::int AS i, (SELECT count(*)::text || '/' || coalesce(sum(${XMIN_HASH}), 0)::text || '/' || pg_relation_filenode($${i + 1}::regclass)::text FROM ONLY ${qualified(schema, name)} AS t) AS m`,
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

/** The master's marker of a table whose markers were left unread: equal to no marker read. */
export const UNKNOWN_MARKER = "?";

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
 * as xmin (FREEZE keeps the raw xmin): an empty table's marker after a delta adding them
 * (markerAfterDelta). The storage file is the one TRUNCATE gave (or the old one, after DELETE).
 */
export async function reloadedMarkers(
  s: Session,
  schema: string,
  tables: { table: string; rows: number }[],
  own: bigint,
): Promise<string[]> {
  if (!tables.length) return [];
  const r = await s.client.query<{ f: string }>(
    `SELECT pg_relation_filenode(u.r)::text AS f FROM unnest($1::text[]::regclass[]) WITH ORDINALITY AS u(r, i) ORDER BY u.i`,
    [tables.map((t) => qualified(schema, t.table))],
  );
  if (r.rows.length !== tables.length)
    throw new Error(`markers: ${r.rows.length} storage files for ${tables.length} tables`);
  return tables.map((t, i) => markerAfterDelta(`0/0/${r.rows[i]?.f}`, { rows: 0, sum: 0n }, t.rows, own)!);
}

/** The share in a marker of each row this transaction writes (its xid's hash, as markersSql takes it). */
export async function ownRowHash(s: Session): Promise<bigint> {
  const r = await s.client.query<{ h: string }>(
    `SELECT hashint8extended((pg_current_xact_id()::text::int8 % 4294967296), 0)::text AS h`,
  );
  return BigInt(r.rows[0]!.h);
}

/**
 * A slave table's marker after a delta of the rows written since (since.ts), computed instead of
 * scanned: the marker it had (`before`), less the rows deleted (their count and the sum of their
 * shares, read as they were deleted), plus the rows copied in, each written by this transaction
 * (`own`, ownRowHash). DELETE and COPY keep the storage file. Null when `before` is not a marker.
 */
export function markerAfterDelta(
  before: string,
  removed: { rows: number; sum: bigint },
  added: number,
  own: bigint,
): string | null {
  const [n, sum, file] = before.split("/");
  if (int8(n) === null || sum === undefined || !/^-?[0-9]{1,40}$/.test(sum) || file === undefined) return null;
  const rows = BigInt(n!) - BigInt(removed.rows) + BigInt(added);
  return `${rows}/${BigInt(sum) - removed.sum + BigInt(added) * own}/${file}`;
}

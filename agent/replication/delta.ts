import { int8, integerSum, tid, type Tid } from "./answers.js";
import type { TableInfo } from "./catalog.js";
import { onBoth, type Session } from "./session.js";
import { bucketDigestSql, rowDigestSql } from "./sql.js";

/**
 * A changed table's differing rows, found without reading it whole, the way rsync finds blocks.
 *
 * Each row is placed by a 64-bit hash of its primary key's text: the same on both nodes whatever
 * their collations, and nothing is ever ordered. Level 1: per bucket of the hash's low bits
 * (about 16 rows each), both nodes answer the bucket's row count and sum of row hashes — the
 * fingerprint, per bucket. Level 2: within the buckets that differ, both nodes list their rows as
 * (key hash, row hash, ctid). Per key hash, where the two sides' row hashes differ (as multisets),
 * the slave's rows of that key hash are deleted and the master's copied in: an updated row is one
 * delete and one insert, a changed key touches two key hashes.
 *
 * Exact whatever the hashes do: what is replaced is "every row whose key hash is h" on both
 * nodes, so afterwards each h holds the master's rows or rows whose digests matched them. Only a
 * 64-bit digest collision could hide a difference, as with the fingerprint. All deletes come
 * before all inserts, so the table is at every point a subset of the master's: no unique
 * constraint can trip. The ctids stay valid until used: the master's name row versions of the
 * run's snapshot (which cannot be pruned while it is held), the slave's table is locked against
 * writers before level 1 (see run.ts).
 */

/**
 * Below this many rows a table is reloaded whole: its COPY costs about what the delta's extra
 * round trips (lock, two digest levels, delete, copy) do.
 */
export const SMALL_TABLE_ROWS = 1000;
/**
 * Above this share of differing rows a table is reloaded whole: TRUNCATE + COPY FREEZE writes
 * each row once and leaves no dead rows, and the delta's digests have cost a scan already.
 */
export const MAX_CHANGED_SHARE = 0.2;
const ROWS_PER_BUCKET = 16;
/** Fewer buckets than 2^this: the rows are listed at once, a level of buckets would not save a round trip's worth. */
const MIN_BUCKET_BITS = 8;
/** Caps level 1's answer (2^16 rows per node); past a million rows the buckets just grow. */
const MAX_BUCKET_BITS = 16;

export type TablePlan =
  | { method: "reload"; why: string }
  | {
      method: "delta";
      /** The slave's rows to delete. */
      remove: Tid[];
      /** The master's rows to copy in. */
      add: Tid[];
    };

/** Why this table goes whole, before reading anything more (null: try a delta). */
export function reloadReason(
  master: TableInfo,
  slavePrimaryKey: string[],
  rows: { master: number | null; slave: number },
): string | null {
  if (rows.master === null || rows.slave === 0) return "empty on the slave";
  if (!master.primaryKey.length) return "no primary key";
  if (master.primaryKey.join("\0") !== slavePrimaryKey.join("\0")) return "primary keys differ between the nodes";
  const n = Math.max(rows.master, rows.slave);
  if (n < SMALL_TABLE_ROWS) return `small (${n} rows)`;
  const gap = Math.abs(rows.master - rows.slave);
  if (gap > MAX_CHANGED_SHARE * n) return tooMany(`at least ${gap}`, n);
  return null;
}

/**
 * The bits to fingerprint a table per bucket with (see fingerprint.ts), for a table expected to
 * have changed that a delta would be tried on; null: a plain fingerprint.
 */
export function fingerprintBits(
  master: TableInfo,
  slavePrimaryKey: string[],
  rows: { master: number; slave: number },
): number | null {
  if (reloadReason(master, slavePrimaryKey, rows) !== null) return null;
  const bits = bucketBits(Math.max(rows.master, rows.slave));
  return bits > 0 ? bits : null;
}

const tooMany = (changed: string, n: number) =>
  `${changed} of ${n} rows differ (over ${Math.round(MAX_CHANGED_SHARE * 100)} %)`;

/** Level 1's bucket bits for a table of `rows` rows; 0: no level 1, every row is in bucket 0. */
export function bucketBits(rows: number): number {
  const bits = Math.floor(Math.log2(Math.max(rows, 1) / ROWS_PER_BUCKET));
  return bits < MIN_BUCKET_BITS ? 0 : Math.min(bits, MAX_BUCKET_BITS);
}

/**
 * How many rows differ, judged from how many of the 2^bits buckets do. Key hashes spread the
 * differing rows evenly, so with k rows per bucket and a share x of rows differing, a bucket
 * differs with probability 1 − (1 − x)^k: solved for x. At least one row per differing bucket;
 * every bucket differing says "as good as all of them". Only weighs delta against reload.
 */
export function changedRows(differing: number, bits: number, rows: number): number {
  const buckets = 2 ** bits;
  if (differing >= buckets) return rows;
  const perBucket = rows / buckets;
  const share = 1 - (1 - differing / buckets) ** (1 / perBucket);
  return Math.max(differing, share * rows);
}

/** One node's level-1 answer, checked: bucket → `count/sum`. */
export function bucketDigests(bits: number, rows: unknown[]): Map<string, string> {
  const out = new Map<string, string>();
  const top = 1n << BigInt(bits);
  for (const row of rows) {
    const r = row as { b?: unknown; n?: unknown; s?: unknown };
    const b = int8(r.b);
    const n = int8(r.n);
    const s = integerSum(r.s);
    if (b === null || BigInt(b) < 0n || BigInt(b) >= top || out.has(b) || n === null || s === null)
      throw refused(`a malformed bucket digest ${JSON.stringify(row).slice(0, 120)}`);
    out.set(b, `${n}/${s}`);
  }
  return out;
}

/** The buckets whose digests differ, or that one node has and the other not. */
export function differingBuckets(master: Map<string, string>, slave: Map<string, string>): string[] {
  const out = [...master.keys()].filter((b) => slave.get(b) !== master.get(b));
  for (const b of slave.keys()) if (!master.has(b)) out.push(b);
  return out;
}

export interface RowDigest {
  /** Key hash. */
  h: string;
  /** Row hash. */
  r: string;
  at: Tid;
}

/** One node's level-2 answer, checked. */
function rowDigests(rows: unknown[]): RowDigest[] {
  return rows.map((row) => {
    const x = row as { h?: unknown; r?: unknown; c?: unknown };
    const h = int8(x.h);
    const r = int8(x.r);
    const at = tid(x.c);
    if (h === null || r === null || at === null)
      throw refused(`a malformed row digest ${JSON.stringify(row).slice(0, 120)}`);
    return { h, r, at };
  });
}

/** Per key hash, both sides' rows compared as multisets of row hashes: what to delete on the slave, what to copy in. */
export function rowDelta(master: RowDigest[], slave: RowDigest[]): { remove: Tid[]; add: Tid[] } {
  const group = (rows: RowDigest[]) => {
    const m = new Map<string, RowDigest[]>();
    for (const r of rows) {
      const same = m.get(r.h);
      if (same) same.push(r);
      else m.set(r.h, [r]);
    }
    return m;
  };
  const hashes = (rows: RowDigest[] | undefined) =>
    (rows ?? [])
      .map((r) => r.r)
      .sort()
      .join(",");
  const m = group(master);
  const s = group(slave);
  const remove: Tid[] = [];
  const add: Tid[] = [];
  for (const h of new Set([...m.keys(), ...s.keys()])) {
    if (hashes(m.get(h)) === hashes(s.get(h))) continue;
    for (const r of s.get(h) ?? []) remove.push(r.at);
    for (const r of m.get(h) ?? []) add.push(r.at);
  }
  return { remove, add };
}

/**
 * What to do with one changed table whose reloadReason is null: the delta, or a reload when too
 * many rows differ. Reads only; the slave's table must already be locked against writers.
 */
export async function diffTable(
  master: Session,
  slave: Session,
  schema: string,
  t: TableInfo,
  rows: { master: number; slave: number },
  /** Level 1 when the fingerprint already did it. */
  level1?: { bits: number; differing: string[] },
): Promise<TablePlan> {
  const n = Math.max(rows.master, rows.slave);
  const limit = MAX_CHANGED_SHARE * n;
  const bits = level1?.bits ?? bucketBits(n);
  let buckets = level1?.differing ?? ["0"];
  if (bits > 0) {
    if (!level1) {
      const sql = bucketDigestSql(schema, t, bits);
      const [m, s] = await onBoth(master, slave, "bucket digests", async (x) =>
        bucketDigests(bits, (await x.client.query(sql)).rows),
      );
      buckets = differingBuckets(m, s);
    }
    const estimate = changedRows(buckets.length, bits, n);
    if (estimate > limit) return { method: "reload", why: tooMany(`about ${Math.round(estimate)}`, n) };
    // Equal buckets after a differing fingerprint: the slave changed before its lock. Nothing to do.
    if (!buckets.length) return { method: "delta", remove: [], add: [] };
  }
  const sql = rowDigestSql(schema, t, bits);
  const [m, s] = await onBoth(master, slave, "row digests", async (x) =>
    rowDigests((await x.client.query(sql, [buckets])).rows),
  );
  const delta = rowDelta(m, s);
  const changed = Math.max(delta.remove.length, delta.add.length);
  if (changed > limit) return { method: "reload", why: tooMany(`${changed}`, n) };
  return { method: "delta", ...delta };
}

const refused = (what: string) => new Error(`${what}; refused, nothing applied`);

import type { TableInfo } from "./catalog.js";
import { bucketDigests, differingBuckets } from "./delta.js";
import { on, type Session } from "./session.js";
import { tablesWithRows } from "./clear.js";
import { bucketDigestSql, fingerprintSql } from "./sql.js";

/**
 * Decides which tables changed: fingerprint each table on both nodes (see fingerprintSql) and
 * copy only those that differ. The slave runs one table ahead of the master, so the two scans
 * overlap. A slave table that is empty needs no fingerprint, only "has the master any row": the
 * empty ones are found first, in one statement per node for all of them, which makes the first
 * full sync free of fingerprinting.
 *
 * A table expected to have changed and big enough for a delta (the caller gives its bucket
 * bits) is fingerprinted per bucket instead: the same scan is then also the delta's first level
 * (see delta.ts), which would otherwise read every row a second time.
 */

/** A changed table: its row counts, which decide between a delta and a reload (master: unknown when the slave's is empty). */
export interface Changed {
  master: number | null;
  slave: number;
  /** When fingerprinted per bucket: the buckets that differ. */
  level1?: { bits: number; differing: string[] };
}

interface Fingerprint {
  rows: number;
  hash: string;
  buckets?: Map<string, string>;
}

function fingerprint(s: Session, schema: string, t: TableInfo, bits: number | null): Promise<Fingerprint> {
  return on(s, `table ${t.name}`, () => scan(s, schema, t, bits));
}

async function scan(s: Session, schema: string, t: TableInfo, bits: number | null): Promise<Fingerprint> {
  if (bits !== null) {
    const buckets = bucketDigests(bits, (await s.client.query(bucketDigestSql(schema, t, bits))).rows);
    let rows = 0n;
    for (const d of buckets.values()) rows += BigInt(d.slice(0, d.indexOf("/")));
    return { rows: Number(rows), hash: "", buckets };
  }
  const r = await s.client.query<{ n: string; h: string }>(fingerprintSql(schema, t));
  const row = r.rows[0]!;
  return { rows: Number(row.n), hash: row.h };
}

export async function changedTables(
  master: Session,
  slave: Session,
  schema: string,
  tables: { table: TableInfo; bits: number | null }[],
): Promise<Map<string, Changed>> {
  const changed = new Map<string, Changed>();
  // Per bucket, the slave's table is known not to be empty (see fingerprintBits).
  const unsure = tables.filter((x) => x.bits === null).map((x) => x.table.name);
  const held = new Set(await tablesWithRows(slave, schema, unsure));
  const empty = unsure.filter((n) => !held.has(n));
  for (const n of await tablesWithRows(master, schema, empty)) changed.set(n, { master: null, slave: 0 });
  const scanned = tables.filter((x) => x.bits !== null || held.has(x.table.name));
  const onSlave: Promise<Fingerprint>[] = [];
  let chain: Promise<unknown> = Promise.resolve();
  for (const { table, bits } of scanned) {
    const p = chain.then(() => fingerprint(slave, schema, table, bits));
    p.catch(() => undefined); // awaited below; a failure must not surface as unhandled meanwhile
    onSlave.push(p);
    chain = p;
  }
  let onMaster: Promise<Fingerprint> | null = null;
  try {
    for (const [i, { table: t, bits }] of scanned.entries()) {
      // Per bucket, both nodes scan at once.
      onMaster = bits !== null ? fingerprint(master, schema, t, bits) : null;
      onMaster?.catch(() => undefined);
      const s = await onSlave[i]!;
      // Emptied since it was found holding rows (nothing is locked yet): as if found empty.
      if (s.rows === 0 && !onMaster) {
        if ((await tablesWithRows(master, schema, [t.name])).length) changed.set(t.name, { master: null, slave: 0 });
        continue;
      }
      const m = await (onMaster ?? fingerprint(master, schema, t, bits));
      const counts = { master: m.rows, slave: s.rows };
      if (m.buckets && s.buckets) {
        const differing = differingBuckets(m.buckets, s.buckets);
        if (differing.length) changed.set(t.name, { ...counts, level1: { bits: bits!, differing } });
      } else if (m.rows !== s.rows || m.hash !== s.hash) changed.set(t.name, counts);
    }
  } finally {
    // Never leave a query running behind us.
    await Promise.all([chain.catch(() => undefined), onMaster?.catch(() => undefined)]);
  }
  return changed;
}

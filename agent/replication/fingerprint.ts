import type { TableInfo } from "./catalog.js";
import type { Session } from "./session.js";
import { anyRowSql, fingerprintSql } from "./sql.js";

/**
 * Decides which tables changed: fingerprint each table on both nodes (see fingerprintSql) and
 * copy only those that differ. The slave runs one table ahead of the master, so the two scans
 * overlap; a slave table that is empty needs no master fingerprint, only "has the master any
 * row" — which makes the first full sync nearly free of fingerprinting.
 */

/** A changed table's row counts, which decide between a delta and a reload (master: unknown when the slave's is empty). */
export interface RowCounts {
  master: number | null;
  slave: number;
}

export interface Fingerprint {
  rows: number;
  hash: string;
}

async function fingerprint(s: Session, schema: string, t: TableInfo): Promise<Fingerprint> {
  const r = await s.client.query<{ n: string; h: string }>(fingerprintSql(schema, t));
  const row = r.rows[0]!;
  return { rows: Number(row.n), hash: row.h };
}

export async function changedTables(
  master: Session,
  slave: Session,
  schema: string,
  tables: TableInfo[],
): Promise<Map<string, RowCounts>> {
  const onSlave: Promise<Fingerprint>[] = [];
  let chain: Promise<unknown> = Promise.resolve();
  for (const t of tables) {
    const p = chain.then(() => fingerprint(slave, schema, t));
    p.catch(() => undefined); // awaited below; a failure must not surface as unhandled meanwhile
    onSlave.push(p);
    chain = p;
  }
  const changed = new Map<string, RowCounts>();
  try {
    for (const [i, t] of tables.entries()) {
      const s = await onSlave[i]!;
      if (s.rows === 0) {
        const r = await master.client.query<{ any: boolean }>(anyRowSql(schema, t.name));
        if (r.rows[0]!.any) changed.set(t.name, { master: null, slave: 0 });
      } else {
        const m = await fingerprint(master, schema, t);
        if (m.rows !== s.rows || m.hash !== s.hash) changed.set(t.name, { master: m.rows, slave: s.rows });
      }
    }
  } finally {
    await chain.catch(() => undefined); // never leave a query running on the slave behind us
  }
  return changed;
}

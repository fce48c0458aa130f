import type pg from "pg";
import { FailbackError, qualified } from "./db.js";

/**
 * The ledger on the master: one row per slave row already copied back, written in the same
 * transaction as the copy itself. A run that dies is rolled back with its ledger rows; a retry
 * skips exactly what a committed run recorded. Never emptied by reconciliation.
 *
 * `origin` names the slave, `tbl` the table (schema.name), `origin_key` the row (its slave id, or
 * its natural key as JSON), `master_id` the id the master gave it (null for tables without one).
 */

export interface LedgerRef {
  schema: string;
  table: string;
}

export const ledgerDdl = (l: LedgerRef) => `CREATE TABLE IF NOT EXISTS ${qualified(l.schema, l.table)} (
  origin text NOT NULL,
  tbl text NOT NULL,
  origin_key text NOT NULL,
  master_id bigint,
  reconciled_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (origin, tbl, origin_key)
)`;

/** Creates the ledger if missing and allowed to; checked first, so an existing one needs no CREATE right. */
export async function ensureLedger(master: pg.Client, l: LedgerRef & { create: boolean }): Promise<void> {
  const res = await master.query<{ oid: string | null }>("SELECT to_regclass($1)::text AS oid", [
    qualified(l.schema, l.table),
  ]);
  if (res.rows[0]?.oid != null) return;
  if (!l.create) {
    throw new FailbackError(
      `the ledger table ${l.schema}.${l.table} is missing on the master and ledger.create is false: create it at install (see agent/failback/README.md)`,
    );
  }
  try {
    await master.query(ledgerDdl(l));
  } catch (err) {
    throw new FailbackError(
      `cannot create the ledger table ${l.schema}.${l.table} on the master (${(err as Error).message}): grant CREATE on schema ${l.schema} to the failback user, or create it at install`,
    );
  }
}

/** Which of these origin keys a committed run already copied: origin_key → master_id (or null). */
export async function lookup(
  master: pg.Client,
  l: LedgerRef,
  origin: string,
  tbl: string,
  keys: string[],
): Promise<Map<string, string | null>> {
  const res = await master.query<{ k: string; m: string | null }>(
    `SELECT origin_key AS k, master_id::text AS m FROM ${qualified(l.schema, l.table)}
      WHERE origin = $1 AND tbl = $2 AND origin_key = ANY($3::text[])`,
    [origin, tbl, keys],
  );
  return new Map(res.rows.map((r) => [r.k, r.m]));
}

export async function record(
  master: pg.Client,
  l: LedgerRef,
  origin: string,
  tbl: string,
  keys: string[],
  masterIds: (string | null)[],
): Promise<void> {
  if (keys.length === 0) return;
  await master.query(
    `INSERT INTO ${qualified(l.schema, l.table)} (origin, tbl, origin_key, master_id)
     SELECT $1::text, $2::text, k, m FROM unnest($3::text[], $4::bigint[]) AS u(k, m)`,
    [origin, tbl, keys, masterIds],
  );
}

import type pg from "pg";
import type { SequenceRef } from "./select.js";

/**
 * What one node's schema looks like, read from pg_catalog: the tables with their columns, the
 * sequences with their owning table, the primary keys, and which tables point at which through foreign keys.
 * Read on the master inside the snapshot, on the slave inside the apply transaction.
 */

export interface Column {
  name: string;
  /** format_type(), e.g. `character varying(80)`; with search_path = pg_catalog, user types come schema-qualified. */
  type: string;
  /** GENERATED ALWAYS AS (…) STORED: computed by the slave itself, never copied. */
  generated: boolean;
}

export interface TableInfo {
  name: string;
  /** Sorted by name: the column order on disk may differ between nodes, the copy does not care. */
  columns: Column[];
  /** The primary key's columns in key order; empty when the table has none. */
  primaryKey: string[];
  /** The server's estimate of its row count (pg_class.reltuples), null until first vacuumed or analyzed. */
  estimatedRows: number | null;
}

export interface Catalog {
  tables: Map<string, TableInfo>;
  sequences: SequenceRef[];
  /** table name (in the schema) → qualified names of the tables whose foreign keys reference it. */
  referencedBy: Map<string, Set<string>>;
}

const TABLES_SQL = `
  SELECT c.relname AS table, a.attname AS column, format_type(a.atttypid, a.atttypmod) AS type,
         coalesce(a.attgenerated <> '', false) AS generated, c.reltuples::float8 AS estimate
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
   WHERE n.nspname = $1 AND c.relkind = 'r'
   ORDER BY c.relname, a.attname`;

const SEQUENCES_SQL = `
  SELECT s.relname AS name, t.relname AS owned_by
    FROM pg_class s
    JOIN pg_namespace n ON n.oid = s.relnamespace
    LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = s.oid
                         AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
    LEFT JOIN pg_class t ON t.oid = d.refobjid
   WHERE n.nspname = $1 AND s.relkind = 'S'
   ORDER BY s.relname`;

const PRIMARY_KEYS_SQL = `
  SELECT c.relname AS table, a.attname AS column
    FROM pg_index i
    JOIN pg_class c ON c.oid = i.indrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, pos)
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
   WHERE n.nspname = $1 AND c.relkind = 'r' AND i.indisprimary
   ORDER BY c.relname, k.pos`;

const REFERENCES_SQL = `
  SELECT DISTINCT rt.relname AS referenced, cn.nspname || '.' || c.relname AS referencing
    FROM pg_constraint k
    JOIN pg_class rt ON rt.oid = k.confrelid
    JOIN pg_namespace rn ON rn.oid = rt.relnamespace
    JOIN pg_class c ON c.oid = k.conrelid
    JOIN pg_namespace cn ON cn.oid = c.relnamespace
   WHERE k.contype = 'f' AND rn.nspname = $1`;

export async function readCatalog(client: pg.ClientBase, schema: string): Promise<Catalog> {
  const tables = new Map<string, TableInfo>();
  const cols = await client.query<{
    table: string;
    column: string | null;
    type: string | null;
    generated: boolean;
    estimate: number;
  }>(TABLES_SQL, [schema]);
  for (const r of cols.rows) {
    let t = tables.get(r.table);
    if (!t) {
      const estimatedRows = r.estimate >= 0 ? Math.round(r.estimate) : null; // -1: never vacuumed or analyzed
      tables.set(r.table, (t = { name: r.table, columns: [], primaryKey: [], estimatedRows }));
    }
    if (r.column !== null) t.columns.push({ name: r.column, type: r.type ?? "", generated: r.generated });
  }
  const pks = await client.query<{ table: string; column: string }>(PRIMARY_KEYS_SQL, [schema]);
  for (const r of pks.rows) tables.get(r.table)?.primaryKey.push(r.column);
  const seqs = await client.query<{ name: string; owned_by: string | null }>(SEQUENCES_SQL, [schema]);
  const refs = await client.query<{ referenced: string; referencing: string }>(REFERENCES_SQL, [schema]);
  const referencedBy = new Map<string, Set<string>>();
  for (const r of refs.rows) {
    const set = referencedBy.get(r.referenced) ?? new Set<string>();
    set.add(r.referencing);
    referencedBy.set(r.referenced, set);
  }
  return { tables, sequences: seqs.rows.map((s) => ({ name: s.name, ownedBy: s.owned_by })), referencedBy };
}

import type pg from "pg";

/**
 * Judges a replica independently of the replication module: table by table, a digest of the
 * multiset of rows (md5 of each row's text, the md5s sorted and hashed again — so duplicate rows
 * of a table without a key count, and no table's text is ever built whole in memory: 32 bytes a
 * row), and sequence by sequence, last_value and is_called.
 */

/** `rows:md5` of a table's contents; equal on two nodes iff the contents are equal. */
export async function tableDigest(c: pg.ClientBase, table: string, schema = "public"): Promise<string> {
  const r = await c.query<{ n: string; h: string | null }>(
    `SELECT count(*) AS n, md5(string_agg(h, '' ORDER BY h)) AS h
       FROM (SELECT md5(t::text) AS h FROM ${c.escapeIdentifier(schema)}.${c.escapeIdentifier(table)} t) z`,
  );
  return `${r.rows[0]!.n}:${r.rows[0]!.h ?? "-"}`;
}

export async function tableDigests(
  c: pg.ClientBase,
  tables: readonly string[],
  schema = "public",
): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const t of tables) out[t] = await tableDigest(c, t, schema);
  return out;
}

/**
 * The sequences that replication carries over for these tables: those owned by one of them,
 * and those owned by no table at all.
 */
export async function sequencesOf(c: pg.ClientBase, tables: readonly string[], schema = "public"): Promise<string[]> {
  const r = await c.query<{ name: string }>(
    `SELECT s.relname AS name
       FROM pg_class s
       LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = s.oid
                            AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
       LEFT JOIN pg_class t ON t.oid = d.refobjid
      WHERE s.relkind = 'S' AND s.relnamespace = $1::regnamespace AND (t.relname IS NULL OR t.relname = ANY($2))
      ORDER BY 1`,
    [schema, [...tables]],
  );
  return r.rows.map((x) => x.name);
}

/** `name → last_value/is_called` for the named sequences. */
export async function sequenceValues(
  c: pg.ClientBase,
  names: readonly string[],
  schema = "public",
): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const n of names) {
    const r = await c.query<{ v: string; c: boolean }>(
      `SELECT last_value::text AS v, is_called AS c FROM ${c.escapeIdentifier(schema)}.${c.escapeIdentifier(n)}`,
    );
    out[n] = `${r.rows[0]!.v}/${r.rows[0]!.c}`;
  }
  return out;
}

export interface NodeDifference {
  /** Tables whose contents differ, with both digests. */
  tables: { table: string; master: string; slave: string }[];
  sequences: { sequence: string; master: string; slave: string }[];
}

/**
 * Compares the replicated part of two nodes. Both sides are read with the same queries one
 * after the other: call it when neither node is being written.
 */
export async function compareNodes(
  master: pg.ClientBase,
  slave: pg.ClientBase,
  tables: readonly string[],
  schema = "public",
): Promise<NodeDifference> {
  const [mt, st] = await Promise.all([tableDigests(master, tables, schema), tableDigests(slave, tables, schema)]);
  const seqs = await sequencesOf(master, tables, schema);
  const [ms, ss] = await Promise.all([sequenceValues(master, seqs, schema), sequenceValues(slave, seqs, schema)]);
  return {
    tables: tables.filter((t) => mt[t] !== st[t]).map((t) => ({ table: t, master: mt[t]!, slave: st[t]! })),
    sequences: seqs.filter((n) => ms[n] !== ss[n]).map((n) => ({ sequence: n, master: ms[n]!, slave: ss[n]! })),
  };
}

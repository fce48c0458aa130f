import { int8 } from "./answers.js";
import type { Session } from "./session.js";
import { qualified } from "./sql.js";

/**
 * PostgreSQL's own write counters per table — rows inserted, updated and deleted since the
 * statistics began, plus the table's storage file (TRUNCATE and rewrites change it) — as one
 * text per table, the table's *activity*. Reading them costs a catalog lookup, not a scan.
 *
 * Every write to a table moves its counters for good: they only grow, and a reset or a crash
 * (which drops them) changes the node's reset mark, which every activity text carries. So a table
 * whose activity on both nodes is what it was after the last good run has had no write since —
 * with one caveat that decides how the run uses them: a backend hands its counts to the shared
 * statistics after its transaction, at most once a second and within about 10 s of going idle
 * (up to a minute under lock contention). A write can therefore be committed before its counters
 * move. Hence: the activity is read *before* the master's snapshot is taken (anything it shows
 * was committed before the snapshot); a table left unread because its activity had not moved
 * keeps its old memo whole, so a late count still moves it next time; and the run reads every
 * table's exact markers anyway every `verifyEveryMs` (see run.ts). A node that does not count
 * (`track_counts = off`) gives no activity: every run on it is exact.
 */

/** Past this many tables a node's answer is refused: a Wazo node has about a hundred. */
const MAX_TABLES = 10_000;

/**
 * The activity of every table in `schema`, by name; null when the node does not count writes.
 * Read by schema, not by list: it runs before the catalog, which is read in the snapshot.
 */
export async function readActivity(s: Session, schema: string): Promise<Map<string, string> | null> {
  const r = await s.client.query<{
    name: string;
    on: string;
    reset: string;
    ins: string;
    upd: string;
    del: string;
    f: string;
  }>(
    `SELECT c.relname AS name, current_setting('track_counts') AS on,
            coalesce((SELECT stats_reset::text FROM pg_stat_database WHERE datname = current_database()), '-')
              || '|' || pg_postmaster_start_time()::text AS reset,
            pg_stat_get_tuples_inserted(c.oid)::text AS ins, pg_stat_get_tuples_updated(c.oid)::text AS upd,
            pg_stat_get_tuples_deleted(c.oid)::text AS del, pg_relation_filenode(c.oid)::text AS f
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relkind = 'r'
      LIMIT ${MAX_TABLES + 1}`,
    [schema],
  );
  if (r.rows.length > MAX_TABLES) throw new Error(`activity: over ${MAX_TABLES} tables`);
  const out = new Map<string, string>();
  for (const row of r.rows) {
    if (row.on !== "on") return null;
    if (typeof row.name !== "string" || row.name.length > 63) throw new Error("activity: a malformed table name");
    out.set(row.name, `${counts(row)}@${mark(row.reset)}`);
  }
  return out;
}

/**
 * What the slave's activity will read once this transaction's own writes reach the statistics:
 * `before` (read before the transaction wrote) plus the transaction's pending counts, with the
 * storage file the tables have now. Only valid in a session that wrote nothing before this
 * transaction (a pending count of an earlier transaction would be added twice): run.ts opens a
 * fresh one per run.
 */
export async function afterOwnWrites(
  s: Session,
  schema: string,
  tables: { table: string; before: string }[],
): Promise<string[]> {
  if (!tables.length) return [];
  const r = await s.client.query<{ i: string; ins: string; upd: string; del: string; f: string }>(
    `SELECT u.i::text AS i, pg_stat_get_xact_tuples_inserted(u.r)::text AS ins,
            pg_stat_get_xact_tuples_updated(u.r)::text AS upd, pg_stat_get_xact_tuples_deleted(u.r)::text AS del,
            pg_relation_filenode(u.r)::text AS f
       FROM unnest($1::text[]::regclass[]) WITH ORDINALITY AS u(r, i)`,
    [tables.map((t) => qualified(schema, t.table))],
  );
  const out: string[] = [];
  for (const row of r.rows) {
    const i = Number(row.i) - 1;
    const before = tables[i]?.before;
    if (before === undefined) throw new Error(`activity: an answer for table #${row.i} of ${tables.length}`);
    const [was, reset] = before.split("@") as [string, string];
    const [ins, upd, del] = was.split("/").map((n) => BigInt(n));
    const own = counts(row)
      .split("/")
      .map((n) => BigInt(n));
    out[i] = `${ins! + own[0]!}/${upd! + own[1]!}/${del! + own[2]!}/${own[3]}@${reset}`;
  }
  if (out.length !== tables.length) throw new Error(`activity: ${r.rows.length} answers for ${tables.length} tables`);
  return out;
}

/** The three counters and the storage file, each checked to be a number before use. */
function counts(row: { ins: unknown; upd: unknown; del: unknown; f: unknown }): string {
  const parts = [row.ins, row.upd, row.del, row.f].map(int8);
  if (parts.some((p) => p === null))
    throw new Error(`activity: a malformed answer ${JSON.stringify(row).slice(0, 120)}`);
  return parts.join("/");
}

/** The node's reset mark: only ever compared with the same node's, so it is kept as given, bounded. */
function mark(reset: unknown): string {
  if (typeof reset !== "string" || reset.length > 120) throw new Error("activity: a malformed reset mark");
  return reset;
}

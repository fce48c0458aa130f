import { on, type Session } from "./session.js";
import { qualified } from "./sql.js";

/**
 * A reloaded table's secondary indexes built once, after its rows are in, instead of row by row
 * while they come in. Index upkeep is most of the slave's work in a load (about three fifths of
 * its CPU in a full sync of Wazo's schema, measured with perf): each row descends every index to
 * a random leaf. One sort and a bulk build per index costs a fraction of that.
 *
 * Only a plain index qualifies: one that nothing depends on (no constraint owns it, no foreign
 * key leans on it), not the table's primary key, clustering or replica-identity index, with no
 * comment and no statistics target, in the default tablespace, owned by a role the slave's user
 * acts for, and calling no function or operator of the schema's own (whose result could depend
 * on the session's search_path, which the run pins to pg_catalog). Such an index is whole in its
 * definition (`pg_get_indexdef`: columns, method, predicate, storage parameters, every name
 * qualified), so dropping it and running that definition again gives it back as it was.
 * Constraint indexes stay in place: dropping them means dropping what depends on them. The
 * definitions are the slave's own, read from its catalog and run on it: nothing from the master.
 *
 * All of it happens in the slave's one transaction: a failure rolls the drop back with the rest,
 * and DROP INDEX locks the table against every reader until COMMIT, so nobody ever sees it
 * without its index. The drop runs under a savepoint: when it cannot be had (a reader holding
 * the table past `lockTimeoutMs`), the indexes stay and the load is merely slower.
 */

/** Below this many rows, upkeep row by row is cheaper than a drop and a build (a few ms each). */
export const DEFER_FROM_ROWS = 5000;

/** The index definitions to run again after each table's load: table name → CREATE INDEX statements. */
export type Deferred = Map<string, string[]>;

const PLAIN_INDEXES_SQL = `
  SELECT c.relname AS table, ic.relname AS index, pg_get_indexdef(i.indexrelid) AS def
    FROM pg_index i
    JOIN pg_class c ON c.oid = i.indrelid
    JOIN pg_class ic ON ic.oid = i.indexrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE n.nspname = $1 AND c.relname = ANY($2::text[]) AND c.relkind = 'r' AND ic.relkind = 'i'
     AND i.indisvalid AND i.indisready AND i.indislive
     AND NOT i.indisprimary AND NOT i.indisexclusion AND NOT i.indisclustered AND NOT i.indisreplident
     AND ic.reltablespace = 0
     AND pg_has_role(ic.relowner, 'USAGE')
     AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
     AND NOT EXISTS (SELECT 1 FROM pg_depend d
                      WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = i.indexrelid)
     AND NOT EXISTS (SELECT 1 FROM pg_depend d
                      WHERE d.classid = 'pg_class'::regclass AND d.objid = i.indexrelid
                        AND NOT (d.deptype = 'a' AND d.refclassid = 'pg_class'::regclass)
                        AND NOT (d.deptype = 'n' AND d.refclassid IN ('pg_collation'::regclass, 'pg_opclass'::regclass)))
     AND NOT EXISTS (SELECT 1 FROM pg_description x
                      WHERE x.classoid = 'pg_class'::regclass AND x.objoid = i.indexrelid)
     AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = i.indexrelid AND a.attstattarget >= 0)
   ORDER BY c.relname, ic.relname`;

/**
 * Drops the plain indexes of the reloaded tables expected to hold DEFER_FROM_ROWS rows or more
 * (`rows`: counted or estimated; unknown counts as many) on the slave, in its open transaction,
 * and returns their definitions, to be run again by buildDeferred once each table is loaded.
 * Empty when there is none, or when the drop could not be had (the savepoint is rolled back: the
 * indexes stay).
 */
export async function deferIndexes(
  slave: Session,
  schema: string,
  reloads: { name: string; rows: number | null }[],
  log: (why: string) => void = () => {},
): Promise<Deferred> {
  const deferred: Deferred = new Map();
  const tables = reloads.filter((t) => (t.rows ?? DEFER_FROM_ROWS) >= DEFER_FROM_ROWS).map((t) => t.name);
  if (!tables.length) return deferred;
  const r = await on(slave, "read the indexes", () =>
    slave.client.query<{ table: string; index: string; def: string }>(PLAIN_INDEXES_SQL, [schema, tables]),
  );
  if (!r.rows.length) return deferred;
  await on(slave, "set a savepoint", () => slave.client.query("SAVEPOINT xivo_ha_defer_indexes"));
  try {
    await slave.client.query(`DROP INDEX ${r.rows.map((x) => qualified(schema, x.index)).join(", ")}`);
  } catch (err) {
    await on(slave, "keep the indexes", () => slave.client.query("ROLLBACK TO SAVEPOINT xivo_ha_defer_indexes"));
    log(err instanceof Error ? err.message : String(err));
    return deferred;
  }
  await on(slave, "release the savepoint", () => slave.client.query("RELEASE SAVEPOINT xivo_ha_defer_indexes"));
  for (const x of r.rows) deferred.set(x.table, [...(deferred.get(x.table) ?? []), x.def]);
  return deferred;
}

/** Builds a loaded table's deferred indexes again; how many. */
export async function buildDeferred(slave: Session, deferred: Deferred, table: string): Promise<number> {
  const defs = deferred.get(table) ?? [];
  for (const def of defs) await on(slave, `build an index of ${table}`, () => slave.client.query(def));
  return defs.length;
}

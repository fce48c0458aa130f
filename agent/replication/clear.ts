import { on, type Session, step } from "./session.js";
import { lockAgainstWritersSql, nonEmptySql, planClear, qualified, skipEmpty } from "./sql.js";

/** How a reloaded table was emptied: TRUNCATE, DELETE, or not at all (it was empty already). */
export type Cleared = "truncate" | "delete" | "empty";

/**
 * Empties the slave's tables about to be reloaded, in its transaction. TRUNCATE or DELETE as
 * planClear says, except for tables the run found empty (`empty`): those are locked against
 * writers and, still empty, left as they are — a TRUNCATE costs a few milliseconds per table
 * (new files for the table, its indexes and TOAST) even on an empty one, which is every table
 * of a first full sync. Their rows then come in without FREEZE (which needs a TRUNCATE in the
 * same transaction): the slave's next scan sets their hint bits once.
 */
export async function clearForReload(
  slave: Session,
  schema: string,
  reloads: string[],
  empty: string[],
  referencedBy: Map<string, Set<string>>,
): Promise<Map<string, Cleared>> {
  const plan = planClear(schema, reloads, referencedBy);
  await lockAgainstWriters(slave, schema, empty);
  // Read again under the lock: a write since the run's first read would otherwise survive.
  const held = new Set(await tablesWithRows(slave, schema, empty));
  const still = new Set(empty.filter((t) => !held.has(t)));
  const skip = skipEmpty(schema, plan, still, referencedBy);
  const truncate = plan.truncate.filter((t) => !skip.has(t));
  const del = plan.delete.filter((t) => !skip.has(t));
  if (truncate.length)
    await step(slave, "truncate", `TRUNCATE ONLY ${truncate.map((t) => qualified(schema, t)).join(", ")}`);
  for (const t of del) await step(slave, `empty ${t}`, `DELETE FROM ONLY ${qualified(schema, t)}`);
  const how = new Map<string, Cleared>();
  for (const t of truncate) how.set(t, "truncate");
  for (const t of del) how.set(t, "delete");
  for (const t of skip) how.set(t, "empty");
  return how;
}

/** No writer may touch these tables until the transaction ends; readers may. */
export async function lockAgainstWriters(slave: Session, schema: string, names: string[]): Promise<void> {
  if (names.length) await step(slave, "lock the tables", lockAgainstWritersSql(schema, names));
}

/** Which of `names` hold any row on this node, in one statement. */
export async function tablesWithRows(s: Session, schema: string, names: string[]): Promise<string[]> {
  if (!names.length) return [];
  const r = await on(s, "find the empty tables", () => s.client.query<{ i: number }>(nonEmptySql(schema, names)!));
  return r.rows.map((row) => names[row.i]!);
}

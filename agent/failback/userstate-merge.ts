/**
 * The three-way merge of one user's settings at failback, column by column: the baseline (what
 * the slave held at failover, replicated from the master), the slave now, the master now.
 *
 * - only the slave changed a column: the slave's value goes to the master;
 * - only the master changed it, or both made it equal: the master's stays;
 * - both changed it differently: the later change wins. "Later" is the commit time of the row's
 *   last write on each node (PostgreSQL's `track_commit_timestamp`); when either is unknown the
 *   master's value stays (the master is the reference, and a change it holds is never undone on a
 *   guess).
 *
 * Per column, so a user's DND set on the slave and an administrator's edit of another column on
 * the master both survive. Values are compared as PostgreSQL's own JSON text of each value, never
 * parsed. Pure: no I/O.
 */

/** One node's row: the columns' JSON texts, in config order, and the commit time of its last write. */
export interface NodeRow {
  values: string[];
  /** `YYYY-MM-DDTHH:MI:SS.US` UTC (fixed width, so it sorts as text), or null when unknown. */
  committedAt: string | null;
}

export interface ColumnConflict {
  column: string;
  winner: "slave" | "master";
  /** Why: which change was later, or that a commit time was unknown. */
  why: string;
}

export interface RowMerge {
  /** The master's values with the slave's where the slave's win (same order as the columns). */
  merged: string[];
  /** Columns whose slave value goes to the master. */
  fromSlave: string[];
  conflicts: ColumnConflict[];
}

export function mergeRow(columns: string[], baseline: string[], slave: NodeRow, master: NodeRow): RowMerge {
  const merged = [...master.values];
  const fromSlave: string[] = [];
  const conflicts: ColumnConflict[] = [];
  columns.forEach((column, i) => {
    const b = baseline[i];
    const s = slave.values[i]!;
    const m = master.values[i]!;
    if (s === b || s === m) return;
    if (m === b) {
      merged[i] = s;
      fromSlave.push(column);
      return;
    }
    const slaveLater =
      slave.committedAt !== null && master.committedAt !== null && slave.committedAt > master.committedAt;
    const why =
      slave.committedAt === null || master.committedAt === null
        ? "a commit time is unknown (track_commit_timestamp off?)"
        : `slave ${slave.committedAt} vs master ${master.committedAt}`;
    conflicts.push({ column, winner: slaveLater ? "slave" : "master", why });
    if (slaveLater) {
      merged[i] = s;
      fromSlave.push(column);
    }
  });
  return { merged, fromSlave, conflicts };
}

/** Whether the slave changed any column since the baseline. */
export const changedSince = (baseline: string[], slave: string[]): boolean => slave.some((v, i) => v !== baseline[i]);

import type pg from "pg";
import type { FailbackConfig } from "./config.js";
import { copyTable, type TableResult } from "./copy.js";
import { connect, FailbackError, pgMessage } from "./db.js";
import { runFileSync, type FileResult } from "./files.js";
import { ensureLedger } from "./ledger.js";
import { copyUserState, type UserStateReport } from "./userstate.js";

/**
 * Failback reconciliation: once, at failback, before master→slave replication resumes, copy
 * back to the master what the slave's own telephony wrote while it was active.
 *
 * All tables go in ONE master transaction together with their ledger rows: a run that fails or
 * is interrupted leaves nothing behind, a committed run is recorded row by row, and a retry
 * copies exactly what is missing. The slave is read in one REPEATABLE READ snapshot, so a child
 * row never points at a parent the run did not see. Then the file-sync hooks run.
 *
 * Never throws for operational failures: the report says ok:false and why.
 */

export interface ReconcileReport {
  ok: boolean;
  durationMs: number;
  /** Committed results only: empty when the copy-back was rolled back. */
  tables: TableResult[];
  files: FileResult[];
  /** What the slave's users changed, merged back (committed with the rows); null when off or rolled back. */
  userState: UserStateReport | null;
  error: string | null;
}

export interface ReconcileOptions {
  log?: (event: string, fields: Record<string, unknown>) => void;
  signal?: AbortSignal;
  /** The agent's state directory: where the failover recorded the user-state baseline. */
  stateDir?: string;
}

/** Serialises reconciliations on the master (two agents, or a retry racing a slow run). */
const LOCK_KEY = "xivo-ha failback reconciliation";

class Aborted extends Error {}

export async function reconcile(cfg: FailbackConfig, opts: ReconcileOptions = {}): Promise<ReconcileReport> {
  const started = performance.now();
  const log = opts.log ?? (() => undefined);
  const secrets = [cfg.master.password, cfg.slave.password].filter((p): p is string => !!p);
  const scrub = (s: string) => secrets.reduce((acc, p) => acc.replaceAll(p, "[redacted]"), s);

  log("failback.start", { tables: cfg.tables.map((t) => t.name), fileSync: cfg.fileSync.map((h) => h.name) });
  let tables: TableResult[] = [];
  let userState: UserStateReport | null = null;
  const errors: string[] = [];
  try {
    ({ tables, userState } = await copyBack(cfg, log, opts.signal, opts.stateDir));
  } catch (err) {
    errors.push(scrub(err instanceof FailbackError ? err.message : `copy-back failed: ${pgMessage(err)}`));
    log("failback.copy_failed", { error: errors[0] });
  }
  // Files are independent of the rows and the hooks idempotent (rsync): run them even after a
  // failed copy-back, so what can reach the master does; the report stays not ok either way.
  const files = await runFileSync(cfg.fileSync, { log, signal: opts.signal });
  const failed = files.filter((f) => !f.ok);
  if (failed.length > 0) errors.push(`file sync failed: ${failed.map((f) => `${f.name} (${f.detail})`).join("; ")}`);

  const report: ReconcileReport = {
    ok: errors.length === 0,
    durationMs: Math.round(performance.now() - started),
    tables,
    files,
    userState,
    error: errors.length ? errors.join("; ") : null,
  };
  log("failback.done", { ok: report.ok, durationMs: report.durationMs, error: report.error });
  return report;
}

async function copyBack(
  cfg: FailbackConfig,
  log: (event: string, fields: Record<string, unknown>) => void,
  signal: AbortSignal | undefined,
  stateDir: string | undefined,
): Promise<{ tables: TableResult[]; userState: UserStateReport | null }> {
  const abortReason = () =>
    signal?.reason instanceof Error ? signal.reason.message : String(signal?.reason ?? "aborted");
  if (signal?.aborted) throw new FailbackError(`aborted before the copy-back (${abortReason()}): nothing written`);
  const timeouts = { connectTimeoutMs: cfg.connectTimeoutMs, statementTimeoutMs: cfg.statementTimeoutMs };
  let slave: pg.Client | undefined;
  let master: pg.Client | undefined;
  let committing = false;
  // An abort ends both connections at once: a statement stuck on a lock must not outlive it.
  // The server rolls back whatever the master connection had open.
  const onAbort = () => {
    if (committing) return;
    void slave?.end().catch(() => undefined);
    void master?.end().catch(() => undefined);
  };
  signal?.addEventListener("abort", onAbort, { once: true });
  const checkpoint = () => {
    if (signal?.aborted) throw new Aborted();
  };
  try {
    slave = await connect("slave", cfg.slave, timeouts);
    checkpoint();
    master = await connect("master", cfg.master, timeouts);
    checkpoint();
    await slave.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    const origin = cfg.origin ?? (await slaveOrigin(slave));
    await refuseSameServer(master, slave);
    await ensureLedger(master, cfg.ledger);

    await master.query("BEGIN");
    const locked = await master.query<{ ok: boolean }>("SELECT pg_try_advisory_xact_lock(hashtext($1)) AS ok", [
      LOCK_KEY,
    ]);
    if (!locked.rows[0]?.ok)
      throw new FailbackError(
        "another failback reconciliation is running on the master: nothing written (retry later)",
      );

    const referenced = new Set(cfg.tables.flatMap((t) => t.references.map((r) => r.table)));
    const ctx = {
      slave,
      master,
      origin,
      ledger: cfg.ledger,
      batchRows: cfg.batchRows,
      idMaps: new Map(),
      checkpoint,
      log,
    };
    const results: TableResult[] = [];
    for (const [i, t] of cfg.tables.entries()) {
      checkpoint();
      const r = await copyTable(ctx, t, referenced.has(t.name), `failback_${i}`);
      log("failback.table", { ...r, origin });
      results.push(r);
    }
    // The users' own settings, in the same transaction: recorded in the same ledger, with the rows.
    const userState = cfg.userState ? await copyUserState(ctx, cfg.userState, stateDir) : null;
    checkpoint();
    committing = true;
    try {
      await master.query("COMMIT");
    } catch (err) {
      throw new FailbackError(
        `COMMIT on the master failed, outcome unknown (${pgMessage(err)}): a retry is safe, the ledger skips whatever was committed`,
      );
    }
    log("failback.committed", { origin, copied: results.reduce((n, r) => n + r.copied, 0) });
    return { tables: results, userState };
  } catch (err) {
    await master?.query("ROLLBACK").catch(() => undefined);
    if (signal?.aborted && !committing)
      throw new FailbackError(`copy-back rolled back, nothing written: aborted (${abortReason()})`);
    // A failed connection or COMMIT already says what happened.
    if (err instanceof FailbackError && (committing || err.message.startsWith("cannot connect"))) throw err;
    throw new FailbackError(
      `copy-back rolled back, nothing written: ${err instanceof FailbackError ? err.message : pgMessage(err)}`,
    );
  } finally {
    signal?.removeEventListener("abort", onAbort);
    await Promise.all([slave?.end().catch(() => undefined), master?.end().catch(() => undefined)]);
  }
}

/** The slave cluster's system identifier: new with every initdb, so a rebuilt slave is a new origin. */
async function slaveOrigin(slave: pg.Client): Promise<string> {
  try {
    const res = await slave.query<{ id: string }>("SELECT system_identifier::text AS id FROM pg_control_system()");
    return `pg-${res.rows[0]!.id}`;
  } catch (err) {
    throw new FailbackError(
      `cannot read the slave's system identifier (${pgMessage(err)}): set failback.origin to name the slave`,
    );
  }
}

/** Copying a database into itself would double every row: refuse a master that is the slave. */
async function refuseSameServer(master: pg.Client, slave: pg.Client): Promise<void> {
  const q =
    "SELECT pg_postmaster_start_time()::text || ' ' || current_database() || ' ' || coalesce(inet_server_port(), 0) AS id";
  const [m, s] = await Promise.all([master.query<{ id: string }>(q), slave.query<{ id: string }>(q)]);
  if (m.rows[0]?.id === s.rows[0]?.id)
    throw new FailbackError(
      "the master and the slave settings point at the same database: refusing to copy it into itself",
    );
}

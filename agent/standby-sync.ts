import type { AgentReport } from "../protocol/report.js";
import type { Config } from "./config.js";
import type { FailbackConfig } from "./failback/config.js";
import { reconcile, type ReconcileReport } from "./failback/reconcile.js";
import type { ResolvedFilesConfig } from "./files/config.js";
import { pullFiles, type FilesReport } from "./files/pull.js";
import type { Keeper } from "./keeper.js";
import { actionLockPath } from "./keeper.js";
import { acquireLock, LockBusyError } from "./lock.js";
import type { Logger } from "./log.js";
import type { ResolvedReplicationConfig } from "./replication/config.js";
import { createReplicationMemo } from "./replication/memo.js";
import { replicate, type ReplicationReport } from "./replication/run.js";

/**
 * What a standby slave does with its database, in this order:
 * 1. after a failover, copy the call records it made while active back to the master (once,
 *    exactly: failback reconciliation) — until that succeeds, nothing else runs;
 * 2. then pull the master's database (replication), on a schedule;
 * 3. then the master's files (custom dialplan, sounds…), after the copy-back too: the mirror
 *    deletes what the master lacks.
 * Only while standby and while the edge says the master is up; never during an action (it
 * holds the same action lock as failover and failback).
 */
export interface StandbySyncOptions {
  keeper: Keeper;
  stateDir: string;
  replication: ResolvedReplicationConfig | null;
  failback: FailbackConfig | null;
  files?: ResolvedFilesConfig | null;
  /** Where the master's `/` lands for the file pull: `/` but in tests. */
  filesRoot?: string;
  /** True when a fresh verdict says the master is up. */
  masterUp: () => boolean;
  log: Logger;
}

type SyncConfig = Pick<Config, "stateDir" | "replication" | "failback" | "files">;

/** Whether a standby has anything to sync: copy-back, replication or the file pull. */
export const hasStandbyWork = (cfg: SyncConfig): boolean => !!(cfg.replication || cfg.failback || cfg.files);

/** The standby's sync as a config describes it (the daemon's, and the CLI's one pass). */
export const standbySyncFor = (cfg: SyncConfig, keeper: Keeper, masterUp: () => boolean, log: Logger): StandbySync =>
  new StandbySync({
    keeper,
    stateDir: cfg.stateDir,
    replication: cfg.replication,
    failback: cfg.failback,
    files: cfg.files,
    masterUp,
    log,
  });

export type SyncOutcome =
  | "not-standby"
  | "master-not-up"
  | "busy"
  | "reconcile-failed"
  | "reconciled"
  | "replicated"
  | "replication-failed"
  | "files-pulled"
  | "files-failed"
  | "nothing-to-do";

export class StandbySync {
  lastReplication: ReplicationReport | null = null;
  lastReconcile: ReconcileReport | null = null;
  lastFiles: FilesReport | null = null;
  private running: Promise<SyncOutcome> | null = null;
  private abort = new AbortController();
  /** Lets a run skip tables unchanged on both nodes since the last good run without reading them. */
  private readonly memo = createReplicationMemo();

  constructor(private readonly o: StandbySyncOptions) {}

  /** One pass; concurrent calls share it. */
  run(): Promise<SyncOutcome> {
    this.running ??= this.pass().finally(() => (this.running = null));
    return this.running;
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.running?.catch(() => {});
  }

  /**
   * Abandons the pass in flight (its transaction rolls back, the slave stays as it was): the
   * verdict no longer says "up", and a failover must not wait behind a long copy.
   */
  cancel(): void {
    if (!this.running) return;
    this.abort.abort();
    this.abort = new AbortController();
  }

  /** Alerts for the report: a failing copy-back or replication is an alert, not a silent cron mail. */
  alerts(): string[] {
    const out: string[] = [];
    if (this.lastReconcile && !this.lastReconcile.ok)
      out.push(`failback reconciliation failing: ${this.lastReconcile.error ?? "see the agent's journal"}`);
    if (this.lastReplication && !this.lastReplication.ok)
      out.push(`replication failing: ${this.lastReplication.error ?? "see the agent's journal"}`);
    if (this.lastFiles && !this.lastFiles.ok)
      out.push(`file pull from the master failing: ${this.lastFiles.error ?? "see the agent's journal"}`);
    return out;
  }

  /**
   * The database and the file pull together: both make the slave a copy of the master, so a
   * failing pull flips the same `ok` (and raises the worker's replication.failing, its error
   * naming the file pull) rather than adding a report field and an event pair of its own.
   */
  reportField(): AgentReport["replication"] {
    const r = this.lastReplication;
    const f = this.lastFiles;
    if (!r && !f) return null;
    const errors = [
      r?.error ?? (r && !r.ok ? "replication failed" : null),
      f && !f.ok ? `file pull from the master: ${f.error ?? "failed"}` : null,
    ];
    const error = errors.filter((e): e is string => !!e).join("; ");
    return {
      at: r?.startedAt ?? f!.startedAt,
      ok: (r?.ok ?? true) && (f?.ok ?? true),
      durationMs: (r?.durationMs ?? 0) + (f?.durationMs ?? 0),
      rows: r?.rows ?? 0,
      bytes: r?.bytes ?? 0,
      tablesCopied: r?.copied.length ?? 0,
      tablesSkipped: r?.skipped.length ?? 0,
      error: error ? error.slice(0, 2000) : null,
    };
  }

  /**
   * The modules' own progress events go to the journal, under `reconcile.*` (not `failback.*`,
   * which is the keeper's transition) and `replication.*`; their final done/failed lines are
   * replaced by this class's, which carry the whole report.
   */
  private inner(prefix: "reconcile" | "replication") {
    return (event: string, fields: Record<string, unknown>) => {
      const name = `${prefix}.${event.slice(event.indexOf(".") + 1)}`;
      if (!/\.(done|failed)$/.test(name)) this.o.log(name, fields);
    };
  }

  private async pass(): Promise<SyncOutcome> {
    const { keeper, log } = this.o;
    const signal = this.abort.signal; // this pass's: cancel() replaces the controller for the next
    await keeper.load();
    if (keeper.role !== "standby") return "not-standby";
    if (!this.o.masterUp()) return "master-not-up";
    let lock;
    try {
      lock = await acquireLock(actionLockPath(this.o.stateDir), { purpose: "standby-sync", waitMs: 0 });
    } catch (err) {
      if (err instanceof LockBusyError) return "busy";
      throw err;
    }
    try {
      await keeper.load(); // the role may have moved while we took the lock
      if (keeper.role !== "standby") return "not-standby";
      if (keeper.reconcilePending && this.o.failback) {
        const r = await reconcile(this.o.failback, {
          log: this.inner("reconcile"),
          signal,
          stateDir: this.o.stateDir,
        });
        this.lastReconcile = r;
        log(
          r.ok ? "reconcile.done" : "reconcile.failed",
          { ok: r.ok, tables: r.tables, files: r.files, error: r.error, durationMs: r.durationMs },
          r.ok ? "info" : "error",
        );
        if (!r.ok) return "reconcile-failed"; // retried next pass; replication waits for it
        await keeper.reconciled();
        if (!this.o.replication && !this.o.files) return "reconciled";
      } else if (keeper.reconcilePending) {
        // Nothing configured to copy back: the flag only guards replication, so let it go.
        await keeper.reconciled();
      }
      const rep = this.o.replication ? await this.replicate(this.o.replication, signal) : null;
      // Independent of the database: a failed replication does not hold the files back.
      const files = this.o.files && !signal.aborted ? await this.pull(this.o.files, signal) : null;
      if (rep === null && files === null) return "nothing-to-do";
      if (rep && !rep.ok) return "replication-failed";
      if (files && !files.ok) return "files-failed";
      return rep ? "replicated" : "files-pulled";
    } finally {
      await lock.release();
    }
  }

  private async replicate(config: ResolvedReplicationConfig, signal: AbortSignal): Promise<ReplicationReport> {
    const rep = await replicate(config, { log: this.inner("replication"), signal, memo: this.memo });
    this.lastReplication = rep;
    this.o.log(
      rep.ok ? "replication.done" : "replication.failed",
      {
        ok: rep.ok,
        durationMs: rep.durationMs,
        rows: rep.rows,
        bytes: rep.bytes,
        copied: rep.copied.map((t) => t.table),
        skipped: rep.skipped,
        error: rep.error,
        drift: rep.drift,
      },
      rep.ok ? "info" : "error",
    );
    return rep;
  }

  private async pull(files: ResolvedFilesConfig, signal: AbortSignal): Promise<FilesReport> {
    const r = await pullFiles(files, { signal, root: this.o.filesRoot });
    this.lastFiles = r;
    this.o.log(r.ok ? "files.done" : "files.failed", { ...r, paths: files.paths.length }, r.ok ? "info" : "error");
    return r;
  }
}

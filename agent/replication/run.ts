import { afterOwnWrites, readActivity } from "./activity.js";
import { readCatalog, type TableInfo } from "./catalog.js";
import type { ResolvedReplicationConfig } from "./config.js";
import { tidText } from "./answers.js";
import { clearForReload, type Cleared, lockAgainstWriters } from "./clear.js";
import { type Feed, readAhead, rowsCopy, tableCopy } from "./copy.js";
import { diffTable, fingerprintBits, reloadReason, type TablePlan } from "./delta.js";
import { schemaDrift } from "./drift.js";
import { buildDeferred, deferIndexes } from "./indexes.js";
import { changedTables, type Changed } from "./fingerprint.js";
import {
  markerAfterDelta,
  markerRows,
  markers as readMarkers,
  memoKey,
  ownRowHash,
  reloadedMarkers,
  type ReplicationMemo,
  UNKNOWN_MARKER,
} from "./memo.js";
import { selectSequences, selectTables } from "./select.js";
import { syncSequences } from "./sequences.js";
import { describe, on, openSession, step, type Session } from "./session.js";
import { sincePlan, snapshotXmin } from "./since.js";
import { deleteRowsSql, qualified } from "./sql.js";

/**
 * One replication run, master → slave, the Wazo model made incremental:
 *
 *   both:   with the caller's memo, every table's write counters (activity.ts)
 *   master: BEGIN REPEATABLE READ READ ONLY — one snapshot for every table and sequence
 *   slave:  BEGIN; SET LOCAL session_replication_role = replica — FK checks and triggers off
 *   both:   read the catalogs; any schema drift → refuse, nothing applied
 *   both:   with the memo: tables whose counters have not moved since the last good run are
 *           left unread; the others' exact markers are read (memo.ts), and every table's at
 *           least every `verifyEveryMs`; tables whose markers have not moved are left alone,
 *           and a table only the master wrote to gets the rows written since (since.ts)
 *   both:   fingerprint each other table; unchanged tables are left alone
 *   both:   in a changed table, find the rows that differ (delta.ts), or reload it whole when it
 *           is small, has no primary key, or too much of it differs
 *   slave:  TRUNCATE (or DELETE) the tables to reload, align sequences, COPY them from the master;
 *           for the others DELETE the differing rows and COPY in the master's
 *   slave:  COMMIT — the only point where the slave changes, all at once
 *
 * Operational failures (a node down, drift, a lost connection, an abort) never throw: the
 * report says ok:false and why, and the slave is as it was.
 */

export interface TableStat {
  table: string;
  /** reload: emptied and copied whole; delta: only the rows that differ deleted and copied in. */
  method: "reload" | "delta";
  /** Why a reload rather than a delta (null for a delta). */
  why: string | null;
  /** Slave rows removed. */
  deleted: number;
  /** Master rows copied in. */
  rows: number;
  bytes: number;
  durationMs: number;
  /** How a reload emptied the table: TRUNCATE, DELETE when a kept table references this one, or not at all when it was empty. */
  cleared: Cleared | null;
  /** Secondary indexes built after the load instead of kept up row by row during it (indexes.ts). */
  indexes: number;
}

export interface ReplicationReport {
  ok: boolean;
  /** Epoch ms. */
  startedAt: number;
  durationMs: number;
  /** Tables written on the slave, reloaded or by delta (empty when ok is false: nothing was applied). */
  copied: TableStat[];
  /** Tables found identical on both nodes, left untouched. */
  skipped: string[];
  /** Sequences whose value was set to the master's. */
  sequences: string[];
  rows: number;
  bytes: number;
  error: string | null;
  /** Schema differences when the run was refused for drift. */
  drift: string[];
  /** Wall-clock ms per step of the run (connect, catalog, markers, …), in the order they ran: where a pass spends its time. */
  steps: Record<string, number>;
}

export type ReplicationLog = (event: string, fields: Record<string, unknown>) => void;

export interface ReplicateOptions {
  signal?: AbortSignal;
  log?: ReplicationLog;
  /** Kept by the caller from one run to the next: lets unchanged tables be skipped unread (see memo.ts). */
  memo?: ReplicationMemo;
}

export async function replicate(
  cfg: ResolvedReplicationConfig,
  opts: ReplicateOptions = {},
): Promise<ReplicationReport> {
  const startedAt = Date.now();
  const t0 = performance.now();
  const log = opts.log ?? (() => {});
  const report: ReplicationReport = {
    ok: false,
    startedAt,
    durationMs: 0,
    copied: [],
    skipped: [],
    sequences: [],
    rows: 0,
    bytes: 0,
    error: null,
    drift: [],
    steps: {},
  };
  const lap = stepClock(report.steps);
  const sessions: Session[] = [];
  const abort = abortOn(opts.signal, cfg.timeoutMs, () => sessions.forEach((s) => s.kill()));
  const where = { master: endpoint(cfg.master), slave: endpoint(cfg.slave) };
  log("replication.start", { ...where });
  try {
    abort.check();
    const limits = { statementTimeoutMs: cfg.statementTimeoutMs, lockTimeoutMs: cfg.lockTimeoutMs };
    const opened = await Promise.allSettled([
      openSession("master", cfg.master, limits),
      openSession("slave", cfg.slave, limits),
    ]);
    for (const o of opened) if (o.status === "fulfilled") sessions.push(o.value);
    for (const o of opened) if (o.status === "rejected") throw o.reason;
    abort.check(); // an abort during connect found no session to kill
    lap("connect");
    const [master, slave] = sessions as [Session, Session];
    const memo = opts.memo;

    // Before the master's snapshot, so that any write the counters show is in it (activity.ts).
    const activity = memo
      ? await Promise.all([
          on(master, "read table activity", () => readActivity(master, cfg.schema)),
          on(slave, "read table activity", () => readActivity(slave, cfg.schema)),
        ])
      : null;
    lap("activity");
    await step(master, "open the snapshot", "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    const snapshot = memo ? await on(master, "read the snapshot", () => snapshotXmin(master)) : null;
    await step(slave, "open the transaction", "BEGIN; SET LOCAL session_replication_role = replica");

    lap("begin");
    const [mCat, sCat] = await Promise.all([
      on(master, "read the catalog", () => readCatalog(master.client, cfg.schema)),
      on(slave, "read the catalog", () => readCatalog(slave.client, cfg.schema)),
    ]);
    lap("catalog");
    const sel = { include: cfg.include, exclude: cfg.exclude };
    const tables = { master: selectTables(mCat.tables.keys(), sel), slave: selectTables(sCat.tables.keys(), sel) };
    const seqs = { master: selectSequences(mCat.sequences, sel), slave: selectSequences(sCat.sequences, sel) };
    const drift = schemaDrift(mCat, sCat, tables, seqs);
    if (drift.length) {
      report.drift = drift;
      throw new Refused(
        `schema drift between master and slave (${drift.length} difference${drift.length > 1 ? "s" : ""}), nothing applied: ${drift.join("; ")}`,
      );
    }

    const infos = tables.master.map((n) => mCat.tables.get(n)!);
    // As pg_dump does: no DDL may change these tables under the snapshot while we read them.
    if (infos.length)
      await step(
        master,
        "lock the tables",
        `LOCK TABLE ${infos.map((t) => qualified(cfg.schema, t.name)).join(", ")} IN ACCESS SHARE MODE`,
      );

    lap("lock");
    // With the caller's memo, what can be skipped or narrowed before any fingerprint.
    const scope = `${where.master}>${where.slave}/${cfg.schema}`;
    const key = (t: TableInfo) => memoKey(scope, t.name);
    const [mAct, sAct] = activity ?? [null, null];
    const remembered = (t: TableInfo) => {
      const [m, s] = memo?.markers.get(key(t))?.split("|") ?? [];
      return m !== undefined && s !== undefined ? { m, s } : undefined;
    };
    // Whether each node's write counters moved since the last good run that read the table.
    const wrote = (t: TableInfo) => {
      const was = memo?.activity.get(key(t));
      const [m, s] = [mAct?.get(t.name), sAct?.get(t.name)];
      return { master: !was || !m || was.m !== m, slave: !was || !s || was.s !== s };
    };
    // A table the memo last left equal, big enough for a delta: when only the master wrote to it
    // since, the rows written since are the delta (since.ts).
    const sinceReady = (t: TableInfo) => {
      const rows = markerRows(remembered(t)?.s ?? "");
      return (
        memo?.since.has(key(t)) === true &&
        rows !== null &&
        reloadReason(t, sCat.tables.get(t.name)!.primaryKey, { master: rows, slave: rows }) === null
      );
    };
    // Between exact runs the counters choose what is read: a table neither node wrote to is left
    // unread, one only the master wrote to goes to the rows written since without its markers.
    const exact = !mAct || !sAct || startedAt - memo!.verifiedAt >= cfg.verifyEveryMs;
    const quiet = new Set<string>();
    const byCounters = new Set<string>();
    if (!exact)
      for (const t of infos) {
        const w = wrote(t);
        if (!remembered(t) || w.slave) continue;
        if (!w.master) quiet.add(t.name);
        else if (sinceReady(t)) byCounters.add(t.name);
      }
    const markers = new Map<string, { m: string; s: string }>();
    if (memo) {
      const names = infos.map((t) => t.name).filter((n) => !quiet.has(n) && !byCounters.has(n));
      // The slave's first: a table it holds no row of needs no scan of the master's rows (the
      // fingerprint's "has the master any row" decides it), which is most of a full sync's time
      // before the first COPY. Its master marker stays unknown until a later exact run.
      const ss = await on(slave, "read table markers", () => readMarkers(slave, cfg.schema, names));
      const held = names.filter((_, i) => markerRows(ss[i]!) !== 0);
      const ms = await on(master, "read table markers", () => readMarkers(master, cfg.schema, held));
      const m = new Map(held.map((n, i) => [n, ms[i]!]));
      names.forEach((n, i) => markers.set(n, { m: m.get(n) ?? UNKNOWN_MARKER, s: ss[i]! }));
    }
    lap("markers");
    const known = infos.filter((t) => {
      if (quiet.has(t.name)) return true;
      const [was, now] = [remembered(t), markers.get(t.name)];
      return was !== undefined && now !== undefined && now.m !== UNKNOWN_MARKER && was.m === now.m && was.s === now.s;
    });
    const knownNames = new Set(known.map((t) => t.name));
    const rowsOf = (t: TableInfo) => {
      const mk = markers.get(t.name);
      return mk ? { master: markerRows(mk.m), slave: markerRows(mk.s) } : { master: null, slave: null };
    };
    // A table the memo knows whose markers moved has most likely changed: when a delta would be
    // tried on it, its fingerprint is taken per bucket, which is also the delta's first level.
    const bitsFor = (t: TableInfo) => {
      const { master: m, slave: s } = rowsOf(t);
      if (!remembered(t) || m === null || s === null) return null;
      return fingerprintBits(t, sCat.tables.get(t.name)!.primaryKey, { master: m, slave: s });
    };
    // The rows written since: the tables chosen by the counters, and those whose markers say only
    // the master's side moved.
    const sinceTables = infos.filter(
      (t) =>
        byCounters.has(t.name) ||
        (!knownNames.has(t.name) && sinceReady(t) && remembered(t)!.s === markers.get(t.name)?.s),
    );
    // What was read of the slave before its lock holds only for a table whose marker has not moved
    // since: locks `tables` against writers and returns those of `read` (read before) that moved.
    // One statement for all of them; the lock keeps every writer out from here on.
    const lockAndRecheck = async (tables: TableInfo[], read: string[]) => {
      await lockAgainstWriters(
        slave,
        cfg.schema,
        tables.map((t) => t.name),
      );
      const now = await on(slave, "read table markers", () => readMarkers(slave, cfg.schema, read));
      return new Set(read.filter((t, i) => now[i] !== markers.get(t)?.s));
    };
    const moved = await lockAndRecheck(
      sinceTables,
      sinceTables.filter((t) => markers.has(t.name)).map((t) => t.name),
    );
    const plans = new Map<string, TablePlan>();
    const changed = new Map<string, Changed>();
    const removedSums = new Map<string, bigint>();
    for (const t of sinceTables) {
      abort.check();
      if (moved.has(t.name)) continue;
      const was = remembered(t)!;
      const slaveRows = markerRows(was.s)!;
      const r = await sincePlan(
        master,
        slave,
        cfg.schema,
        sCat.tables.get(t.name)!,
        memo!.since.get(key(t))!,
        slaveRows,
      ).catch((e: unknown) => {
        throw new Error(`comparing the rows of table ${t.name}: ${describe(e)}`);
      });
      // Its markers, when unread: the slave's as the memo left them (its counters have not moved),
      // the master's unknown until the next exact run reads them.
      if (!markers.has(t.name)) markers.set(t.name, { m: UNKNOWN_MARKER, s: was.s });
      if (r.plan && !r.plan.add.length && !r.plan.remove.length) continue; // written and undone, or rewritten
      changed.set(t.name, { master: r.masterRows, slave: slaveRows });
      if (r.plan) {
        plans.set(t.name, r.plan);
        removedSums.set(t.name, r.removedSum);
      }
    }
    lap("since");
    const sinceNames = new Set(sinceTables.map((t) => t.name));
    const bySince = [...plans.keys()];
    const toFingerprint = infos.filter(
      (t) => !knownNames.has(t.name) && (!sinceNames.has(t.name) || moved.has(t.name)),
    );
    const fingerprinted = await changedTables(
      master,
      slave,
      cfg.schema,
      toFingerprint.map((t) => ({ table: t, bits: bitsFor(t) })),
    ).catch((e: unknown) => {
      throw new Error(`fingerprinting: ${describe(e)}`);
    });
    for (const [t, c] of fingerprinted) changed.set(t, c);
    lap("fingerprints");
    const toCopy = infos.filter((t) => changed.has(t.name));
    report.skipped = infos.filter((t) => !changed.has(t.name)).map((t) => t.name);

    // Each other changed table: reloaded whole, or only its differing rows (see delta.ts).
    const deltas: TableInfo[] = [];
    for (const t of toCopy) {
      if (plans.has(t.name)) continue;
      const why = reloadReason(t, sCat.tables.get(t.name)!.primaryKey, changed.get(t.name)!);
      if (why === null) deltas.push(t);
      else plans.set(t.name, { method: "reload", why });
    }
    // A first level taken from the fingerprint is of the slave before its lock.
    const stale = await lockAndRecheck(
      deltas,
      deltas.filter((t) => changed.get(t.name)!.level1).map((t) => t.name),
    );
    for (const t of deltas) {
      abort.check();
      const { master: m, slave: s, level1 } = changed.get(t.name)!;
      const fresh = level1 && !stale.has(t.name);
      const plan = await diffTable(
        master,
        slave,
        cfg.schema,
        t,
        { master: m ?? 0, slave: s },
        fresh ? level1 : undefined,
      ).catch((e: unknown) => {
        throw new Error(`comparing the rows of table ${t.name}: ${describe(e)}`);
      });
      plans.set(t.name, plan);
    }
    lap("row digests");
    const reloads = toCopy.filter((t) => plans.get(t.name)!.method === "reload");
    log("replication.plan", {
      copy: toCopy.map((t) => t.name),
      reload: reloads.map((t) => ({ table: t.name, why: (plans.get(t.name) as { why: string }).why })),
      delta: toCopy.filter((t) => plans.get(t.name)!.method === "delta").map((t) => t.name),
      skipped: report.skipped.length,
      quiet: quiet.size,
      fingerprinted: toFingerprint.length,
      since: bySince,
    });

    const cleared = await clearForReload(
      slave,
      cfg.schema,
      reloads.map((t) => t.name),
      reloads.filter((t) => changed.get(t.name)!.slave === 0).map((t) => t.name),
      sCat.referencedBy,
    );

    lap("clear");
    // The master's rows of a reloaded table: counted, or else the master's estimate.
    const expected = (t: TableInfo) => changed.get(t.name)!.master ?? t.estimatedRows;
    const deferred = await deferIndexes(
      slave,
      cfg.schema,
      reloads.map((t) => ({ name: t.name, rows: expected(t) })),
      (error) => log("replication.indexes-kept", { error }),
    );
    lap("indexes");
    // Before the copies, so that a failure at any later point also proves them rolled back.
    const sequences = await syncSequences(master, slave, cfg.schema, seqs.master);
    lap("sequences");
    const copied: TableStat[] = [];
    // The master's side of every copy is read ahead from here on (see copy.ts): no other master
    // query until the loop is over.
    const feed = readAhead(
      master,
      toCopy.map((t) => {
        const plan = plans.get(t.name)!;
        return plan.method === "reload"
          ? tableCopy(cfg.schema, t, cfg.format, cleared.get(t.name) === "truncate", expected(t))
          : rowsCopy(cfg.schema, t, plan.add, cfg.format);
      }),
      toCopy.map((t) => t.name),
    );
    try {
      for (const [i, t] of toCopy.entries()) {
        abort.check();
        const c0 = performance.now();
        const plan = plans.get(t.name)!;
        const stat: TableStat =
          plan.method === "reload"
            ? {
                table: t.name,
                method: "reload",
                why: plan.why,
                deleted: changed.get(t.name)!.slave,
                ...(await copyOne(feed, i, slave, t)),
                durationMs: 0,
                cleared: cleared.get(t.name)!,
                indexes: await buildDeferred(slave, deferred, t.name),
              }
            : {
                table: t.name,
                method: "delta",
                why: null,
                ...(await applyDelta(feed, i, master, slave, cfg, t, plan)),
                durationMs: 0,
                cleared: null,
                indexes: 0,
              };
        stat.durationMs = Math.round(performance.now() - c0);
        copied.push(stat);
        log("replication.table", { ...stat });
      }
    } catch (err) {
      feed.stop(err instanceof Error ? err : new Error(String(err)));
      throw err;
    } finally {
      await feed.done;
    }

    lap("copy");
    // The slave's markers of what it now holds. A reloaded table's are known without a scan:
    // every visible row was written by this transaction (see reloadedMarkers); a delta's mix old
    // rows and new, so they are read.
    const after = new Map<string, string>();
    if (memo) {
      const whole = copied.filter((c) => c.method === "reload");
      const own =
        whole.length || removedSums.size ? await on(slave, "read the transaction's id", () => ownRowHash(slave)) : 0n;
      const computed = await on(slave, "read table markers", () => reloadedMarkers(slave, cfg.schema, whole, own));
      whole.forEach((c, i) => after.set(c.table, computed[i]!));
      // A delta of the rows written since: computed from the marker it had and what it changed.
      for (const c of copied) {
        const removed = removedSums.get(c.table);
        const was = removed === undefined ? null : markers.get(c.table)?.s;
        const computed = was ? markerAfterDelta(was, { rows: c.deleted, sum: removed! }, c.rows, own) : null;
        if (computed) after.set(c.table, computed);
      }
      const delta = copied.filter((c) => c.method === "delta" && !after.has(c.table)).map((c) => c.table);
      const read = await on(slave, "read table markers", () => readMarkers(slave, cfg.schema, delta));
      delta.forEach((t, i) => after.set(t, read[i]!));
    }
    // The slave's activity once this transaction's own writes are counted (activity.ts): read
    // before the commit, while they are still this transaction's.
    const written = new Map<string, string>();
    if (sAct) {
      const tables = copied
        .filter((c) => sAct.has(c.table))
        .map((c) => ({ table: c.table, before: sAct.get(c.table)! }));
      const now = await on(slave, "read table activity", () => afterOwnWrites(slave, cfg.schema, tables));
      tables.forEach((t, i) => written.set(t.table, now[i]!));
    }
    lap("memo");
    abort.check();
    await step(slave, "commit", "COMMIT");
    // Our writes counted now rather than when the session ends, so that a run right after this
    // one finds the activity the memo expects (PostgreSQL 15+; without it, only later).
    if (written.size) await slave.client.query("SELECT pg_stat_force_next_flush()").catch(() => undefined);
    lap("commit");
    if (memo) {
      // Every table whose markers were read is equal as of this snapshot; a quiet one keeps its
      // whole memo, so that a write counted late still moves it next time.
      for (const [t, s] of after) markers.set(t, { m: markers.get(t)!.m, s });
      for (const [t, { m, s }] of markers) {
        const k = memoKey(scope, t);
        memo.markers.set(k, `${m}|${s}`);
        memo.since.set(k, snapshot!);
        const [am, as] = [mAct?.get(t), written.get(t) ?? sAct?.get(t)];
        if (am && as) memo.activity.set(k, { m: am, s: as });
        else memo.activity.delete(k);
      }
      // A run without activity (a node not counting) is exact: every table's activity is dropped above.
      if (exact) memo.verifiedAt = startedAt;
    }
    report.copied = copied;
    report.sequences = sequences;
    report.rows = copied.reduce((n, s) => n + s.rows, 0);
    report.bytes = copied.reduce((n, s) => n + s.bytes, 0);
    report.ok = true;
  } catch (err) {
    report.error = abort.reason() ?? (err instanceof Refused ? err.message : describe(err));
  } finally {
    abort.dispose();
    // After a COMMIT nothing is left to wait for: the server's goodbye is not awaited.
    if (report.ok) for (const s of sessions) void s.close();
    else await Promise.all(sessions.map(rollbackAndClose));
    lap("close");
    report.durationMs = Math.round(performance.now() - t0);
    if (report.ok)
      log("replication.done", {
        copied: report.copied.length,
        skipped: report.skipped.length,
        sequences: report.sequences.length,
        rows: report.rows,
        bytes: report.bytes,
        deleted: report.copied.reduce((n, s) => n + s.deleted, 0),
        reloaded: report.copied.filter((c) => c.method === "reload").length,
        delta: report.copied.filter((c) => c.method === "delta").length,
        durationMs: report.durationMs,
      });
    else log("replication.failed", { error: report.error, drift: report.drift, durationMs: report.durationMs });
  }
  return report;
}

const endpoint = (e: { host: string; port: number; database: string }) => `${e.host}:${e.port}/${e.database}`;

/** Marks the end of a step: the time since the previous mark is added to the step's entry. */
function stepClock(steps: Record<string, number>): (name: string) => void {
  let last = performance.now();
  return (name) => {
    const now = performance.now();
    steps[name] = Math.round((steps[name] ?? 0) + now - last);
    last = now;
  };
}

/** A refusal whose message is already the whole story. */
class Refused extends Error {}

/** Only the differing rows: the slave's deleted by ctid (a bound parameter), then the master's copied in. */
async function applyDelta(
  feed: Feed,
  i: number,
  master: Session,
  slave: Session,
  cfg: ResolvedReplicationConfig,
  t: TableInfo,
  plan: Extract<TablePlan, { method: "delta" }>,
): Promise<{ deleted: number; rows: number; bytes: number }> {
  const deleted = plan.remove.length
    ? await on(slave, `delete the changed rows of ${t.name}`, async () => {
        const r = await slave.client.query(deleteRowsSql(cfg.schema, t.name), [plan.remove.map(tidText)]);
        return r.rowCount ?? 0;
      })
    : 0;
  // The table is locked: a row the digests listed that is gone now means something else is wrong.
  if (deleted !== plan.remove.length)
    throw new Error(`${slave.label}: table ${t.name}: deleted ${deleted} rows of ${plan.remove.length} listed`);
  const { rows, bytes } = await copyOne(feed, i, slave, t);
  if (rows !== plan.add.length)
    throw new Error(`${master.label}: table ${t.name}: sent ${rows} rows of ${plan.add.length} listed`);
  return { deleted, rows, bytes };
}

/** Job `i` of the feed into the slave: a whole table, or only the master's rows a delta lists. */
async function copyOne(feed: Feed, i: number, slave: Session, t: TableInfo) {
  try {
    return await feed.copy(i, slave);
  } catch (err) {
    // The slave got CopyFail, so it can still roll back cleanly. A failure of the master's side
    // names the table it was reading, which may be a later one.
    throw feed.failure ?? new Error(`copying table ${t.name}: ${describe(err)}`);
  }
}

/**
 * After a failure the open transaction must end without a trace. A clean ROLLBACK when the
 * connection still answers; otherwise cut it, and the server rolls back by itself.
 */
async function rollbackAndClose(s: Session): Promise<void> {
  if (s.dead) return;
  const rolledBack = await Promise.race([
    s.client.query("ROLLBACK").then(
      () => true,
      () => false,
    ),
    new Promise<boolean>((r) => setTimeout(() => r(false), 2_000).unref()),
  ]);
  if (rolledBack) await s.close();
  else s.kill();
}

/** The caller's signal and the run's own deadline, as one: on either, `onAbort` cuts the sessions. */
function abortOn(signal: AbortSignal | undefined, timeoutMs: number, onAbort: () => void) {
  let why: string | null = null;
  const fire = (reason: string) => {
    if (why) return;
    why = reason;
    onAbort();
  };
  const onSignal = () =>
    fire(
      `aborted${signal?.reason instanceof Error ? `: ${signal.reason.message}` : typeof signal?.reason === "string" ? `: ${signal.reason}` : ""}`,
    );
  if (signal?.aborted) onSignal();
  signal?.addEventListener("abort", onSignal, { once: true });
  const timer = setTimeout(() => fire(`timed out after ${timeoutMs} ms`), timeoutMs);
  timer.unref();
  return {
    reason: () => why,
    check() {
      if (why) throw new Error(why);
    },
    dispose() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onSignal);
    },
  };
}

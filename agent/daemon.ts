import { createServer, type Server } from "node:http";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { AgentReport } from "../protocol/report.js";
import type { Config } from "./config.js";
import { VerdictSource } from "./intake/source.js";
import { Keeper, systemClock, type Clock, type TickResult } from "./keeper.js";
import { hostPort } from "./lan/common.js";
import { LanMonitor } from "./lan/monitor.js";
import { acquireLock } from "./lock.js";
import type { Logger } from "./log.js";
import { createMetrics, oneHot, ROLES, STATES, type Metrics } from "./metrics.js";
import { StandbySync } from "./standby-sync.js";

export const AGENT_VERSION = "0.1.0";
export const daemonLockPath = (stateDir: string) => join(stateDir, "agent.lock");

/**
 * `xivo-ha-agent run`: the keeper loop with its two signals (the verdict client, pushed or
 * polled, and the LAN monitor), a report to the worker after every pass, and a local HTTP
 * endpoint for health, metrics and status. One daemon per state directory (its own lock).
 */
export interface Daemon {
  /** Where /healthz, /metrics and /status answer (null when disabled). */
  httpUrl: string | null;
  keeper: Keeper;
  stop(): Promise<void>;
}

export async function startDaemon(cfg: Config, log: Logger, clock: Clock = systemClock): Promise<Daemon> {
  await mkdir(cfg.stateDir, { recursive: true, mode: 0o750 });
  const daemonLock = await acquireLock(daemonLockPath(cfg.stateDir), { purpose: "run", waitMs: 0 });
  const metrics = createMetrics();
  const keeper: Keeper = new Keeper({
    config: { ...cfg, enforceEveryMs: cfg.loop.enforceEveryMs },
    verdicts: { freshness: (m) => source.freshness(m), latest: () => source.latest() },
    lan: () => lan.view,
    clock,
    log,
  });
  await keeper.load();

  const source: VerdictSource = new VerdictSource({
    url: cfg.worker.url,
    clusterId: cfg.clusterId,
    token: cfg.worker.token,
    publicKeys: cfg.worker.publicKeys,
    pollIntervalMs: cfg.worker.pollIntervalMs,
    maxVerdictAgeMs: cfg.worker.maxVerdictAgeMs,
    lastSeq: keeper.lastSeq,
    onSeq: (seq) => keeper.persistSeq(seq),
    clock,
    log: (event, fields) => log(event, fields),
    push: cfg.worker.push,
  });
  const lan = new LanMonitor(cfg.lan, cfg.master.host);
  const sync = new StandbySync({
    keeper,
    stateDir: cfg.stateDir,
    replication: cfg.replication,
    failback: cfg.failback,
    files: cfg.files,
    masterUp: () => source.freshness(clock.mono()) === "fresh" && source.latest()?.verdict.state === "up",
    log,
  });
  const syncPass = async () => {
    if (stopped) return;
    try {
      const outcome = await sync.run();
      metrics.syncRuns.inc({ outcome });
      const rep = sync.lastReplication;
      if (rep && (outcome === "replicated" || outcome === "replication-failed" || outcome === "files-failed")) {
        metrics.replicationDuration.set(rep.durationMs / 1000);
        metrics.replicationRows.set(rep.rows);
        if (rep.ok) metrics.replicationLastSuccess.set(rep.startedAt / 1000);
      }
      if (outcome !== "not-standby" && outcome !== "master-not-up" && outcome !== "busy") kick(); // report it
    } catch (err) {
      log("standby-sync.error", { message: (err as Error).message }, "error");
    }
  };

  let stopped = false;
  const timers: NodeJS.Timeout[] = [];

  // ---- the keeper pass: serialized, re-run at once if asked while running -------------------
  let running: Promise<void> | null = null;
  let again = false;
  let lastReport: string | null = null;
  let lastReportMono = -Infinity;
  const pass = async () => {
    let result: TickResult | null = null;
    try {
      result = await keeper.tick();
      metrics.decisions.inc({ action: result.decision.action, row: result.decision.row });
      if (!result.ok && result.did !== "nothing") metrics.commandFailures.inc({ kind: result.did });
      // Back to standby: copy the slave's call records back, then resume replication, at once.
      if (result.did === "failback" && result.ok) void syncPass();
    } catch (err) {
      log("keeper.error", { message: (err as Error).message }, "error");
    }
    updateGauges(metrics, keeper, source, clock);
    await report(result);
  };
  const kick = () => {
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    running = (async () => {
      do {
        again = false;
        await pass();
      } while (again && !stopped);
      running = null;
    })();
  };

  // ---- report to the worker: on every change, and as a heartbeat ------------------------------
  const report = async (result: TickResult | null) => {
    const body = buildReport(cfg, keeper, source, lan, sync, clock);
    const key = JSON.stringify({ ...body, at: 0, counters: {} });
    const heartbeatDue = clock.mono() - lastReportMono >= cfg.loop.reportEveryMs;
    if (key === lastReport && !heartbeatDue && result?.did !== "enforce") return;
    try {
      const res = await fetch(`${cfg.worker.url}/v1/clusters/${cfg.clusterId}/report`, {
        method: "POST",
        headers: { authorization: `Bearer ${cfg.worker.token}`, "content-type": "application/json" },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(5000),
      });
      await res.arrayBuffer();
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      lastReport = key;
      lastReportMono = clock.mono();
    } catch (err) {
      metrics.reportFailures.inc();
      log("report.failed", { message: (err as Error).message }, "warn");
    }
  };

  // ---- LAN rounds on their own beat -----------------------------------------------------------
  let lanBusy = false;
  const lanRound = async () => {
    if (lanBusy || stopped) return;
    lanBusy = true;
    try {
      const before = lan.view.state;
      const view = await lan.round();
      oneHot(metrics.lanState, "state", STATES, view.state);
      for (const p of view.probes) metrics.lanRtt.set({ probe: p.name }, p.ok && p.rttMs !== null ? p.rttMs / 1000 : NaN);
      if (view.state !== before) {
        log("lan.changed", { from: before, to: view.state, reason: view.reason });
        kick();
      }
    } finally {
      lanBusy = false;
    }
  };

  let firstSync = true;
  source.on("verdict", () => {
    metrics.accepted.inc({ channel: source.latest()?.channel ?? "poll" });
    // Databases sync only while the master is up: a copy in flight is dropped, not finished.
    if (source.latest()?.verdict.state !== "up") sync.cancel();
    kick();
    // The first fresh "up" after start: sync now rather than one whole schedule later.
    if (firstSync && (cfg.replication || cfg.failback || cfg.files) && source.latest()?.verdict.state === "up") {
      firstSync = false;
      void syncPass();
    }
  });
  source.on("rejected", (r: { reason: string }) => metrics.rejected.inc({ reason: r.reason }));
  source.on("push", (p: { connected: boolean }) => metrics.pushConnected.set(p.connected ? 1 : 0));

  // ---- local HTTP: health, metrics, status ----------------------------------------------------
  let server: Server | null = null;
  let httpUrl: string | null = null;
  if (cfg.http.port !== null) {
    server = createServer(async (req, res) => {
      const path = (req.url ?? "/").split("?")[0];
      if (req.method !== "GET") return send(res, 405, { error: "GET only" });
      if (path === "/healthz") {
        const fresh = source.freshness(clock.mono()) === "fresh";
        return send(res, fresh ? 200 : 503, { ok: fresh, role: keeper.role, verdict: source.freshness(clock.mono()) });
      }
      if (path === "/metrics") {
        updateGauges(metrics, keeper, source, clock);
        res.writeHead(200, { "content-type": metrics.registry.contentType });
        return res.end(await metrics.registry.metrics());
      }
      if (path === "/status") return send(res, 200, statusOf(cfg, keeper, source, lan, clock));
      return send(res, 404, { error: "not found" });
    });
    await new Promise<void>((resolve, reject) => {
      server!.once("error", reject);
      server!.listen(cfg.http.port!, cfg.http.host, () => resolve());
    });
    const addr = server.address() as { port: number };
    httpUrl = `http://${hostPort(cfg.http.host, addr.port)}`;
  }

  source.start();
  timers.push(setInterval(kick, cfg.loop.intervalMs));
  if (cfg.replication || cfg.failback || cfg.files) {
    // Without replication, a pending copy-back is still retried, every minute.
    timers.push(setInterval(() => void syncPass(), cfg.replication?.everyMs ?? 60_000));
  }
  timers.push(setInterval(() => void lanRound(), cfg.lan.intervalMs));
  void lanRound();
  kick();
  log("agent.started", { clusterId: cfg.clusterId, role: keeper.role, mode: cfg.mode, http: httpUrl, version: AGENT_VERSION });

  return {
    httpUrl,
    keeper,
    async stop() {
      if (stopped) return;
      stopped = true;
      for (const t of timers) clearInterval(t);
      await sync.stop();
      await source.stop();
      await running;
      await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
      await daemonLock.release();
      log("agent.stopped", { role: keeper.role });
    },
  };
}

function send(res: import("node:http").ServerResponse, status: number, body: unknown) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

function updateGauges(metrics: Metrics, keeper: Keeper, source: VerdictSource, clock: Clock) {
  oneHot(metrics.role, "role", ROLES, keeper.role);
  const latest = source.latest();
  oneHot(metrics.verdictState, "state", STATES, latest?.verdict.state ?? null);
  metrics.verdictAge.set(latest ? (latest.ageAtReceiptMs + clock.mono() - latest.receivedAtMono) / 1000 : NaN);
}

function buildReport(cfg: Config, keeper: Keeper, source: VerdictSource, lan: LanMonitor, sync: StandbySync, clock: Clock): AgentReport {
  const c = source.counters();
  const view = lan.view;
  return {
    role: keeper.role,
    mode: cfg.mode,
    at: clock.now(),
    lastAction: keeper.lastAction,
    lan: {
      state: view.state,
      probes: view.probes.map((p) => ({ name: p.name, ok: p.ok, detail: p.detail.slice(0, 2000), rttMs: p.rttMs })),
    },
    verdictSeq: source.latest()?.verdict.seq ?? null,
    alerts: [keeper.lastDecision?.alert, keeper.telephonyAlert, ...sync.alerts()].filter((a): a is string => !!a),
    replication: sync.reportField(),
    counters: {
      acceptedPush: c.accepted.push,
      acceptedPoll: c.accepted.poll,
      rejected: Object.values(c.rejected).reduce((a, b) => a + b, 0),
      pollErrors: c.pollErrors,
      reconnects: c.reconnects,
    },
    agentVersion: AGENT_VERSION,
  };
}

export function statusOf(cfg: Config, keeper: Keeper, source: VerdictSource, lan: LanMonitor, clock: Clock) {
  const latest = source.latest();
  return {
    clusterId: cfg.clusterId,
    role: keeper.role,
    since: keeper.since,
    mode: cfg.mode,
    verdict: latest
      ? {
          state: latest.verdict.state,
          seq: latest.verdict.seq,
          reason: latest.verdict.reason,
          freshness: source.freshness(clock.mono()),
          ageMs: Math.round(latest.ageAtReceiptMs + clock.mono() - latest.receivedAtMono),
          channel: latest.channel,
        }
      : null,
    lan: { state: lan.view.state, reason: lan.view.reason },
    lastAction: keeper.lastAction,
    lastDecision: keeper.lastDecision,
    pushConnected: source.counters().pushConnected,
  };
}

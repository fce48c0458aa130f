import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { insecureUrl } from "../protocol/host.js";
import type { Config } from "./config.js";
import { ageNowMs } from "./intake/age.js";
import { VerdictSource } from "./intake/source.js";
import { Keeper, systemClock, type Clock, type TickResult, type VerdictView } from "./keeper.js";
import { LanLoop } from "./lan/loop.js";
import { LanMonitor, type LanView } from "./lan/monitor.js";
import { keepServingLocal, type KeptLocalHttp, type Routes } from "./local-http.js";
import { acquireLock } from "./lock.js";
import type { Logger } from "./log.js";
import { createMetrics, oneHot, ROLES, STATES, type Metrics } from "./metrics.js";
import { Reporter } from "./report.js";
import { hasStandbyWork, type StandbySync, standbySyncFor } from "./standby-sync.js";
import { daemonStatus } from "./status.js";
import { AGENT_VERSION } from "./version.js";

export const daemonLockPath = (stateDir: string) => join(stateDir, "agent.lock");

/**
 * `xivo-ha-agent run`: the keeper loop with its two signals (the verdict client, pushed or
 * polled, and the LAN monitor), a report to the worker after every pass (./report.ts), and a
 * local HTTP endpoint for health, metrics and status (./local-http.ts). One daemon per state
 * directory (its own lock).
 */
export interface Daemon {
  /** Where /healthz, /metrics and /status answer (null when disabled, or while the port is unavailable). */
  httpUrl(): string | null;
  keeper: Keeper;
  stop(): Promise<void>;
}

export async function startDaemon(cfg: Config, log: Logger, clock: Clock = systemClock): Promise<Daemon> {
  await mkdir(cfg.stateDir, { recursive: true, mode: 0o750 });
  const daemonLock = await acquireLock(daemonLockPath(cfg.stateDir), { purpose: "run", waitMs: 0 });
  if (insecureUrl(cfg.worker.url)) {
    const url = new URL(cfg.worker.url).origin; // never the userinfo, if any
    log(
      "config.insecure-worker-url",
      { url, message: "worker.allowInsecureHttp: the worker token travels in clear over plain http" },
      "error",
    );
  }
  const lan = new LanMonitor(cfg.lan, cfg.master.host);
  const verdicts = lateVerdictView();
  const keeper = new Keeper({
    config: { ...cfg, enforceEveryMs: cfg.loop.enforceEveryMs },
    verdicts,
    lan: () => lan.view,
    clock,
    log,
  });
  await keeper.load();
  const source = new VerdictSource({
    url: cfg.worker.url,
    clusterId: cfg.clusterId,
    token: cfg.worker.token,
    publicKeys: cfg.worker.publicKeys,
    pollIntervalMs: cfg.worker.pollIntervalMs,
    maxVerdictAgeMs: cfg.worker.maxVerdictAgeMs,
    lastSeq: keeper.lastSeq,
    incarnation: keeper.incarnation,
    onSeq: (seq, incarnation) => keeper.persistSeq(seq, incarnation),
    clock,
    log: (event, fields) => log(event, fields),
    push: cfg.worker.push,
  });
  verdicts.attach(source);
  const masterUp = () => source.freshness(clock.mono()) === "fresh" && source.latest()?.verdict.state === "up";
  const sync = standbySyncFor(cfg, keeper, masterUp, log);
  const metrics = createMetrics();
  let http: KeptLocalHttp | null = null;
  const reporter = new Reporter(
    { cfg, keeper, source, lan, sync, clock, localHttp: () => http?.problem() ?? null },
    metrics,
    log,
  );
  const agent = new AgentLoop({ cfg, log, clock, keeper, source, lan, sync, metrics, reporter });

  // Never awaited into a failure: a taken port is logged, reported and retried, and HA goes on.
  http = cfg.http.port === null ? null : keepServingLocal(cfg.http.host, cfg.http.port, agent.routes(), log);
  await http?.ready();
  agent.start();
  log("agent.started", {
    clusterId: cfg.clusterId,
    role: keeper.role,
    mode: cfg.mode,
    http: http?.url() ?? null,
    version: AGENT_VERSION,
  });

  let stopped = false;
  return {
    httpUrl: () => http?.url() ?? null,
    keeper,
    async stop() {
      if (stopped) return;
      stopped = true;
      await agent.stop();
      await http?.close();
      await daemonLock.release();
      log("agent.stopped", { role: keeper.role });
    },
  };
}

/**
 * The keeper and the verdict source need each other: the source resumes from the seq the keeper
 * persisted and hands each new one back to it, and the keeper reads the source's verdicts. The
 * keeper is built first and reads through this view, which has nothing until the source is attached.
 */
function lateVerdictView(): VerdictView & { attach(source: VerdictSource): void } {
  let source: VerdictSource | null = null;
  return {
    attach: (s) => void (source = s),
    freshness: (nowMono) => source?.freshness(nowMono) ?? "none",
    latest: () => source?.latest() ?? null,
  };
}

interface Parts {
  cfg: Config;
  log: Logger;
  clock: Clock;
  keeper: Keeper;
  source: VerdictSource;
  lan: LanMonitor;
  sync: StandbySync;
  metrics: Metrics;
  reporter: Reporter;
}

/** Runs `pass` one at a time; asked while it runs, it runs once more right after. */
class SerialRunner {
  private running: Promise<void> | null = null;
  private again = false;

  constructor(
    private readonly pass: () => Promise<void>,
    private readonly stopped: () => boolean,
  ) {}

  kick(): void {
    if (this.stopped()) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = (async () => {
      do {
        this.again = false;
        await this.pass();
      } while (this.again && !this.stopped());
      this.running = null;
    })();
  }

  /** Resolves once the pass in progress (and any re-run it owes) is over. */
  async idle(): Promise<void> {
    await this.running;
  }
}

/**
 * The wiring: when the keeper passes run (every loop interval, on each accepted verdict, on a
 * change of LAN state, after a database pass worth reporting), when the standby database sync
 * runs, and the LAN rounds on their own beat.
 */
class AgentLoop {
  private stopped = false;
  private firstSync = true;
  private readonly lanLoop: LanLoop;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly passes = new SerialRunner(
    () => this.pass(),
    () => this.stopped,
  );

  constructor(private readonly p: Parts) {
    this.lanLoop = new LanLoop(p.lan, p.cfg.lan, (before, view) => this.afterLanRound(before, view));
  }

  start(): void {
    const { cfg, source, metrics } = this.p;
    source.on("verdict", () => this.onVerdict());
    source.on("rejected", (r: { reason: string }) => metrics.rejected.inc({ reason: r.reason }));
    source.on("push", (p: { connected: boolean }) => metrics.pushConnected.set(p.connected ? 1 : 0));
    source.start();
    this.timers.push(setInterval(() => this.kick(), cfg.loop.intervalMs));
    if (hasStandbyWork(cfg)) {
      // Without replication, a pending copy-back is still retried, every minute.
      this.timers.push(setInterval(() => void this.syncPass(), cfg.replication?.everyMs ?? 60_000));
    }
    this.lanLoop.start();
    this.kick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    this.lanLoop.stop();
    await this.p.sync.stop();
    await this.p.source.stop();
    await this.passes.idle();
  }

  routes(): Routes {
    const { cfg, keeper, source, lan, clock, metrics } = this.p;
    return {
      "/healthz": () => {
        const fresh = source.freshness(clock.mono()) === "fresh";
        return {
          status: fresh ? 200 : 503,
          json: { ok: fresh, role: keeper.role, verdict: source.freshness(clock.mono()) },
        };
      },
      "/metrics": async () => {
        this.updateGauges();
        return { status: 200, contentType: metrics.registry.contentType, text: await metrics.registry.metrics() };
      },
      "/status": () => ({ status: 200, json: daemonStatus(cfg, keeper, source, lan, clock) }),
    };
  }

  private kick(): void {
    this.passes.kick();
  }

  /** One keeper pass, then its metrics and its report. */
  private async pass(): Promise<void> {
    const { keeper, metrics, log } = this.p;
    let result: TickResult | null = null;
    try {
      result = await keeper.tick();
      metrics.decisions.inc({ action: result.decision.action, row: result.decision.row });
      if (!result.ok && result.did !== "nothing") metrics.commandFailures.inc({ kind: result.did });
      // Back to standby: copy the slave's call records back, then resume replication, at once.
      if (result.did === "failback" && result.ok) void this.syncPass();
    } catch (err) {
      log("keeper.error", { message: (err as Error).message }, "error");
    }
    this.updateGauges();
    await this.p.reporter.afterPass(result);
  }

  private onVerdict(): void {
    const { cfg, source, sync, metrics } = this.p;
    const latest = source.latest();
    const ext = latest?.verdict.state;
    metrics.accepted.inc({ channel: latest?.channel ?? "poll" });
    // Databases sync only while the master is up: a copy in flight is dropped, not finished.
    if (ext !== "up") sync.cancel();
    this.kick();
    // The edge says the master is failing and the LAN has not seen it yet: confirm now rather
    // than at the next beat, since failover waits for both signals.
    const lanState = this.p.lan.view.state;
    if ((ext === "down" || ext === "degraded") && (lanState === "up" || lanState === "unknown"))
      void this.lanLoop.now();
    // The first fresh "up" after start: sync now rather than one whole schedule later.
    if (this.firstSync && hasStandbyWork(cfg) && ext === "up") {
      this.firstSync = false;
      void this.syncPass();
    }
  }

  private async syncPass(): Promise<void> {
    if (this.stopped) return;
    const { sync, metrics, log } = this.p;
    try {
      const outcome = await sync.run();
      metrics.syncRuns.inc({ outcome });
      const rep = sync.lastReplication;
      if (rep && (outcome === "replicated" || outcome === "replication-failed" || outcome === "files-failed")) {
        metrics.replicationDuration.set(rep.durationMs / 1000);
        metrics.replicationRows.set(rep.rows);
        if (rep.ok) metrics.replicationLastSuccess.set(rep.startedAt / 1000);
      }
      if (outcome !== "not-standby" && outcome !== "master-not-up" && outcome !== "busy") this.kick(); // report it
    } catch (err) {
      log("standby-sync.error", { message: (err as Error).message }, "error");
    }
  }

  /** After each LAN round: its metrics, and a change of state decided on at once. */
  private afterLanRound(before: LanView["state"], view: LanView): void {
    const { metrics, log } = this.p;
    oneHot(metrics.lanState, "state", STATES, view.state);
    for (const p of view.probes) metrics.lanRtt.set({ probe: p.name }, p.ok && p.rttMs !== null ? p.rttMs / 1000 : NaN);
    if (view.state !== before) {
      log("lan.changed", { from: before, to: view.state, reason: view.reason });
      this.kick();
    }
  }

  private updateGauges(): void {
    const { keeper, source, clock, metrics } = this.p;
    oneHot(metrics.role, "role", ROLES, keeper.role);
    const latest = source.latest();
    oneHot(metrics.verdictState, "state", STATES, latest?.verdict.state ?? null);
    metrics.verdictAge.set(latest ? ageNowMs(latest, clock.mono()) / 1000 : NaN);
  }
}

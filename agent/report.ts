import type { AgentReport } from "../protocol/report.js";
import type { Config } from "./config.js";
import { clusterUrl } from "./intake/poll.js";
import type { VerdictSource } from "./intake/source.js";
import type { Clock, Keeper, TickResult } from "./keeper.js";
import type { LanMonitor } from "./lan/monitor.js";
import type { Logger } from "./log.js";
import type { Metrics } from "./metrics.js";
import type { StandbySync } from "./standby-sync.js";
import { AGENT_VERSION } from "./version.js";

/**
 * The agent's report to the worker (the status page's view of the slave): sent after a keeper
 * pass when something changed, after every enforcement, and otherwise as a heartbeat every
 * `loop.reportEveryMs`. A failed report is counted and logged, and the next pass tries again.
 */

/**
 * The keeper loop awaits each report, so a worker that accepts the connection and never answers
 * would stall every decision behind it: 5 s is far above a healthy round trip, and a report
 * that misses it is simply sent again by a later pass.
 */
const REPORT_TIMEOUT_MS = 5000;

export interface ReportSources {
  cfg: Config;
  keeper: Keeper;
  source: VerdictSource;
  lan: LanMonitor;
  sync: StandbySync;
  clock: Clock;
  /** Why the local status endpoint is not serving, if it is not. */
  localHttp?: () => string | null;
}

function buildReport({ cfg, keeper, source, lan, sync, clock, localHttp }: ReportSources): AgentReport {
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
    alerts: [
      keeper.lastDecision?.alert,
      keeper.telephonyAlert,
      keeper.fenceAlert,
      ...sync.alerts(),
      localHttp?.(),
    ].filter((a): a is string => !!a),
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

/** Sends reports, skipping one that says nothing new before the heartbeat is due. */
export class Reporter {
  private lastSent: string | null = null;
  private lastSentMono = -Infinity;

  constructor(
    private readonly sources: ReportSources,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {}

  async afterPass(result: TickResult | null): Promise<void> {
    const { cfg, clock } = this.sources;
    const body = buildReport(this.sources);
    // What the report says, without what changes every time (its stamp, its counters).
    const key = JSON.stringify({ ...body, at: 0, counters: {} });
    const heartbeatDue = clock.mono() - this.lastSentMono >= cfg.loop.reportEveryMs;
    if (key === this.lastSent && !heartbeatDue && result?.did !== "enforce") return;
    try {
      const res = await fetch(clusterUrl(cfg.worker.url, cfg.clusterId, "report"), {
        method: "POST",
        headers: { authorization: `Bearer ${cfg.worker.token}`, "content-type": "application/json" },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(REPORT_TIMEOUT_MS),
      });
      await res.arrayBuffer();
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      this.lastSent = key;
      this.lastSentMono = clock.mono();
    } catch (err) {
      this.metrics.reportFailures.inc();
      this.log("report.failed", { message: (err as Error).message }, "warn");
    }
  }
}

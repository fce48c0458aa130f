import { z } from "zod";
import { AgentReport, Role } from "../protocol/report.js";
import { MasterState } from "../protocol/verdict.js";
import type { Config } from "./config.js";
import { ageNowMs } from "./intake/age.js";
import type { VerdictSource } from "./intake/source.js";
import type { Clock, Keeper } from "./keeper.js";
import type { LanMonitor } from "./lan/monitor.js";
import type { StateRead } from "./state.js";

/**
 * What `xivo-ha-agent status` shows: the running daemon's view (its local HTTP /status), or,
 * with no daemon, what the state file says. One schema for both ends: the daemon builds it, the
 * CLI parses it, since an answer on a local port is still input from another process.
 */

const Mode = AgentReport.shape.mode;
const LastAction = AgentReport.shape.lastAction;

export const DaemonStatus = z.object({
  clusterId: z.string(),
  role: Role,
  since: z.number().nullable(),
  mode: Mode,
  verdict: z
    .object({
      state: MasterState,
      seq: z.number().int().nonnegative(),
      reason: z.string(),
      freshness: z.enum(["fresh", "stale", "none"]),
      ageMs: z.number(),
      channel: z.enum(["push", "poll"]),
    })
    .nullable(),
  lan: z.object({ state: MasterState, reason: z.string() }),
  lastAction: LastAction,
  lastDecision: z
    .object({
      row: z.string(),
      role: Role,
      action: z.string(),
      alert: z.string().nullable(),
      reason: z.string(),
      at: z.number(),
    })
    .nullable(),
  pushConnected: z.boolean(),
});
export type DaemonStatus = z.infer<typeof DaemonStatus>;

/** Without a daemon: the persisted role only. */
export interface OfflineStatus {
  clusterId: string;
  daemon: "not running";
  role: Role;
  since: number | null;
  lastAction: z.infer<typeof LastAction>;
  problem?: string;
}

export type StatusView = DaemonStatus | OfflineStatus;

export function daemonStatus(
  cfg: Config,
  keeper: Keeper,
  source: VerdictSource,
  lan: LanMonitor,
  clock: Clock,
): DaemonStatus {
  const latest = source.latest();
  const nowMono = clock.mono();
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
          freshness: source.freshness(nowMono),
          ageMs: Math.round(ageNowMs(latest, nowMono)),
          channel: latest.channel,
        }
      : null,
    lan: { state: lan.view.state, reason: lan.view.reason },
    lastAction: keeper.lastAction,
    lastDecision: keeper.lastDecision,
    pushConnected: source.counters().pushConnected,
  };
}

export function offlineStatus(clusterId: string, state: StateRead): OfflineStatus {
  return {
    clusterId,
    daemon: "not running",
    role: state.ok ? state.state.role : "unknown",
    since: state.ok ? state.state.since : null,
    lastAction: state.ok ? state.state.lastAction : null,
    problem: state.ok ? undefined : state.detail,
  };
}

/** The human-readable form, one line per fact. */
export function statusLines(s: StatusView): string[] {
  const daemon = "daemon" in s ? s.daemon : undefined;
  const lines = [
    `cluster      ${s.clusterId}`,
    `role         ${s.role}${s.since ? ` since ${new Date(s.since).toISOString()}` : ""}${daemon ? ` (daemon ${daemon})` : ""}`,
  ];
  const live = "daemon" in s ? null : s;
  if (live?.verdict) {
    const v = live.verdict;
    lines.push(
      `verdict      ${v.state} (seq ${v.seq}, ${v.freshness}, ${Math.round(v.ageMs / 1000)} s old, by ${v.channel}): ${v.reason}`,
    );
  } else if (!daemon) lines.push("verdict      none yet");
  if (live?.lan) lines.push(`LAN          ${live.lan.state}: ${live.lan.reason}`);
  const a = s.lastAction;
  if (a) lines.push(`last action  ${a.kind} ${a.ok ? "ok" : "FAILED"} at ${new Date(a.at).toISOString()}: ${a.reason}`);
  const d = live?.lastDecision;
  if (d) lines.push(`decision     ${describeDecision(d)}`);
  if ("problem" in s && s.problem) lines.push(`state file   ${s.problem}`);
  return lines;
}

/** A decision in one line: its table row, why, and its alert if any. */
export function describeDecision(d: { row: string; reason: string; alert: string | null }): string {
  return `${d.row}: ${d.reason}${d.alert ? ` [ALERT: ${d.alert}]` : ""}`;
}

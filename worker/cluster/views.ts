import type { AgentReport } from "../../protocol/report.js";
import type { Verdict } from "../../protocol/verdict.js";
import type { ClusterConfig } from "../config.js";
import { verdictWindow } from "../maintenance.js";
import { publicConfig, type PublicConfig } from "../notify/channels.js";
import type { VantageResult } from "./quorum.js";
import type { ClusterRecord, MonitorRecord, ReportRecord } from "./records.js";

/** What the cluster's records look like from outside: pure, from records the object has read. */

export interface ClusterView {
  id: string;
  config: PublicConfig<ClusterConfig>;
  agentTokenSet: true;
  createdAt: number;
  updatedAt: number;
  verdict: Pick<Verdict, "state" | "since" | "reason" | "seq" | "lastRound" | "quorum">;
  /** Each vantage's last result and where it runs; empty when the cluster probes from its own object. */
  vantages: VantageResult[];
  agent: ReportRecord | null;
}

export function clusterView(cluster: ClusterRecord, monitor: MonitorRecord, report: ReportRecord | null): ClusterView {
  const { tracker, seq, lastRound, quorum } = monitor;
  return {
    id: cluster.id,
    config: publicConfig(cluster.config), // never the webhook secrets
    agentTokenSet: true,
    createdAt: cluster.createdAt,
    updatedAt: cluster.updatedAt,
    verdict: {
      state: tracker.state,
      since: tracker.since,
      reason: tracker.reason,
      seq,
      lastRound,
      ...(quorum ? { quorum } : {}),
    },
    vantages: monitor.vantages,
    agent: report,
  };
}

/** The verdict as signed at `issuedAt`, with the caller's nonce (null for a push). */
export function verdictOf(
  cluster: ClusterRecord,
  monitor: MonitorRecord,
  issuedAt: number,
  nonce: string | null,
): Verdict {
  const { tracker, seq, lastRound, quorum } = monitor;
  return {
    v: 1,
    clusterId: cluster.id,
    state: tracker.state,
    since: tracker.since,
    reason: tracker.reason,
    seq,
    issuedAt,
    ageMs: lastRound ? Math.max(0, issuedAt - lastRound.at) : null,
    lastRound,
    nonce,
    maintenance: verdictWindow(cluster.config.maintenance, issuedAt),
    incarnation: Math.trunc(cluster.createdAt),
    ...(quorum ? { quorum } : {}),
  };
}

/** What the history records of a report: what changed, not every heartbeat. Null: nothing did. */
export function agentChange(
  previous: AgentReport | null,
  report: AgentReport,
): { reason: string; data: Record<string, unknown> } | null {
  const changed =
    !previous ||
    previous.role !== report.role ||
    previous.mode !== report.mode ||
    JSON.stringify(previous.lastAction) !== JSON.stringify(report.lastAction) ||
    JSON.stringify(previous.alerts) !== JSON.stringify(report.alerts);
  if (!changed) return null;
  return {
    reason: report.lastAction?.reason ?? `agent reports role ${report.role}`,
    data: {
      role: report.role,
      mode: report.mode,
      lastAction: report.lastAction,
      alerts: report.alerts,
      lan: report.lan?.state ?? null,
    },
  };
}

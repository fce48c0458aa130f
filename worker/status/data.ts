import type { AgentReport, Role } from "../../protocol/report.js";
import type { MasterState } from "../../protocol/verdict.js";
import type { VantageResult } from "../cluster/quorum.js";
import type { HourRow, History, ProbeSeries } from "./store.js";
import type { Interval } from "./uptime.js";

/** What ClusterMonitor.statusData() hands the worker (plain data: it crosses RPC). */
export interface StatusData {
  id: string;
  public: boolean;
  createdAt: number;
  intervalSec: number;
  verdict: { state: MasterState; since: number; reason: string; lastRoundAt: number | null };
  agent: { role: Role; mode: "auto" | "manual"; receivedAt: number; lastAction: AgentReport["lastAction"] } | null;
  maintenance: Interval[];
  /** Each vantage's last result; empty when the cluster probes from its own object. */
  vantages: VantageResult[];
  history: History;
  /** Per probe, the last 24 h in 96 medians of 15 min. */
  latency: ProbeSeries[];
  /** Completed hours since the page's oldest window start (90 d). */
  hourly: HourRow[];
}

import type { AgentReport } from "../../protocol/report.js";

/** A standby agent's report with nothing to say; a test overrides the fields it looks at. */
export const agentReport = (over: Partial<AgentReport> = {}): AgentReport => ({
  role: "standby",
  mode: "auto",
  at: 1,
  lastAction: null,
  lan: null,
  verdictSeq: null,
  alerts: [],
  counters: {},
  ...over,
});

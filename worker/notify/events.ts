import type { NotifyEventType } from "../../protocol/events.js";
import type { AgentReport } from "../../protocol/report.js";
import type { MasterState } from "../../protocol/verdict.js";

/**
 * Which notification events a change produces. Pure: the Durable Object records what these
 * return (history + outbox), so every rule tests without a socket.
 */

export interface NotifyEvent {
  type: NotifyEventType;
  reason: string;
  data: Record<string, unknown>;
}

/** A verdict change → master.down / degraded / up. `unknown` is not news. */
export function fromVerdictChange(change: { from: MasterState; to: MasterState; reason: string }): NotifyEvent | null {
  const types: Partial<Record<MasterState, NotifyEventType>> = {
    down: "master.down",
    degraded: "master.degraded",
    up: "master.up",
  };
  const type = types[change.to];
  if (!type) return null;
  // unknown → up is the monitor starting, not a recovery.
  if (change.to === "up" && change.from === "unknown") return null;
  return { type, reason: change.reason, data: { from: change.from, to: change.to } };
}

/** Alerts the agent raises (agent/decision.ts), matched by prefix: the text may grow details. */
const ALERTS = [
  { prefix: "master unreachable from the internet only", on: "wan.unreachable", off: "wan.recovered" },
  { prefix: "slave's LAN view of the master is failing", on: "lan.failing", off: "lan.recovered" },
  { prefix: "active slave's telephony not answering", on: "telephony.failing", off: "telephony.recovered" },
] as const;

/** Compares two consecutive agent reports. `previous` null: the first report, which only sets a baseline for flips. */
export function fromReport(previous: AgentReport | null, report: AgentReport): NotifyEvent[] {
  const out: NotifyEvent[] = [];
  const action = report.lastAction;
  const newAction = action && JSON.stringify(action) !== JSON.stringify(previous?.lastAction ?? null);
  // The agent's reason already says how fencing went; the structured result rides along for webhooks.
  const fence = action?.fence ? { fence: action.fence } : {};
  if (newAction && action.ok) {
    if (action.kind === "failover" && report.role === "active") {
      out.push({ type: "failover.done", reason: action.reason, data: { role: report.role, action, ...fence } });
    } else if (action.kind === "failback" && report.role === "standby") {
      out.push({ type: "failback.done", reason: action.reason, data: { role: report.role, action } });
    }
  } else if (newAction && !action.inProgress && (action.kind === "failover" || action.kind === "failback")) {
    // The role moved but the services did not follow (a start command failed, or the slave never
    // answered SIP): the loudest thing this monitor can say.
    out.push({ type: `${action.kind}.failed`, reason: action.reason, data: { role: report.role, action, ...fence } });
  }
  const was = previous?.replication?.ok;
  const now = report.replication?.ok;
  if (now === false && was !== false) {
    out.push({
      type: "replication.failing",
      reason: report.replication?.error ?? "replication failed",
      data: { replication: report.replication },
    });
  } else if (now === true && was === false) {
    out.push({
      type: "replication.recovered",
      reason: "replication succeeded again",
      data: { replication: report.replication },
    });
  }
  for (const a of ALERTS) {
    const before = previous?.alerts.find((t) => t.startsWith(a.prefix));
    const after = report.alerts.find((t) => t.startsWith(a.prefix));
    if (after && !before) out.push({ type: a.on, reason: after, data: { alert: after, role: report.role } });
    if (!after && before)
      out.push({ type: a.off, reason: `cleared: ${before}`, data: { alert: before, role: report.role } });
  }
  return out;
}

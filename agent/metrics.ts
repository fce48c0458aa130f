import { Counter, Gauge, Registry } from "prom-client";
import { Role } from "../protocol/report.js";
import { MasterState } from "../protocol/verdict.js";

/** The agent's Prometheus metrics, in a registry of its own (nothing global, testable). */
export function createMetrics() {
  const registry = new Registry();
  const m = {
    registry,
    role: new Gauge({
      name: "xivo_ha_role",
      help: "1 for the slave's current role",
      labelNames: ["role"],
      registers: [registry],
    }),
    verdictAge: new Gauge({
      name: "xivo_ha_verdict_age_seconds",
      help: "Age of the last accepted verdict (worker-measured age plus time held), NaN before the first",
      registers: [registry],
    }),
    verdictState: new Gauge({
      name: "xivo_ha_verdict_state",
      help: "1 for the master state the last accepted verdict says",
      labelNames: ["state"],
      registers: [registry],
    }),
    accepted: new Counter({
      name: "xivo_ha_verdicts_accepted_total",
      help: "Verdicts accepted",
      labelNames: ["channel"],
      registers: [registry],
    }),
    rejected: new Counter({
      name: "xivo_ha_verdicts_rejected_total",
      help: "Verdicts rejected, by reason",
      labelNames: ["reason"],
      registers: [registry],
    }),
    decisions: new Counter({
      name: "xivo_ha_decisions_total",
      help: "Keeper decisions, by action and table row",
      labelNames: ["action", "row"],
      registers: [registry],
    }),
    commandFailures: new Counter({
      name: "xivo_ha_command_failures_total",
      help: "Service transitions or enforcements that failed",
      labelNames: ["kind"],
      registers: [registry],
    }),
    lanState: new Gauge({
      name: "xivo_ha_lan_state",
      help: "1 for the master state the LAN probes say",
      labelNames: ["state"],
      registers: [registry],
    }),
    lanRtt: new Gauge({
      name: "xivo_ha_lan_probe_rtt_seconds",
      help: "Round-trip time of each LAN probe (NaN when it failed)",
      labelNames: ["probe"],
      registers: [registry],
    }),
    pushConnected: new Gauge({
      name: "xivo_ha_push_connected",
      help: "1 while the push WebSocket to the worker is open",
      registers: [registry],
    }),
    reportFailures: new Counter({
      name: "xivo_ha_report_failures_total",
      help: "Reports to the worker that failed",
      registers: [registry],
    }),
    syncRuns: new Counter({
      name: "xivo_ha_standby_sync_total",
      help: "Standby database passes (replication, failback reconciliation), by outcome",
      labelNames: ["outcome"],
      registers: [registry],
    }),
    replicationDuration: new Gauge({
      name: "xivo_ha_replication_duration_seconds",
      help: "Duration of the last replication run",
      registers: [registry],
    }),
    replicationRows: new Gauge({
      name: "xivo_ha_replication_rows",
      help: "Rows copied by the last replication run",
      registers: [registry],
    }),
    replicationLastSuccess: new Gauge({
      name: "xivo_ha_replication_last_success_timestamp_seconds",
      help: "When the last successful replication started (agent clock)",
      registers: [registry],
    }),
  };
  return m;
}
export type Metrics = ReturnType<typeof createMetrics>;

/** Sets a one-hot gauge: 1 for the current value, 0 for the others. */
export function oneHot<L extends string>(g: Gauge<L>, label: L, values: readonly string[], current: string | null) {
  for (const v of values) g.set({ [label]: v } as Partial<Record<L, string>>, v === current ? 1 : 0);
}

export const ROLES = Role.options;
export const STATES = MasterState.options;

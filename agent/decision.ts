import type { Role } from "../protocol/report.js";
import type { MasterState } from "../protocol/verdict.js";

/**
 * The keeper's policy as one table, read top to bottom, first match wins (like pg_auto_failover's
 * KeeperFSM). Pure: every clock reading and duration is computed by the caller from a monotonic
 * clock and passed in, so each row is testable without timers or sockets.
 */

/** `hold`: stay put because inputs are missing or disagree; `none`: inputs agree with the role. */
export type Action = "failover" | "failback" | "hold" | "none";
export type Freshness = "fresh" | "stale" | "none";

export interface DecisionInput {
  role: Role;
  /** The last accepted external verdict: fresh (within maxVerdictAgeMs), stale, or none yet. */
  external: { freshness: Freshness; state: MasterState | null };
  /** The slave's own LAN probes, after their hysteresis; `unknown` until they have an opinion. */
  lan: MasterState;
  mode: "auto" | "manual";
  requireLanConfirmation: boolean;
  /** True from agent start until the first fresh verdict has been accepted. */
  booting: boolean;
  /** How long the external verdict has said `up` without interruption; null if it does not. */
  externalUpForMs: number | null;
  /** Time since the last fresh verdict (or since agent start when there was none). */
  withoutVerdictMs: number;
  failbackHoldDownMs: number;
  noVerdictAlertMs: number;
  /**
   * The planned maintenance the last fresh verdict carries (null: none); `active` is judged on
   * the worker's clock (agent/keeper.ts), so the window begins and ends on time between verdicts.
   */
  maintenance: { active: boolean; reason: string } | null;
  /** Agent clock, epoch ms: only stamped on the decision, never compared. */
  now: number;
}

export interface Row {
  /** Stable name, used in reports and tests. */
  name: string;
  roles: readonly Role[] | "any";
  when: (i: DecisionInput) => boolean;
  next: Role | "same";
  action: Action;
  alert: string | null;
  /** A function when the reason names an input (e.g. the maintenance's own reason). */
  reason: string | ((i: DecisionInput) => string);
}

export interface Decision {
  row: string;
  role: Role;
  action: Action;
  alert: string | null;
  reason: string;
  at: number;
}

const fresh = (i: DecisionInput) => i.external.freshness === "fresh";
const extDown = (i: DecisionInput) => fresh(i) && (i.external.state === "down" || i.external.state === "degraded");
const extUp = (i: DecisionInput) => fresh(i) && i.external.state === "up";
const lanDown = (i: DecisionInput) => i.lan === "down" || i.lan === "degraded";
const silentLong = (i: DecisionInput) => i.withoutVerdictMs >= i.noVerdictAlertMs;
const heldDown = (i: DecisionInput) => (i.externalUpForMs ?? 0) >= i.failbackHoldDownMs;
const auto = (i: DecisionInput) => i.mode === "auto";
const lanOff = (i: DecisionInput) => !i.requireLanConfirmation;
const lanOn = (i: DecisionInput) => i.requireLanConfirmation;
const planned = (i: DecisionInput) => fresh(i) && i.maintenance?.active === true;

// `unknown` (state file lost) leans the safe way in each direction: it fails over like a standby
// and fails back like an active slave, hold-down included, so services end up matching the master.
const NOT_ACTIVE = ["standby", "unknown"] as const;
const NOT_STANDBY = ["active", "unknown"] as const;

export const KEEPER_TABLE: readonly Row[] = [
  // Silence means hold: nothing unverified or old ever moves telephony.
  {
    name: "boot-no-verdict-alert",
    roles: "any",
    when: (i) => i.booting && !fresh(i) && silentLong(i),
    next: "same",
    action: "hold",
    alert: "no fresh verdict from the worker since the agent started",
    reason: "booting: no action until a fresh verdict arrives",
  },
  {
    name: "boot-no-verdict",
    roles: "any",
    when: (i) => i.booting && !fresh(i),
    next: "same",
    action: "hold",
    alert: null,
    reason: "booting: no action until a fresh verdict arrives",
  },
  {
    name: "no-verdict-alert",
    roles: "any",
    when: (i) => !fresh(i) && silentLong(i),
    next: "same",
    action: "hold",
    alert: "no fresh verdict from the worker",
    reason: "no fresh verdict (stale or missing): silence means hold",
  },
  {
    name: "no-verdict",
    roles: "any",
    when: (i) => !fresh(i),
    next: "same",
    action: "hold",
    alert: null,
    reason: "no fresh verdict (stale or missing): silence means hold",
  },
  {
    name: "external-unknown",
    roles: "any",
    when: (i) => i.external.state === "unknown",
    next: "same",
    action: "hold",
    alert: null,
    reason: "the worker has no opinion on the master yet (startup grace): hold",
  },

  // Manual mode: report what auto mode would do, never do it.
  {
    name: "manual-would-switchover",
    roles: "any",
    when: (i) => !auto(i) && autoDecision(i).row === "planned-switchover",
    next: "same",
    action: "hold",
    alert: "manual mode: planned maintenance, the switchover awaits an operator",
    reason: "manual mode: reporting only",
  },
  {
    name: "manual-would-failover",
    roles: "any",
    when: (i) => !auto(i) && autoDecision(i).action === "failover",
    next: "same",
    action: "hold",
    alert: "manual mode: the master is down, failover awaits an operator",
    reason: "manual mode: reporting only",
  },
  {
    name: "manual-would-failback",
    roles: "any",
    when: (i) => !auto(i) && autoDecision(i).action === "failback",
    next: "same",
    action: "hold",
    alert: "manual mode: the master is back, failback awaits an operator",
    reason: "manual mode: reporting only",
  },

  // Planned maintenance (the admin API's window, carried by the verdict): the master goes down on
  // purpose, so the switchover needs no LAN confirmation; once the window ends, the rows below
  // (hold-down included) bring the slave back.
  {
    name: "planned-switchover",
    roles: NOT_ACTIVE,
    when: planned,
    next: "active",
    action: "failover",
    alert: null,
    reason: (i) => `planned switchover: ${i.maintenance!.reason}`,
  },
  {
    name: "planned-stay-active",
    roles: ["active"],
    when: planned,
    next: "same",
    action: "none",
    alert: null,
    reason: (i) => `planned maintenance in progress: stay active even if the master answers (${i.maintenance!.reason})`,
  },

  // Master down (or degraded) seen from the edge.
  {
    name: "failover-edge-only",
    roles: NOT_ACTIVE,
    when: (i) => extDown(i) && lanOff(i),
    next: "active",
    action: "failover",
    alert: null,
    reason: "the edge sees the master down and LAN confirmation is off: fail over",
  },
  {
    name: "failover",
    roles: NOT_ACTIVE,
    when: (i) => extDown(i) && lanDown(i),
    next: "active",
    action: "failover",
    alert: null,
    reason: "the edge and the LAN both see the master down: fail over",
  },
  {
    name: "master-wan-outage",
    roles: NOT_ACTIVE,
    when: (i) => extDown(i) && i.lan === "up",
    next: "same",
    action: "hold",
    alert: "master unreachable from the internet only",
    reason: "the edge sees the master down but the LAN reaches it: a WAN outage, not failing over",
  },
  {
    name: "await-lan-opinion",
    roles: NOT_ACTIVE,
    when: (i) => extDown(i),
    next: "same",
    action: "hold",
    alert: null,
    reason: "the edge sees the master down; waiting for the LAN probes to confirm",
  },
  {
    name: "active-master-down",
    roles: ["active"],
    when: extDown,
    next: "same",
    action: "none",
    alert: null,
    reason: "the master is still down: stay active",
  },

  // Master up seen from the edge.
  {
    name: "standby-lan-failing",
    roles: ["standby"],
    when: (i) => extUp(i) && lanDown(i),
    next: "same",
    action: "hold",
    alert: "slave's LAN view of the master is failing",
    reason: "the edge sees the master up but the slave's LAN probes fail: the slave's own network, not failing over",
  },
  {
    name: "standby-steady",
    roles: ["standby"],
    when: extUp,
    next: "same",
    action: "none",
    alert: null,
    reason: "the master is up: stay standby",
  },
  {
    name: "failback-hold-down",
    roles: NOT_STANDBY,
    when: (i) => extUp(i) && !heldDown(i),
    next: "same",
    action: "hold",
    alert: null,
    reason: "the master is up again; waiting for the failback hold-down",
  },
  {
    name: "failback-edge-only",
    roles: NOT_STANDBY,
    when: (i) => extUp(i) && lanOff(i),
    next: "standby",
    action: "failback",
    alert: null,
    reason: "the edge has seen the master up for the whole hold-down and LAN confirmation is off: fail back",
  },
  {
    name: "failback",
    roles: NOT_STANDBY,
    when: (i) => extUp(i) && i.lan === "up",
    next: "standby",
    action: "failback",
    alert: null,
    reason: "the edge and the LAN both see the master up for the whole hold-down: fail back",
  },
  {
    name: "failback-lan-unconfirmed",
    roles: NOT_STANDBY,
    when: (i) => extUp(i) && lanOn(i),
    next: "same",
    action: "hold",
    alert: "slave's LAN view of the master is failing",
    reason: "the edge sees the master up but the slave's LAN does not: not failing back",
  },

  // Unreachable when the rows above are exhaustive; kept so an unforeseen input holds.
  {
    name: "no-rule",
    roles: "any",
    when: () => true,
    next: "same",
    action: "hold",
    alert: "no decision rule matched these inputs",
    reason: "no rule matched: hold",
  },
];

function matches(row: Row, i: DecisionInput): boolean {
  return (row.roles === "any" || row.roles.includes(i.role)) && row.when(i);
}

function apply(row: Row, i: DecisionInput): Decision {
  return {
    row: row.name,
    role: row.next === "same" ? i.role : row.next,
    action: row.action,
    alert: row.alert,
    reason: typeof row.reason === "function" ? row.reason(i) : row.reason,
    at: i.now,
  };
}

function autoDecision(i: DecisionInput): Decision {
  return decide({ ...i, mode: "auto" });
}

export function decide(i: DecisionInput): Decision {
  const row = KEEPER_TABLE.find((r) => matches(r, i))!;
  const d = apply(row, i);
  if (row.name.startsWith("manual-")) {
    const would = autoDecision(i);
    d.reason = `${d.reason}; auto mode would ${would.action} (${would.reason})`;
  }
  return d;
}

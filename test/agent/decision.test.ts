import { describe, expect, it } from "vitest";
import { decide, KEEPER_TABLE, type DecisionInput } from "../../agent/decision.js";

const HOLD_DOWN = 60_000;
const ALERT_AFTER = 60_000;

/** A standby slave, healthy master, fresh verdict: every case changes only what it is about. */
function input(over: Partial<DecisionInput> = {}): DecisionInput {
  return {
    role: "standby",
    external: { freshness: "fresh", state: "up" },
    lan: "up",
    mode: "auto",
    requireLanConfirmation: true,
    booting: false,
    externalUpForMs: 3_600_000,
    withoutVerdictMs: 0,
    failbackHoldDownMs: HOLD_DOWN,
    noVerdictAlertMs: ALERT_AFTER,
    maintenance: null,
    now: 1_700_000_000_000,
    ...over,
  };
}
const down = { freshness: "fresh", state: "down" } as const;
const degraded = { freshness: "fresh", state: "degraded" } as const;
const up = { freshness: "fresh", state: "up" } as const;

interface Case {
  title: string;
  in: DecisionInput;
  row: string;
  role: DecisionInput["role"];
  action: string;
  reason: RegExp;
  alert: RegExp | null;
}

const cases: Case[] = [
  {
    title: "at boot, no verdict yet: nothing starts",
    in: input({ booting: true, external: { freshness: "none", state: null }, withoutVerdictMs: 5_000 }),
    row: "boot-no-verdict",
    role: "standby",
    action: "hold",
    reason: /booting: no action until a fresh verdict/,
    alert: null,
  },
  {
    title: "at boot, a stale verdict is not enough, even if it says down",
    in: input({ booting: true, role: "standby", external: { freshness: "stale", state: "down" }, lan: "down" }),
    row: "boot-no-verdict",
    role: "standby",
    action: "hold",
    reason: /booting/,
    alert: null,
  },
  {
    title: "at boot, silent past noVerdictAlertMs: alert",
    in: input({
      booting: true,
      role: "active",
      external: { freshness: "none", state: null },
      withoutVerdictMs: ALERT_AFTER,
    }),
    row: "boot-no-verdict-alert",
    role: "active",
    action: "hold",
    reason: /booting/,
    alert: /no fresh verdict .* since the agent started/,
  },
  {
    title: "stale verdict, standby: hold",
    in: input({ external: { freshness: "stale", state: "down" }, lan: "down", withoutVerdictMs: 10_000 }),
    row: "no-verdict",
    role: "standby",
    action: "hold",
    reason: /silence means hold/,
    alert: null,
  },
  {
    title: "stale verdict, active: hold even though it says up",
    in: input({ role: "active", external: { freshness: "stale", state: "up" }, withoutVerdictMs: 10_000 }),
    row: "no-verdict",
    role: "active",
    action: "hold",
    reason: /silence means hold/,
    alert: null,
  },
  {
    title: "no verdict past noVerdictAlertMs: hold and alert",
    in: input({ role: "active", external: { freshness: "stale", state: "up" }, withoutVerdictMs: ALERT_AFTER + 1 }),
    row: "no-verdict-alert",
    role: "active",
    action: "hold",
    reason: /silence means hold/,
    alert: /no fresh verdict/,
  },
  {
    title: "external unknown (startup grace): hold",
    in: input({ external: { freshness: "fresh", state: "unknown" }, lan: "down" }),
    row: "external-unknown",
    role: "standby",
    action: "hold",
    reason: /no opinion/,
    alert: null,
  },
  {
    title: "manual mode, master down on both signals: report only",
    in: input({ mode: "manual", external: down, lan: "down" }),
    row: "manual-would-failover",
    role: "standby",
    action: "hold",
    reason: /manual mode.*auto mode would failover \(the edge and the LAN both see the master down/,
    alert: /failover awaits an operator/,
  },
  {
    title: "manual mode, master back past hold-down: report only",
    in: input({ mode: "manual", role: "active", external: up, lan: "up" }),
    row: "manual-would-failback",
    role: "active",
    action: "hold",
    reason: /manual mode.*auto mode would failback/,
    alert: /failback awaits an operator/,
  },
  {
    title: "manual mode, nothing to do: same as auto",
    in: input({ mode: "manual" }),
    row: "standby-steady",
    role: "standby",
    action: "none",
    reason: /stay standby/,
    alert: null,
  },
  {
    title: "LAN confirmation off: the edge alone fails over",
    in: input({ requireLanConfirmation: false, external: down, lan: "up" }),
    row: "failover-edge-only",
    role: "active",
    action: "failover",
    reason: /LAN confirmation is off/,
    alert: null,
  },
  {
    title: "standby, edge down + LAN down: fail over",
    in: input({ external: down, lan: "down" }),
    row: "failover",
    role: "active",
    action: "failover",
    reason: /both see the master down: fail over/,
    alert: null,
  },
  {
    title: "standby, edge degraded + LAN degraded: fail over",
    in: input({ external: degraded, lan: "degraded" }),
    row: "failover",
    role: "active",
    action: "failover",
    reason: /fail over/,
    alert: null,
  },
  {
    title: "role unknown, both signals down: fail over",
    in: input({ role: "unknown", external: down, lan: "down" }),
    row: "failover",
    role: "active",
    action: "failover",
    reason: /fail over/,
    alert: null,
  },
  {
    title: "standby, edge down + LAN up: WAN outage, stay and alert",
    in: input({ external: down, lan: "up" }),
    row: "master-wan-outage",
    role: "standby",
    action: "hold",
    reason: /WAN outage/,
    alert: /^master unreachable from the internet only$/,
  },
  {
    title: "standby, edge down + LAN undecided: wait",
    in: input({ external: down, lan: "unknown" }),
    row: "await-lan-opinion",
    role: "standby",
    action: "hold",
    reason: /waiting for the LAN probes/,
    alert: null,
  },
  {
    title: "active, master still down: stay active",
    in: input({ role: "active", external: down, lan: "up" }),
    row: "active-master-down",
    role: "active",
    action: "none",
    reason: /still down: stay active/,
    alert: null,
  },
  {
    title: "standby, edge up + LAN down: the slave's network, stay and alert",
    in: input({ external: up, lan: "down" }),
    row: "standby-lan-failing",
    role: "standby",
    action: "hold",
    reason: /slave's own network/,
    alert: /^slave's LAN view of the master is failing$/,
  },
  {
    title: "standby, master up: nothing to do",
    in: input(),
    row: "standby-steady",
    role: "standby",
    action: "none",
    reason: /stay standby/,
    alert: null,
  },
  {
    title: "active, master up but hold-down not elapsed: stay",
    in: input({ role: "active", external: up, externalUpForMs: HOLD_DOWN - 1 }),
    row: "failback-hold-down",
    role: "active",
    action: "hold",
    reason: /waiting for the failback hold-down/,
    alert: null,
  },
  {
    title: "LAN confirmation off: the edge alone fails back after the hold-down",
    in: input({ role: "active", requireLanConfirmation: false, lan: "down", externalUpForMs: HOLD_DOWN }),
    row: "failback-edge-only",
    role: "standby",
    action: "failback",
    reason: /LAN confirmation is off: fail back/,
    alert: null,
  },
  {
    title: "active, master up for the hold-down + LAN up: fail back",
    in: input({ role: "active", externalUpForMs: HOLD_DOWN }),
    row: "failback",
    role: "standby",
    action: "failback",
    reason: /both see the master up .*hold-down: fail back/,
    alert: null,
  },
  {
    title: "role unknown, master up for the hold-down: settle as standby",
    in: input({ role: "unknown", externalUpForMs: HOLD_DOWN }),
    row: "failback",
    role: "standby",
    action: "failback",
    reason: /fail back/,
    alert: null,
  },
  {
    title: "active, edge up but LAN down: do not fail back",
    in: input({ role: "active", lan: "down", externalUpForMs: HOLD_DOWN }),
    row: "failback-lan-unconfirmed",
    role: "active",
    action: "hold",
    reason: /not failing back/,
    alert: /LAN view of the master is failing/,
  },
  // Planned maintenance (the verdict's window, issue 5).
  {
    title: "standby, planned maintenance in force, master still up: switch over without LAN confirmation",
    in: input({ maintenance: { active: true, reason: "kernel upgrade" } }),
    row: "planned-switchover",
    role: "active",
    action: "failover",
    reason: /^planned switchover: kernel upgrade$/,
    alert: null,
  },
  {
    title: "role unknown, planned maintenance in force: switch over",
    in: input({ role: "unknown", lan: "unknown", maintenance: { active: true, reason: "disk swap" } }),
    row: "planned-switchover",
    role: "active",
    action: "failover",
    reason: /^planned switchover: disk swap$/,
    alert: null,
  },
  {
    title: "standby, maintenance scheduled but not begun: nothing planned yet",
    in: input({ maintenance: { active: false, reason: "kernel upgrade" } }),
    row: "standby-steady",
    role: "standby",
    action: "none",
    reason: /stay standby/,
    alert: null,
  },
  {
    title: "active, planned maintenance in force, master up past the hold-down: stay active",
    in: input({
      role: "active",
      externalUpForMs: HOLD_DOWN * 10,
      maintenance: { active: true, reason: "kernel upgrade" },
    }),
    row: "planned-stay-active",
    role: "active",
    action: "none",
    reason: /^planned maintenance in progress: stay active even if the master answers \(kernel upgrade\)$/,
    alert: null,
  },
  {
    title: "active, planned maintenance in force, master down: stay active, no WAN/LAN alert",
    in: input({ role: "active", external: down, lan: "up", maintenance: { active: true, reason: "kernel upgrade" } }),
    row: "planned-stay-active",
    role: "active",
    action: "none",
    reason: /planned maintenance in progress/,
    alert: null,
  },
  {
    title: "active, the window has ended: the failback hold-down applies again",
    in: input({
      role: "active",
      externalUpForMs: HOLD_DOWN - 1,
      maintenance: { active: false, reason: "kernel upgrade" },
    }),
    row: "failback-hold-down",
    role: "active",
    action: "hold",
    reason: /waiting for the failback hold-down/,
    alert: null,
  },
  {
    title: "active, the window has ended and the hold-down elapsed: fail back",
    in: input({ role: "active", externalUpForMs: HOLD_DOWN, maintenance: null }),
    row: "failback",
    role: "standby",
    action: "failback",
    reason: /fail back/,
    alert: null,
  },
  {
    title: "manual mode, planned maintenance in force: report only",
    in: input({ mode: "manual", maintenance: { active: true, reason: "kernel upgrade" } }),
    row: "manual-would-switchover",
    role: "standby",
    action: "hold",
    reason: /^manual mode: reporting only; auto mode would failover \(planned switchover: kernel upgrade\)$/,
    alert: /switchover awaits an operator/,
  },
  {
    title: "stale verdict carrying a maintenance window: hold",
    in: input({
      external: { freshness: "stale", state: "up" },
      withoutVerdictMs: 10_000,
      maintenance: { active: true, reason: "kernel upgrade" },
    }),
    row: "no-verdict",
    role: "standby",
    action: "hold",
    reason: /silence means hold/,
    alert: null,
  },
  {
    title: "an input no row foresees (corrupt role): hold",
    in: input({ role: "bogus" as DecisionInput["role"] }),
    row: "no-rule",
    role: "bogus" as DecisionInput["role"],
    action: "hold",
    reason: /no rule matched/,
    alert: /no decision rule matched/,
  },
];

describe("decide", () => {
  it.each(cases)("$title", (c) => {
    const d = decide(c.in);
    expect(d.row).toBe(c.row);
    expect(d.role).toBe(c.role);
    expect(d.action).toBe(c.action);
    expect(d.reason).toMatch(c.reason);
    if (c.alert) expect(d.alert).toMatch(c.alert);
    else expect(d.alert).toBeNull();
    expect(d.at).toBe(c.in.now);
  });

  it("covers every row of the table with at least one case", () => {
    const hit = new Set(cases.map((c) => decide(c.in).row));
    expect(KEEPER_TABLE.map((r) => r.name).filter((n) => !hit.has(n))).toEqual([]);
  });

  it("has unique row names", () => {
    const names = KEEPER_TABLE.map((r) => r.name);
    expect(new Set(names).size).toBe(names.length);
  });

  it("never acts without a fresh verdict, whatever the other inputs", () => {
    for (const role of ["standby", "active", "unknown"] as const)
      for (const freshness of ["stale", "none"] as const)
        for (const state of ["up", "down", "degraded", "unknown", null] as const)
          for (const lan of ["up", "down", "degraded", "unknown"] as const)
            for (const booting of [true, false]) {
              const d = decide(
                input({ role, external: { freshness, state }, lan, booting, externalUpForMs: HOLD_DOWN }),
              );
              expect(d.action).toBe("hold");
              expect(d.role).toBe(role);
            }
  });

  it("never acts in manual mode", () => {
    for (const role of ["standby", "active", "unknown"] as const)
      for (const state of ["up", "down", "degraded", "unknown"] as const)
        for (const lan of ["up", "down", "degraded", "unknown"] as const)
          for (const requireLanConfirmation of [true, false]) {
            const d = decide(
              input({ mode: "manual", role, external: { freshness: "fresh", state }, lan, requireLanConfirmation }),
            );
            expect(["hold", "none"]).toContain(d.action);
            expect(d.role).toBe(role);
          }
  });

  it("with LAN confirmation on, fails over only when the LAN agrees", () => {
    for (const lan of ["up", "down", "degraded", "unknown"] as const) {
      const d = decide(input({ external: down, lan }));
      expect(d.action === "failover").toBe(lan === "down" || lan === "degraded");
    }
  });

  it("reads no clock: the same input gives the same decision", () => {
    const i = input({ role: "active", externalUpForMs: HOLD_DOWN - 1 });
    expect(decide(i)).toEqual(decide(structuredClone(i)));
  });
});

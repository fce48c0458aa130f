// The pure rules of worker/maintenance.ts: which window is in force, what an event becomes.
import { describe, expect, it } from "vitest";
import {
  activeWindow,
  addWindow,
  endWindows,
  nextBoundary,
  PLANNED_TAIL_MS,
  planEvent,
  verdictWindow,
  windowTransitions,
} from "../../worker/maintenance.js";

const w = { from: 1_000, to: 2_000, reason: "upgrade" };
const ev = (type: any) => ({ type, reason: "r", data: { x: 1 } });

describe("maintenance rules", () => {
  it("a window is in force over [from, to); the verdict shows it, or the next scheduled one", () => {
    expect(activeWindow([w], 999)).toBeNull();
    expect(activeWindow([w], 1_000)).toBe(w);
    expect(activeWindow([w], 2_000)).toBeNull();
    expect(verdictWindow([w], 500)).toEqual({ active: false, from: 1_000, to: 2_000, reason: "upgrade" });
    expect(verdictWindow([{ from: 1_000, to: 2_000 }], 1_500)).toEqual({
      active: true,
      from: 1_000,
      to: 2_000,
      reason: "planned maintenance",
    });
    expect(verdictWindow([w], 2_000)).toBeNull();
    expect(nextBoundary([w], 500)).toBe(1_000);
    expect(nextBoundary([w], 1_000)).toBe(2_000);
    expect(nextBoundary([w], 2_000)).toBeNull();
  });

  it("silences alerts only while a window is in force; tags switchovers up to 10 minutes after", () => {
    for (const type of ["master.down", "master.up", "wan.unreachable", "lan.failing"]) {
      expect(planEvent(ev(type), [w], 1_500)).toMatchObject({
        send: false,
        event: { data: { x: 1, planned: true, maintenance: w } },
      });
      expect(planEvent(ev(type), [w], 2_000)).toEqual({ send: true, event: ev(type) });
    }
    expect(planEvent(ev("agent.lost"), [w], 1_500)).toEqual({ send: true, event: ev("agent.lost") });
    expect(planEvent(ev("failover.done"), [w], 1_500)).toMatchObject({
      send: true,
      event: { data: { planned: true } },
    });
    expect(planEvent(ev("failback.done"), [w], 2_000 + PLANNED_TAIL_MS - 1)).toMatchObject({
      send: true,
      event: { data: { planned: true, maintenance: w } },
    });
    expect(planEvent(ev("failback.done"), [w], 2_000 + PLANNED_TAIL_MS)).toEqual({
      send: true,
      event: ev("failback.done"),
    });
    expect(planEvent(ev("failover.done"), [w], 999)).toEqual({ send: true, event: ev("failover.done") });
  });

  it("started / ended between two looks; an extended window is no news", () => {
    expect(windowTransitions(null, w, 1_000).map((e) => e.type)).toEqual(["maintenance.started"]);
    expect(windowTransitions(w, null, 2_000).map((e) => e.type)).toEqual(["maintenance.ended"]);
    expect(windowTransitions(w, { ...w, to: 3_000 }, 1_500)).toEqual([]);
    const next = { from: 2_000, to: 3_000, reason: "next" };
    expect(windowTransitions(w, next, 2_000).map((e) => e.type)).toEqual(["maintenance.ended", "maintenance.started"]);
  });

  it("ends the windows in force; adds within bounds or refuses", () => {
    expect(endWindows([w], 999)).toBeNull();
    expect(endWindows([w], 1_500)).toEqual({ windows: [{ ...w, to: 1_500 }], ended: { ...w, to: 1_500 } });
    expect(endWindows([w], 1_000)!.ended.to).toBe(1_001); // to stays after from
    const future = Array.from({ length: 50 }, (_, i) => ({ from: 10_000 + i, to: 20_000 + i }));
    expect(addWindow(future, { from: 30_000, to: 40_000 }, 5_000)).toBeNull();
  });
});

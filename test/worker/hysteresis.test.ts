import { describe, expect, it } from "vitest";
import type { MasterState, RoundClass } from "../../protocol/verdict.js";
import { applyRound, initialTracker, type Tracker } from "../../protocol/hysteresis.js";

const P = { fall: 3, rise: 2, graceUntil: 0 };

/** Feeds a scripted sequence of round classes; returns the state after each round. */
function run(sequence: string, params = P, start: Tracker = initialTracker(0)): MasterState[] {
  const code: Record<string, RoundClass> = { U: "up", G: "degraded", D: "down" };
  let tracker = start;
  return [...sequence].map((ch, i) => {
    tracker = applyRound(tracker, { class: code[ch]!, reason: `round ${i}`, at: (i + 1) * 1000 }, params).tracker;
    return tracker.state;
  });
}

const short: Record<MasterState, string> = { up: "U", degraded: "G", down: "D", unknown: "?" };
const states = (seq: string, params = P) =>
  run(seq, params)
    .map((s) => short[s])
    .join("");

describe("hysteresis", () => {
  it("stays unknown until rise good rounds, then up", () => {
    expect(states("UUU")).toBe("?UU");
  });

  it("from unknown, fall bad rounds declare down", () => {
    expect(states("DDDD")).toBe("??DD");
  });

  it("a single lost round never changes an up verdict", () => {
    expect(states("UUDUUDUDU")).toBe("?UUUUUUUU");
  });

  it("two bad rounds are not enough with fall 3; the third is", () => {
    expect(states("UUDDUDDD")).toBe("?UUUUUUD");
  });

  it("a long outage is declared once and held; recovery needs rise good rounds", () => {
    expect(states("UUDDDDDDDUDUU")).toBe("?UUUDDDDDDDDU");
  });

  it("flapping every round never moves the verdict", () => {
    expect(states(`UU${"DU".repeat(20)}`)).toBe(`?U${"UU".repeat(20)}`);
  });

  it("bad rounds mixing degraded and down declare degraded (the host answered sometimes)", () => {
    expect(states("UUGDD")).toBe("?UUUG");
  });

  it("fall degraded rounds declare degraded; a crashed Asterisk on a live host is caught", () => {
    expect(states("UUGGG")).toBe("?UUUG");
  });

  it("moving from down to degraded takes fall degraded rounds, and back the same", () => {
    expect(states("DDDGGGDDD")).toBe("??DDDGGGD");
  });

  it("records the reason and when the state was entered", () => {
    let t = initialTracker(0);
    const changes = [];
    for (const [i, c] of (["down", "down", "down"] as RoundClass[]).entries()) {
      const r = applyRound(t, { class: c, reason: "nothing answers (sip: timeout)", at: 5000 + i }, P);
      t = r.tracker;
      if (r.change) changes.push(r.change);
    }
    expect(changes).toEqual([
      {
        from: "unknown",
        to: "down",
        reason: expect.stringContaining("3 consecutive bad rounds (fall 3): nothing answers (sip: timeout)"),
      },
    ]);
    expect(t.since).toBe(5002);
  });

  it("holds unknown during the startup grace, then acts on the streak at once", () => {
    const params = { fall: 3, rise: 2, graceUntil: 4500 };
    // Rounds at t=1000..6000; grace ends at 4500, so the 5th round (t=5000) is the first that may move.
    expect(
      run("UUUUUU", params)
        .map((s) => short[s])
        .join(""),
    ).toBe("????UU");
  });

  it("fall 1 / rise 1 react on every round", () => {
    expect(states("UDUD", { fall: 1, rise: 1, graceUntil: 0 })).toBe("UDUD");
  });

  it("says how many of the rounds that moved the verdict were confirmation rounds", () => {
    const up: Tracker = { ...initialTracker(0), state: "up" };
    let t = up;
    let change = null;
    // The first bad round came at the normal interval; the next two were confirmations 1 s apart.
    for (const [i, run] of [0, 1, 2].entries()) {
      const r = applyRound(
        t,
        { class: "down", reason: "nothing answers", at: 1000 + i, confirmations: { run, spacingSec: 1 } },
        P,
      );
      t = r.tracker;
      change = r.change ?? change;
    }
    expect(change).toEqual({
      from: "up",
      to: "down",
      reason: "down after 3 consecutive bad rounds (fall 3), 2 of them confirmation rounds 1 s apart: nothing answers",
      confirmations: 2,
    });
    // A run of confirmations longer than the streak (an up round in between reset the streak)
    // counts only the rounds of the streak.
    const back = applyRound(
      { ...t, streaks: { up: 1, degraded: 0, down: 0, bad: 0 } },
      { class: "up", reason: "all 2 probes answered", at: 2000, confirmations: { run: 4, spacingSec: 2 } },
      P,
    );
    expect(back.change?.reason).toBe(
      "up after 2 consecutive good rounds (rise 2), 2 of them confirmation rounds 2 s apart: all 2 probes answered",
    );
    // No confirmation among them: the reason is as before, without the field.
    const plain = applyRound(
      up,
      { class: "down", reason: "x", at: 5, confirmations: { run: 0, spacingSec: 2 } },
      { ...P, fall: 1 },
    );
    expect(plain.change).toEqual({ from: "up", to: "down", reason: "down after 1 consecutive bad rounds (fall 1): x" });
  });
});

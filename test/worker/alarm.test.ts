import { describe, expect, it } from "vitest";
import { needsConfirmation, nextAlarm, nextRoundAt, roundSpacingSec } from "../../worker/cluster/alarm.js";

const now = 1_000_000;

describe("nextAlarm: one alarm for the round, the deliveries and the maintenance boundaries", () => {
  it("the round earliest: the alarm is the round's own", () => {
    expect(nextAlarm({ roundDue: now + 5_000, deliveryDue: now + 6_000, boundary: now + 7_000, now })).toEqual({
      at: now + 5_000,
      roundPending: null,
    });
  });

  it("a delivery earliest: the alarm comes then, the round keeps its time", () => {
    expect(nextAlarm({ roundDue: now + 5_000, deliveryDue: now + 1_000, boundary: now + 7_000, now })).toEqual({
      at: now + 1_000,
      roundPending: now + 5_000,
    });
  });

  it("a maintenance boundary earliest: the alarm comes then, the round keeps its time", () => {
    expect(nextAlarm({ roundDue: now + 5_000, deliveryDue: now + 3_000, boundary: now + 2_000, now })).toEqual({
      at: now + 2_000,
      roundPending: now + 5_000,
    });
  });

  it("a delivery due already: not sooner than 100 ms from now", () => {
    expect(nextAlarm({ roundDue: now + 5_000, deliveryDue: now - 50, boundary: null, now })).toEqual({
      at: now + 100,
      roundPending: now + 5_000,
    });
  });

  it("a tie with the round: the round's own alarm", () => {
    expect(nextAlarm({ roundDue: now + 5_000, deliveryDue: now + 5_000, boundary: now + 5_000, now })).toEqual({
      at: now + 5_000,
      roundPending: null,
    });
  });

  it("absent inputs: no delivery or boundary, the round alone; no round due, no alarm", () => {
    expect(nextAlarm({ roundDue: now + 5_000, deliveryDue: null, boundary: null, now })).toEqual({
      at: now + 5_000,
      roundPending: null,
    });
    expect(nextAlarm({ roundDue: now + 5_000, deliveryDue: null, boundary: now + 10, now })).toEqual({
      at: now + 100,
      roundPending: now + 5_000,
    });
    expect(nextAlarm({ roundDue: now + 5_000, deliveryDue: now + 10, boundary: null, now })).toEqual({
      at: now + 100,
      roundPending: now + 5_000,
    });
    expect(nextAlarm({ roundDue: null, deliveryDue: now + 1_000, boundary: now + 2_000, now })).toBeNull();
  });
});

describe("nextRoundAt", () => {
  it("one interval after the round started, never sooner than 500 ms from now", () => {
    expect(nextRoundAt(now, 10, now + 200)).toBe(now + 10_000);
    expect(nextRoundAt(now, 10, now + 12_000)).toBe(now + 12_500);
  });
});

describe("confirmation rounds: when the next round comes early", () => {
  const cfg = { intervalSec: 10, confirmIntervalSec: 2 };

  it("verdict up, round bad: confirm; round up: the normal interval", () => {
    expect(needsConfirmation("up", "down", false)).toBe(true);
    expect(needsConfirmation("up", "degraded", false)).toBe(true);
    expect(needsConfirmation("up", "up", false)).toBe(false);
  });

  it("verdict down or degraded, round up or of the other bad kind: confirm; the same kind: normal", () => {
    expect(needsConfirmation("down", "up", false)).toBe(true);
    expect(needsConfirmation("degraded", "up", false)).toBe(true);
    expect(needsConfirmation("down", "degraded", false)).toBe(true);
    expect(needsConfirmation("degraded", "down", false)).toBe(true);
    expect(needsConfirmation("down", "down", false)).toBe(false);
    expect(needsConfirmation("degraded", "degraded", false)).toBe(false);
  });

  it("verdict unknown: every round with an opinion confirms, but not during the grace", () => {
    expect(needsConfirmation("unknown", "up", false)).toBe(true);
    expect(needsConfirmation("unknown", "down", false)).toBe(true);
    expect(needsConfirmation("unknown", "up", true)).toBe(false);
    expect(needsConfirmation("up", "down", true)).toBe(false);
  });

  it("a round without opinion (no quorum) never confirms", () => {
    expect(needsConfirmation("up", null, false)).toBe(false);
    expect(needsConfirmation("unknown", null, false)).toBe(false);
  });

  it("spacing: the confirmation interval while confirming, never longer than the interval", () => {
    expect(roundSpacingSec(cfg, true)).toBe(2);
    expect(roundSpacingSec(cfg, false)).toBe(10);
    expect(roundSpacingSec({ intervalSec: 5, confirmIntervalSec: 30 }, true)).toBe(5);
    expect(nextRoundAt(now, roundSpacingSec(cfg, true), now + 100)).toBe(now + 2_000);
    // A slow round (a probe waiting out its timeout) still leaves the minimum rest.
    expect(nextRoundAt(now, roundSpacingSec(cfg, true), now + 5_000)).toBe(now + 5_500);
  });
});

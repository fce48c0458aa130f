import { describe, expect, it } from "vitest";
import { nextAlarm, nextRoundAt } from "../../worker/cluster/alarm.js";

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

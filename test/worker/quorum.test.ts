import { describe, expect, it } from "vitest";
import { initialTracker, type Tracker } from "../../protocol/hysteresis.js";
import type { RoundClass } from "../../protocol/verdict.js";
import { countVotes, withoutOpinion } from "../../worker/cluster/quorum.js";
import { quorumOf } from "../../worker/config.js";

/** Ballots from a compact script: U up, G degraded, D down, S silent. */
const ballots = (script: string) =>
  [...script].map((c, i) => ({
    name: `v${i + 1}`,
    class: ({ U: "up", G: "degraded", D: "down", S: null } as Record<string, RoundClass | null>)[c]!,
    reason: `reason ${i + 1}`,
  }));
const outcome = (script: string, quorum: number) => countVotes(ballots(script), quorum).outcome;

describe("quorum: counting the vantages' votes", () => {
  it("the default quorum is a majority of the vantages", () => {
    const v = (n: number) => Array.from({ length: n }, (_, i) => ({ name: `v${i}` }));
    expect([1, 2, 3, 4, 5].map((n) => quorumOf({ vantages: v(n) }))).toEqual([1, 2, 2, 3, 3]);
    expect(quorumOf({ vantages: v(5), quorum: 2 })).toBe(2);
  });

  it("one vantage, quorum 1: its vote is the round", () => {
    expect(outcome("U", 1)).toBe("up");
    expect(outcome("D", 1)).toBe("down");
    expect(outcome("G", 1)).toBe("degraded");
    expect(outcome("S", 1)).toBeNull();
  });

  it("three vantages, quorum 2: one sees the master dead, the round is up", () => {
    const c = countVotes(ballots("UUD"), 2);
    expect(c.outcome).toBe("up");
    expect(c.reason).toBe(
      "2 of 3 answering vantages see it up (quorum 2): v1: reason 1; v2: reason 2; outvoted: v3: reason 3",
    );
    expect(c.record).toEqual({
      quorum: 2,
      outcome: "up",
      votes: [
        { name: "v1", vote: "up" },
        { name: "v2", vote: "up" },
        { name: "v3", vote: "down" },
      ],
    });
    expect(c.representative).toBe(0);
  });

  it("two of three see nothing answering: down", () => {
    const c = countVotes(ballots("DUD"), 2);
    expect(c.outcome).toBe("down");
    expect(c.reason).toMatch(
      /^2 of 3 answering vantages see nothing answering \(quorum 2\): v1: reason 1; v3: reason 3; outvoted: v2/,
    );
    expect(c.representative).toBe(0);
  });

  it("a quorum of bad votes of mixed kinds is degraded; a quorum of down votes among more bad ones is down", () => {
    expect(outcome("DGU", 2)).toBe("degraded");
    expect(countVotes(ballots("DGU"), 2).representative).toBe(1); // a degraded vantage's probes stand for the round
    expect(outcome("GGU", 2)).toBe("degraded");
    expect(outcome("DDG", 2)).toBe("down");
  });

  it("silent vantages have no vote: the count is over those that answered", () => {
    expect(outcome("SDD", 2)).toBe("down");
    expect(outcome("SUD", 2)).toBe("up");
    expect(countVotes(ballots("SUD"), 2).reason).toContain("; silent: v1");
    expect(outcome("SSUDD", 3)).toBe("up"); // 2 bad of 3 voters, quorum 3: not bad
  });

  it("fewer voters than the quorum: no opinion, whatever they say", () => {
    for (const s of ["SSD", "SSU", "SSS"]) {
      const c = countVotes(ballots(s), 2);
      expect(c.outcome).toBeNull();
      expect(c.representative).toBeNull();
      expect(c.record.outcome).toBe("none");
    }
    expect(countVotes(ballots("SSD"), 2).reason).toBe("no quorum: 1 of 3 vantages answered (quorum 2); silent: v1, v2");
  });

  it("a lower quorum set by the admin: two of five bad votes are enough", () => {
    expect(outcome("UUUDD", 2)).toBe("down");
    expect(outcome("UUUDD", 3)).toBe("up");
  });

  it("the reason stays bounded whatever the vantages said", () => {
    const long = ballots("DDDDD").map((b) => ({ ...b, reason: "x".repeat(10_000) }));
    expect(countVotes(long, 3).reason.length).toBeLessThan(6_200);
  });
});

describe("quorum: rounds without an opinion", () => {
  const up: Tracker = { ...initialTracker(0), state: "up", reason: "up after 2 consecutive good rounds" };

  it("the verdict holds for fewer than fall such rounds", () => {
    expect(withoutOpinion(up, 2, 3, 1000, "no quorum")).toEqual({ tracker: up, change: null });
  });

  it("then goes unknown (never down), its streaks cleared", () => {
    const r = withoutOpinion(up, 3, 3, 1000, "no quorum: 1 of 3 vantages answered (quorum 2)");
    expect(r.change).toEqual({
      from: "up",
      to: "unknown",
      reason:
        "unknown after 3 consecutive rounds without a quorum (fall 3): no quorum: 1 of 3 vantages answered (quorum 2)",
    });
    expect(r.tracker).toMatchObject({
      state: "unknown",
      since: 1000,
      streaks: { up: 0, degraded: 0, down: 0, bad: 0 },
    });
    // Already unknown: nothing more to say.
    expect(withoutOpinion(r.tracker, 4, 3, 2000, "x").change).toBeNull();
  });
});

import { describe, expect, it } from "vitest";
import { backoffDelay, refusedDelay } from "../../../agent/intake/backoff.js";
import { pushUrl } from "../../../agent/intake/push.js";
import { newNonce, verdictUrl } from "../../../agent/intake/poll.js";
import { Nonce } from "../../../protocol/verdict.js";

const policy = { initialMs: 500, maxMs: 30_000 };

describe("reconnect backoff", () => {
  it("doubles from the first step, stays within [ceiling/2, ceiling], and is capped", () => {
    for (const r of [0, 0.5, 0.999]) {
      expect(backoffDelay(0, policy, () => r)).toBeGreaterThanOrEqual(250);
      expect(backoffDelay(0, policy, () => r)).toBeLessThanOrEqual(500);
      expect(backoffDelay(3, policy, () => r)).toBeGreaterThanOrEqual(2_000);
      expect(backoffDelay(3, policy, () => r)).toBeLessThanOrEqual(4_000);
      expect(backoffDelay(1_000, policy, () => r)).toBeLessThanOrEqual(30_000);
      expect(backoffDelay(1_000, policy, () => r)).toBeGreaterThanOrEqual(15_000);
    }
    const delays = Array.from({ length: 20 }, (_, i) => backoffDelay(i, policy, () => 1));
    for (let i = 1; i < delays.length; i++) expect(delays[i]!).toBeGreaterThanOrEqual(delays[i - 1]!);
  });

  it("jitters, so a fleet does not reconnect in lockstep", () => {
    const seen = new Set(Array.from({ length: 50 }, () => backoffDelay(5, policy)));
    expect(seen.size).toBeGreaterThan(10);
  });

  it("retries a refused upgrade (config error) near the cap", () => {
    expect(refusedDelay(policy, () => 0)).toBe(15_000);
    expect(refusedDelay(policy, () => 1)).toBe(30_000);
  });
});

describe("endpoints", () => {
  it("builds the poll and push URLs from the worker URL", () => {
    expect(verdictUrl("https://edge.example", "c-1", "abcdefgh")).toBe(
      "https://edge.example/v1/clusters/c-1/verdict?nonce=abcdefgh",
    );
    expect(pushUrl("https://edge.example", "c-1")).toBe("wss://edge.example/v1/clusters/c-1/push");
    expect(pushUrl("http://127.0.0.1:8787", "c-1")).toBe("ws://127.0.0.1:8787/v1/clusters/c-1/push");
  });

  it("draws a fresh nonce valid for the worker each time", () => {
    const nonces = Array.from({ length: 100 }, newNonce);
    expect(new Set(nonces).size).toBe(100);
    for (const n of nonces) expect(Nonce.safeParse(n).success).toBe(true);
  });
});

import { describe, expect, it } from "vitest";
import { generate, prng, type Tokens } from "../support/fuzz.js";

/**
 * The fuzzer itself, without a worker: a request it cannot draw fails the HTTP fuzz test for one
 * seed in twenty, which says nothing of the worker. Pure and fast, so many seeds are swept here.
 */
const tokens: Tokens = { admin: "a".repeat(40), agentA: "b".repeat(40), agentB: "c".repeat(40) };
const REQUESTS = 2000; // as many as the HTTP fuzz test sends

describe("the fuzzer's request generator", () => {
  it(`draws ${REQUESTS} requests for each of 200 seeds, and for one a CI run drew`, () => {
    const seeds = [...Array.from({ length: 200 }, (_, i) => i + 1), 1734248573];
    const failed: string[] = [];
    for (const seed of seeds) {
      const rng = prng(seed);
      for (let i = 0; i < REQUESTS; i++) {
        try {
          generate(rng, i, tokens, 1_700_000_000_000);
        } catch (err) {
          failed.push(`FUZZ_SEED=${seed}, request ${i}: ${(err as Error).message}`);
          break;
        }
      }
    }
    expect(failed).toEqual([]);
  });
});

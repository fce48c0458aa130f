import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEdgeLab, type EdgeLab } from "../support/edge-lab.js";
import {
  CLUSTER_A,
  STALL_MS,
  check,
  fuzz,
  seedFromEnv,
  send,
  setUp,
  stallAfter,
  summarise,
  type FuzzRequest,
  type Tokens,
} from "../support/fuzz.js";

/**
 * Malformed requests at the worker under the real `wrangler dev`: every route and method, bad
 * tokens, broken and oversize bodies, odd ids and query strings (test/support/fuzz.ts). A failure
 * prints its seed: FUZZ_SEED=<seed> replays the same requests. `npm run bench:fuzz` runs more.
 */
const REQUESTS = Number(process.env.FUZZ_REQUESTS ?? 2000);
const seed = seedFromEnv();
let lab: EdgeLab;
let tokens: Tokens;

beforeAll(async () => {
  lab = await startEdgeLab();
  tokens = {
    admin: lab.secrets.adminToken,
    agentA: `fuzz-agent-a-${crypto.randomUUID()}`,
    agentB: `fuzz-agent-b-${crypto.randomUUID()}`,
  };
  await setUp(lab.edge.url, tokens);
}, 90_000);
afterAll(() => lab?.stop());

/** One hand-made request through the fuzzer's sender and checks. */
const request = (
  method: string,
  path: string,
  headers: Record<string, string>,
  body: string | null = null,
  chunked = false,
): FuzzRequest => ({
  index: 0,
  route: "edge",
  method,
  path,
  auth: "agent-a",
  headers: { authorization: `Bearer ${tokens.agentA}`, ...headers },
  body,
  bodyHow: null,
  chunked,
});

describe("fuzzing the worker's HTTP API", () => {
  it("refuses a body over 64 KiB without Content-Length in JSON, and keeps answering", async () => {
    const report = { role: "standby", mode: "auto", at: Date.now(), lastAction: null, lan: null, verdictSeq: null };
    for (const size of [70_000, 1_100_000]) {
      const body = JSON.stringify({ ...report, alerts: ["x".repeat(size)] });
      const req = request(
        "POST",
        `/v1/clusters/${CLUSTER_A}/report`,
        { "content-type": "application/json" },
        body,
        true,
      );
      const res = await send(lab.edge.url, req, tokens);
      expect(check(req, res, tokens)).toEqual([]);
      expect(res.status).toBe(411);
      expect(await stallAfter(lab.edge.url)).toBeLessThan(STALL_MS);
    }
  }, 60_000);

  it(`refuses ${REQUESTS} malformed requests cleanly and changes nothing (seed ${seed})`, async () => {
    const run = await fuzz({ base: lab.edge.url, tokens, seed, requests: REQUESTS });
    // Reproducers name tokens by role: a failure message never carries a secret.
    expect(run.findings.length, `FUZZ_SEED=${seed}\n${summarise(run.findings)}`).toBe(0);
    expect(run.sent).toBe(REQUESTS);
  }, 180_000);
});

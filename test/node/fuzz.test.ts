import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEdgeLab, type EdgeLab } from "../support/edge-lab.js";
import { fuzz, seedFromEnv, setUp, summarise, type Tokens } from "../support/fuzz.js";

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
  tokens = { admin: lab.secrets.adminToken, agentA: `fuzz-agent-a-${crypto.randomUUID()}`, agentB: `fuzz-agent-b-${crypto.randomUUID()}` };
  await setUp(lab.edge.url, tokens);
}, 90_000);
afterAll(() => lab?.stop());

describe("fuzzing the worker's HTTP API", () => {
  it(`refuses ${REQUESTS} malformed requests cleanly and changes nothing (seed ${seed})`, async () => {
    const run = await fuzz({ base: lab.edge.url, tokens, seed, requests: REQUESTS });
    for (const { defect, finding } of run.known) console.warn(`known defect ${defect.name} (${defect.description}): ${finding.kind} ${finding.req?.method} ${finding.req?.path.slice(0, 120)}`);
    // Reproducers name tokens by role: a failure message never carries a secret.
    expect(run.findings.length, `FUZZ_SEED=${seed}\n${summarise(run.findings)}`).toBe(0);
    expect(run.sent).toBe(REQUESTS);
  }, 180_000);
});

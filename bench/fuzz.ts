import { startEdgeLab } from "../test/support/edge-lab.js";
import { fuzz, seedFromEnv, setUp, summarise } from "../test/support/fuzz.js";

/**
 * npm run bench:fuzz — the fuzz test's generator and checks at volume (FUZZ_REQUESTS, default
 * 10 000; FUZZ_SEED to replay), against the worker under the real `wrangler dev`. Prints the
 * counts per route, method and status, the rate, and every finding; exits 1 on any finding.
 */
const REQUESTS = Number(process.env.FUZZ_REQUESTS ?? 10_000);
const seed = seedFromEnv();

const lab = await startEdgeLab();
let failed = false;
try {
  const tokens = {
    admin: lab.secrets.adminToken,
    agentA: `fuzz-agent-a-${crypto.randomUUID()}`,
    agentB: `fuzz-agent-b-${crypto.randomUUID()}`,
  };
  await setUp(lab.edge.url, tokens);
  const run = await fuzz({ base: lab.edge.url, tokens, seed, requests: REQUESTS, maxFindings: 1000 });

  const byRoute = new Map<string, string[]>();
  for (const [key, n] of [...run.counts.entries()].sort()) {
    const [route, method, status] = key.split(" ");
    const k = `${route} ${method}`;
    byRoute.set(k, [...(byRoute.get(k) ?? []), `${status}×${n}`]);
  }
  console.log(
    `seed ${seed}: ${run.sent} requests in ${(run.elapsedMs / 1000).toFixed(1)} s, ${((run.sent * 1000) / run.elapsedMs).toFixed(0)} req/s`,
  );
  for (const [k, statuses] of byRoute) console.log(`  ${k.padEnd(20)} ${statuses.join("  ")}`);
  if (run.findings.length) {
    failed = true;
    console.log(`${run.findings.length} findings (FUZZ_SEED=${seed} replays them):\n${summarise(run.findings, 100)}`);
  } else console.log("no findings");
} finally {
  await lab.stop();
}
process.exit(failed ? 1 : 0);

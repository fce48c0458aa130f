import { classifyRound } from "../protocol/round.js";
import type { RoundSummary } from "../protocol/verdict.js";
import type { ClusterConfig } from "./config.js";
import { mapLimited } from "./concurrency.js";
import { runProbe } from "./probe/index.js";

// Also the cron's bound on its calls, imported from here.
export { mapLimited };

/** A Worker invocation may hold six connections at once; a round never needs more. */
const PROBE_CONCURRENCY = 6;

/** What a round needs of the config: where the master is and what to probe. */
export type RoundTarget = Pick<ClusterConfig, "master" | "probes">;

/** One round: every probe of the cluster concurrently, then the master's class and why. */
export async function runRound(config: RoundTarget): Promise<RoundSummary & { reason: string }> {
  const started = Date.now();
  const probes = await mapLimited(config.probes, PROBE_CONCURRENCY, (p) => runProbe(p, config.master.host));
  const at = Date.now();
  const { class: cls, reason } = classifyRound(probes);
  return { at, durationMs: at - started, class: cls, reason, probes };
}

/** The longest a round can take: its probes run in lanes of PROBE_CONCURRENCY, each to its timeout. */
export function roundBudgetMs(config: RoundTarget): number {
  const longest = Math.max(...config.probes.map((p) => p.timeoutMs));
  return Math.ceil(config.probes.length / PROBE_CONCURRENCY) * longest;
}

import { buildApp } from "./app.js";
import type { Env } from "./env.js";
import { registryOf } from "./registry.js";

export { ClusterMonitor } from "./cluster.js";
export { Registry } from "./registry.js";
export { Vantage } from "./vantage.js";

const app = buildApp();

/**
 * The cron trigger does not probe: it only re-arms probe loops whose alarm was lost. Every
 * cluster is tried: one that fails (its object broken or unreachable) is logged and counted,
 * and never keeps the clusters after it from being re-armed.
 */
export async function rearmAll(env: Env): Promise<{ rearmed: string[]; failed: string[] }> {
  const ids = await registryOf(env).list();
  const rearmed: string[] = [];
  const failed: string[] = [];
  for (const id of ids) {
    try {
      if (await env.CLUSTER.get(env.CLUSTER.idFromName(id)).ensureAlarm()) rearmed.push(id);
    } catch (err) {
      failed.push(id);
      console.error(`cron: could not check the probe loop of ${id}: ${(err as Error).message}`);
    }
  }
  if (rearmed.length) console.log(`cron: re-armed the probe loop of ${rearmed.join(", ")}`);
  if (failed.length) console.error(`cron: ${failed.length} of ${ids.length} clusters failed the check`);
  return { rearmed, failed };
}

export default {
  fetch: app.fetch,
  async scheduled(_controller, env, ctx) {
    ctx.waitUntil(rearmAll(env));
  },
} satisfies ExportedHandler<Env>;

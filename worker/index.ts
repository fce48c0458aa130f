import { buildApp } from "./app.js";
import type { Env } from "./env.js";
import { registryOf } from "./registry.js";

export { ClusterMonitor } from "./cluster.js";
export { Registry } from "./registry.js";

const app = buildApp();

/** The cron trigger does not probe: it only re-arms probe loops whose alarm was lost. */
export async function rearmAll(env: Env): Promise<string[]> {
  const ids = await registryOf(env).list();
  const rearmed: string[] = [];
  for (const id of ids) {
    if (await env.CLUSTER.get(env.CLUSTER.idFromName(id)).ensureAlarm()) rearmed.push(id);
  }
  if (rearmed.length) console.log(`cron: re-armed the probe loop of ${rearmed.join(", ")}`);
  return rearmed;
}

export default {
  fetch: app.fetch,
  async scheduled(_controller, env, ctx) {
    ctx.waitUntil(rearmAll(env));
  },
} satisfies ExportedHandler<Env>;

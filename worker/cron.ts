import type { AlarmCheck } from "./cluster.js";
import type { Env } from "./env.js";
import { LEASE_MS, shardOf } from "./lease.js";
import { registryShards, type Overdue } from "./registry.js";
import { mapLimited } from "./round.js";

/** Subrequests a cron invocation may make when CRON_SUBREQUESTS is unset: the Workers Free plan's limit. */
export const DEFAULT_CRON_SUBREQUESTS = 50;
/** Calls in flight at once: a Worker invocation may hold six connections open. */
export const CRON_CONCURRENCY = 6;

export interface CronRun {
  /** Overdue loops this run checked (at most the budget). */
  checked: number;
  rearmed: string[];
  /** Overdue but armed (a late round, a renewal that failed): their lease renewed by the cron. */
  renewed: string[];
  /** In the registry with no cluster behind it (deleted while a renewal was in flight): dropped. */
  gone: string[];
  failed: string[];
  /** Overdue loops seen but left to the next run (a lower bound: each shard was read up to the budget). */
  carried: number;
  /** Durable Object calls made: one read per shard, one per loop checked, one write per shard touched. */
  calls: number;
}

/** Loops one run may check: the subrequest limit less a read and a write per shard. */
export function cronBudget(env: Env, shards: number): number {
  const limit = Number(env.CRON_SUBREQUESTS ?? DEFAULT_CRON_SUBREQUESTS);
  const usable = Number.isSafeInteger(limit) && limit > 0 ? limit : DEFAULT_CRON_SUBREQUESTS;
  return Math.max(0, usable - 2 * shards);
}

/**
 * The cron trigger does not probe: it re-arms probe loops whose alarm was lost. It reads only the
 * loops whose lease ran out (worker/lease.ts), the longest overdue first, up to what one invocation
 * may call; the rest are carried to the next run. A loop that fails (its object broken or
 * unreachable) is logged, counted and retried a lease later, so it never holds up the others.
 */
export async function rearmOverdue(env: Env, now = Date.now()): Promise<CronRun> {
  const started = Date.now();
  const shards = registryShards(env);
  const budget = cronBudget(env, shards.length);
  let calls = shards.length;
  const slices = await Promise.all(
    shards.map((r, i) =>
      r.overdue(now, budget).catch((err: Error) => {
        console.error(`cron: could not read registry shard ${i}: ${err.message}`);
        return [] as Overdue[];
      }),
    ),
  );
  const seen = slices.flat().sort((a, b) => a.due - b.due);
  const batch = seen.slice(0, budget);
  calls += batch.length;
  const checks = await mapLimited(batch, CRON_CONCURRENCY, async ({ id }): Promise<AlarmCheck | null> => {
    try {
      return (await env.CLUSTER.get(env.CLUSTER.idFromName(id)).ensureAlarm()) as AlarmCheck;
    } catch (err) {
      console.error(`cron: could not check the probe loop of ${id}: ${(err as Error).message}`);
      return null;
    }
  });
  const run: CronRun = { checked: batch.length, rearmed: [], renewed: [], gone: [], failed: [], carried: 0, calls };
  const leases = new Map<number, Overdue[]>();
  const gone = new Map<number, string[]>();
  const push = <T>(m: Map<number, T[]>, id: string, v: T) => {
    const s = shardOf(id, shards.length);
    m.set(s, [...(m.get(s) ?? []), v]);
  };
  batch.forEach(({ id }, i) => {
    const check = checks[i] ?? null;
    if (check === null) {
      run.failed.push(id);
      push(leases, id, { id, due: now + LEASE_MS }); // behind the others until then
    } else if (check.state === "gone") {
      run.gone.push(id);
      push(gone, id, id);
    } else {
      (check.state === "rearmed" ? run.rearmed : run.renewed).push(id);
      push(leases, id, { id, due: check.lease });
    }
  });
  const touched = [...new Set([...leases.keys(), ...gone.keys()])];
  run.calls += touched.length;
  await Promise.all(
    touched.map((s) =>
      shards[s]!.renew(leases.get(s) ?? [], gone.get(s) ?? []).catch((err: Error) => {
        console.error(`cron: could not write leases to registry shard ${s}: ${err.message}`);
      }),
    ),
  );
  run.carried = seen.length - batch.length;
  if (run.rearmed.length) console.log(`cron: re-armed the probe loop of ${run.rearmed.join(", ")}`);
  if (run.failed.length) console.error(`cron: ${run.failed.length} of ${batch.length} overdue loops failed the check`);
  // One summary line a run: the scale bench reads it from wrangler's output.
  console.log(
    `cron: checked ${run.checked} overdue (re-armed ${run.rearmed.length}, renewed ${run.renewed.length}, ` +
      `gone ${run.gone.length}, failed ${run.failed.length}), carried ${run.carried}, ${run.calls} calls, ${Date.now() - started} ms`,
  );
  return run;
}

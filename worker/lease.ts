/**
 * The probe loop's lease. Each cluster keeps, in a registry shard, the time by which its loop
 * promises to have checked in again (`due`). A loop that runs renews it from its own alarm; one
 * whose alarm was lost stops renewing and shows up in the cron's slice of overdue clusters. Pure:
 * the object and the cron call these and store what they return.
 */

/**
 * A renewed lease runs at least this long: the cron notices a lost loop within it (or its
 * interval and the grace, whichever is longer). At a 60 s interval both are 75 s.
 */
export const LEASE_MS = 75_000;
/**
 * A loop renews once less than this is left. Each renewal is a registry request and a row
 * written, the largest cost of a lease: at the default 10 s interval this renews once a minute.
 */
export const RENEW_BEFORE_MS = 20_000;
/**
 * A lease must outlast the next round by this much: its probes (timeouts up to 10 s) and a busy
 * runtime's lateness. A loop that is merely slow must not read as lost.
 */
export const LEASE_GRACE_MS = 15_000;

/**
 * The lease to hold once the next round is armed for `nextRound`, or null to keep `held`. The
 * loop renews only when less than RENEW_BEFORE_MS is left (or the next round would outlive it),
 * so at the default 10 s interval one round in six writes to the registry.
 */
export function renewal(held: number | null, nextRound: number, now: number): number | null {
  const needed = nextRound + LEASE_GRACE_MS;
  if (held !== null && held >= needed && held - now >= RENEW_BEFORE_MS) return null;
  return Math.max(now + LEASE_MS, needed);
}

/**
 * How many registry objects share the clusters. Each renewal and each cron read goes to one shard,
 * so no single object takes every cluster's writes; the cron reads every shard (a fixed cost).
 */
export const REGISTRY_SHARDS = 4;

/** The shard that holds `id` (FNV-1a of its UTF-16 code units): stable across deployments. */
export function shardOf(id: string, shards = REGISTRY_SHARDS): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) {
    h ^= id.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % shards;
}

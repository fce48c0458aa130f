import { DurableObject } from "cloudflare:workers";
import type { Env } from "./env.js";
import { LEASE_MS, REGISTRY_SHARDS, shardOf } from "./lease.js";

/** Ids per page of GET /v1/clusters: by default, and at most (each shard reads that many). */
export const CLUSTER_PAGE_DEFAULT = 100;
export const CLUSTER_PAGE_MAX = 1000;

/** A cluster the cron should look at: its lease ran out at `due`. */
export interface Overdue {
  id: string;
  due: number;
}

/**
 * One shard of the list of configured clusters (lease.ts picks the shard of an id). Durable
 * Objects cannot be enumerated, so the admin API lists clusters from here, and the cron reads
 * which loops are overdue.
 *
 * The ids are stored (written once, at creation); the leases are held in memory only. A renewal
 * then costs one request and no row written — rows written are most of what a cluster costs,
 * and a lease is renewed every half minute. A shard that restarts has lost them: it gives every
 * cluster a fresh lease from its start, so a running loop never reads as overdue, and one whose
 * alarm was lost meanwhile shows up one lease later. Finding the overdue ones scans this shard's
 * leases in memory (CPU only: a few thousand numbers), never a call per cluster.
 */
export class Registry extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  private readonly leases = new Map<string, number>();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec("CREATE TABLE IF NOT EXISTS cluster_ids (id TEXT PRIMARY KEY, created_at INTEGER NOT NULL)");
    const fresh = Date.now() + LEASE_MS;
    for (const { id } of this.sql.exec<{ id: string }>("SELECT id FROM cluster_ids").toArray())
      this.leases.set(id, fresh);
  }

  /** A new cluster, its loop holding the lease `due`. */
  add(id: string, due: number): void {
    this.renew([{ id, due }]);
  }

  /** Leases renewed (by a loop, or by the cron for the loops it checked; a missing id is added), `gone` clusters dropped. */
  renew(leases: Overdue[], gone: string[] = []): void {
    for (const { id, due } of leases) {
      if (!this.leases.has(id))
        this.sql.exec("INSERT OR IGNORE INTO cluster_ids (id, created_at) VALUES (?, ?)", id, Date.now());
      this.leases.set(id, due);
    }
    this.remove(gone);
  }

  remove(ids: string[]): void {
    for (const id of ids) {
      this.sql.exec("DELETE FROM cluster_ids WHERE id = ?", id);
      this.leases.delete(id);
    }
  }

  /** The `limit` loops whose lease ran out before `now`, the longest overdue first. */
  overdue(now: number, limit: number): Overdue[] {
    const late: Overdue[] = [];
    for (const [id, due] of this.leases) if (due < now) late.push({ id, due });
    return late.sort((a, b) => a.due - b.due || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)).slice(0, limit);
  }

  /** The lease held for `id`, or null when this shard does not list it. */
  leaseOf(id: string): number | null {
    return this.leases.get(id) ?? null;
  }

  /** Up to `limit` ids after `after` (exclusive; "" for the first page), in id order. */
  page(after: string, limit: number): string[] {
    return this.sql
      .exec<{ id: string }>("SELECT id FROM cluster_ids WHERE id > ? ORDER BY id LIMIT ?", after, limit)
      .toArray()
      .map((r) => r.id);
  }
}

/** The registry shard that holds `id`. */
export const registryOf = (env: Env, id: string) => shard(env, shardOf(id));

/** Every registry shard, in order: the cron and the cluster list read them all. */
export const registryShards = (env: Env) => Array.from({ length: REGISTRY_SHARDS }, (_, i) => shard(env, i));

const shard = (env: Env, i: number) => env.REGISTRY.get(env.REGISTRY.idFromName(`registry-${i}-of-${REGISTRY_SHARDS}`));

/**
 * One page of cluster ids across every shard, in id order: each shard gives its first `limit`
 * after the cursor and the merge keeps the first `limit`. `next`: the last id given, when more may follow.
 */
export async function listClusters(
  env: Env,
  after: string,
  limit: number,
): Promise<{ ids: string[]; next: string | null }> {
  const pages = await Promise.all(registryShards(env).map((r) => r.page(after, limit)));
  const merged = pages.flat().sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const ids = merged.slice(0, limit);
  // A shard that filled its page may hold more even when the merge did not overflow.
  const more = merged.length > limit || pages.some((p) => p.length === limit);
  return { ids, next: more && ids.length > 0 ? ids[ids.length - 1]! : null };
}

import { DurableObject } from "cloudflare:workers";
import type { Env } from "./env.js";
import { REGISTRY_SHARDS, shardOf } from "./lease.js";

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
 * which loops are overdue: each row carries the lease its loop last renewed. `due` has no index
 * on purpose: a renewal then writes one row, not two (an indexed column's update also rewrites
 * its index entry, and rows written are what a cluster mostly costs); the cron's read scans the
 * shard's rows once a minute instead — rows read cost a thousandth of rows written, and the
 * answer is still a bounded slice.
 */
export class Registry extends DurableObject<Env> {
  private readonly sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(`
      CREATE TABLE IF NOT EXISTS clusters (id TEXT PRIMARY KEY, created_at INTEGER NOT NULL, due INTEGER NOT NULL);
      DROP INDEX IF EXISTS clusters_due;
    `);
  }

  /** Leases renewed (by a loop, or by the cron for the loops it checked; a new cluster's row is added), rows of `gone` clusters dropped. */
  renew(leases: Overdue[], gone: string[] = []): void {
    const now = Date.now();
    for (const { id, due } of leases)
      this.sql.exec(
        "INSERT INTO clusters (id, created_at, due) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET due = excluded.due",
        id,
        now,
        due,
      );
    this.remove(gone);
  }

  remove(ids: string[]): void {
    for (const id of ids) this.sql.exec("DELETE FROM clusters WHERE id = ?", id);
  }

  /** The `limit` loops whose lease ran out before `now`, the longest overdue first. */
  overdue(now: number, limit: number): Overdue[] {
    return this.sql
      .exec<{ id: string; due: number }>(
        "SELECT id, due FROM clusters WHERE due < ? ORDER BY due, id LIMIT ?",
        now,
        limit,
      )
      .toArray()
      .map((r) => ({ id: r.id, due: r.due }));
  }

  /** Up to `limit` ids after `after` (exclusive; "" for the first page), in id order. */
  page(after: string, limit: number): string[] {
    return this.sql
      .exec<{ id: string }>("SELECT id FROM clusters WHERE id > ? ORDER BY id LIMIT ?", after, limit)
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

import { DurableObject } from "cloudflare:workers";
import type { Env } from "./env.js";

/**
 * The list of configured clusters. Durable Objects cannot be enumerated, so the cron trigger
 * asks this single object which clusters to re-arm, and the admin API lists them from here.
 */
export class Registry extends DurableObject<Env> {
  private readonly sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec("CREATE TABLE IF NOT EXISTS clusters (id TEXT PRIMARY KEY, created_at INTEGER NOT NULL)");
  }

  add(id: string): void {
    this.sql.exec("INSERT OR IGNORE INTO clusters (id, created_at) VALUES (?, ?)", id, Date.now());
  }

  remove(id: string): void {
    this.sql.exec("DELETE FROM clusters WHERE id = ?", id);
  }

  list(): string[] {
    return this.sql
      .exec<{ id: string }>("SELECT id FROM clusters ORDER BY id")
      .toArray()
      .map((r) => r.id);
  }
}

export const registryOf = (env: Env) => env.REGISTRY.get(env.REGISTRY.idFromName("registry"));

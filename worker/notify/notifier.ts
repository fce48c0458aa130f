import type { Channel } from "./channels.js";
import type { NotifyEvent } from "./events.js";
import { Outbox, type RecordEvent } from "./outbox.js";

/**
 * What the cluster's Durable Object needs for notifications, beside its history: the outbox,
 * the status page link, and the agent's dead man's switch.
 */
export class Notifier {
  readonly outbox: Outbox;

  constructor(
    private readonly sql: SqlStorage,
    record: RecordEvent,
  ) {
    this.outbox = new Outbox(sql, record);
  }

  createTables(): void {
    this.sql.exec("CREATE TABLE IF NOT EXISTS notify_state (key TEXT PRIMARY KEY, value TEXT NOT NULL)");
    this.outbox.createTables();
  }

  private get<T>(key: string): T | null {
    const row = this.sql.exec<{ value: string }>("SELECT value FROM notify_state WHERE key = ?", key).toArray()[0];
    return row ? (JSON.parse(row.value) as T) : null;
  }

  private set(key: string, value: unknown): void {
    if (value === null) this.sql.exec("DELETE FROM notify_state WHERE key = ?", key);
    else this.sql.exec("INSERT OR REPLACE INTO notify_state (key, value) VALUES (?, ?)", key, JSON.stringify(value));
  }

  // ---- links ---------------------------------------------------------------------------------

  /** The worker's public origin, as last seen by an admin request: the DO cannot know it otherwise. */
  setOrigin(origin: string): void {
    if (this.get<string>("origin") !== origin) this.set("origin", origin);
  }

  statusUrl(cluster: string): string | null {
    const origin = this.get<string>("origin");
    return origin ? `${origin}/status/${encodeURIComponent(cluster)}` : null;
  }

  queue(cluster: string, event: NotifyEvent & { id: number; at: number }, channels: readonly Channel[]): number {
    return this.outbox.enqueue(cluster, event, channels, this.statusUrl(cluster));
  }

  // ---- the agent's dead man's switch -----------------------------------------------------------

  /** In the alarm: the agent has been silent for `afterSec` → agent.lost, once. */
  checkAgent(now: number, lastReportAt: number | null, afterSec: number): NotifyEvent | null {
    if (lastReportAt === null || this.get<number>("agentLostAt") !== null) return null;
    const silentMs = now - lastReportAt;
    if (silentMs < afterSec * 1000) return null;
    this.set("agentLostAt", now);
    return {
      type: "agent.lost",
      reason: `no report from the agent for ${Math.round(silentMs / 1000)} s (agentLostAfterSec ${afterSec})`,
      data: { lastReportAt, agentLostAfterSec: afterSec },
    };
  }

  /** On a report: if the agent had been declared lost → agent.back. */
  agentReported(now: number, lastReportAt: number | null): NotifyEvent | null {
    const lostAt = this.get<number>("agentLostAt");
    if (lostAt === null) return null;
    this.set("agentLostAt", null);
    const silence = lastReportAt === null ? null : Math.round((now - lastReportAt) / 1000);
    return {
      type: "agent.back",
      reason: silence === null ? "the agent reports again" : `the agent reports again after ${silence} s of silence`,
      data: { lastReportAt, lostAt },
    };
  }
}

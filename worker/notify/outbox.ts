import type { NotifyEventType } from "../../protocol/events.js";
import { signWebhook, type WebhookBody } from "../../protocol/webhook.js";
import { backoffMs, GIVE_UP_AFTER_MS, retryAfterMs } from "./backoff.js";
import { redactUrl, wants, type Channel } from "./channels.js";
import type { NotifyEvent } from "./events.js";
import { SLACK_MAX_EVENTS_PER_MESSAGE, slackMessage } from "./slack.js";

/**
 * The notification outbox, in the cluster's Durable Object SQLite: one row per (event, channel),
 * written in the same transaction as the history event, so nothing is lost between "it
 * happened" and "we told someone". Delivery is at-least-once: a row stays pending until the
 * endpoint answers 2xx, and its `webhook-id` (`msg_id`) is the same on every attempt so the
 * receiver can drop duplicates.
 */

export const DEFAULT_TIMEOUT_MS = 10_000;
/** Slack takes about one message per second per incoming webhook. */
export const SLACK_SPACING_MS = 1_000;
/** Delivered and failed rows stay listable this long, then go; pending rows never go by age (only past MAX_PENDING_PER_CHANNEL). */
export const SETTLED_RETENTION_MS = 30 * 24 * 3_600_000;
/** Channels delivered concurrently in one pass (a Worker invocation holds at most 6 connections). */
const CONCURRENT_CHANNELS = 4;
/** Webhook rows sent per channel per pass: a backlog drains over a few alarms, never in one burst. */
const WEBHOOK_ROWS_PER_PASS = 20;
/**
 * Undelivered rows one channel may hold. A flood of events (a stolen agent token reporting a
 * change every time, a dead endpoint) would otherwise grow the outbox without end: past this, the
 * oldest pending rows are dropped, down to OUTBOX_REFILL_TO so that one `notify.dropped` history
 * event covers a batch instead of doubling the flood. Bodies are a few KB: ≈ 5 MB per channel.
 */
export const MAX_PENDING_PER_CHANNEL = 1_000;
const OUTBOX_REFILL_TO = 900;

export const DELIVERY_STATUSES = ["pending", "failed", "delivered"] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

type Row = {
  id: number;
  msg_id: string;
  event_id: number;
  channel: string;
  kind: Channel["kind"];
  event_type: NotifyEventType;
  at: number;
  reason: string;
  body: string;
  status: DeliveryStatus;
  attempts: number;
  created_at: number;
  next_at: number;
  last_status: number | null;
  last_error: string | null;
  delivered_at: number | null;
};

type ChannelState = {
  name: string;
  url: string;
  not_before: number;
  disabled_at: number | null;
  disabled_reason: string | null;
};

export interface DeliveryView {
  id: string;
  eventId: number;
  eventType: NotifyEventType;
  channel: string;
  kind: Channel["kind"];
  status: DeliveryStatus;
  attempts: number;
  createdAt: number;
  nextAttemptAt: number | null;
  lastStatus: number | null;
  lastError: string | null;
  deliveredAt: number | null;
}

export interface ChannelStatus {
  name: string;
  kind: Channel["kind"];
  disabled: { at: number; reason: string } | null;
}

export interface DeliverOptions {
  fetch?: typeof fetch;
  timeoutMs?: number;
  random?: () => number;
}

export interface PassResult {
  attempted: number;
  delivered: number;
  failed: number;
}

/** Writes a history event: a channel disabled (HTTP 410) or rows dropped, so the history says why. */
export type RecordEvent = (
  type: "channel.disabled" | "notify.dropped",
  at: number,
  reason: string,
  data: Record<string, unknown>,
) => void;

export class Outbox {
  private chain: Promise<unknown> = Promise.resolve();
  private prunedAt = -Infinity;

  constructor(
    private readonly sql: SqlStorage,
    private readonly record: RecordEvent,
  ) {}

  createTables(): void {
    this.sql.exec(`
      CREATE TABLE IF NOT EXISTS outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT, msg_id TEXT NOT NULL UNIQUE, event_id INTEGER NOT NULL,
        channel TEXT NOT NULL, kind TEXT NOT NULL, event_type TEXT NOT NULL, at INTEGER NOT NULL,
        reason TEXT NOT NULL, body TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL, next_at INTEGER NOT NULL, last_status INTEGER, last_error TEXT,
        delivered_at INTEGER, UNIQUE (event_id, channel));
      CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (status, next_at);
      CREATE TABLE IF NOT EXISTS notify_channels (
        name TEXT PRIMARY KEY, url TEXT NOT NULL, not_before INTEGER NOT NULL DEFAULT 0,
        disabled_at INTEGER, disabled_reason TEXT);
    `);
  }

  /** Queues one event for every channel that wants it. Synchronous: call inside the event's transaction. */
  enqueue(
    cluster: string,
    event: NotifyEvent & { id: number; at: number },
    channels: readonly Channel[],
    statusUrl: string | null,
  ): number {
    const body: WebhookBody = {
      type: event.type,
      timestamp: new Date(event.at).toISOString(),
      data: { cluster, eventId: event.id, reason: event.reason, details: event.data, statusUrl },
    };
    // The body is fixed now, so every retry sends the very bytes the first attempt signed.
    const text = JSON.stringify(body);
    let n = 0;
    for (const c of channels) {
      if (!wants(c, event.type)) continue;
      if (this.disabled(c)) continue; // disabled by a 410: queueing would only pile up failures
      this.sql.exec(
        `INSERT OR IGNORE INTO outbox (msg_id, event_id, channel, kind, event_type, at, reason, body, status, created_at, next_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)`,
        `msg_${crypto.randomUUID().replace(/-/g, "")}`,
        event.id,
        c.name,
        c.kind,
        event.type,
        event.at,
        event.reason,
        text,
        event.at,
        event.at,
      );
      n++;
      this.cap(c.name, event.at);
    }
    return n;
  }

  /** Keeps a channel's pending rows under MAX_PENDING_PER_CHANNEL: the oldest go, never silently. */
  private cap(channel: string, at: number): void {
    const { n } = this.sql
      .exec<{ n: number }>("SELECT count(*) AS n FROM outbox WHERE status = 'pending' AND channel = ?", channel)
      .one();
    if (n <= MAX_PENDING_PER_CHANNEL) return;
    const dropped = this.sql
      .exec<{ event_id: number }>(
        `DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE status = 'pending' AND channel = ? ORDER BY id LIMIT ?)
         RETURNING event_id`,
        channel,
        n - OUTBOX_REFILL_TO,
      )
      .toArray()
      .map((r) => r.event_id);
    const reason = `${dropped.length} undelivered notifications dropped for channel ${channel}: more than ${MAX_PENDING_PER_CHANNEL} were pending`;
    this.record("notify.dropped", at, reason, {
      channel,
      dropped: dropped.length,
      fromEventId: Math.min(...dropped),
      toEventId: Math.max(...dropped),
    });
  }

  /** When the next delivery is due (epoch ms), or null if nothing is pending. */
  nextDue(): number | null {
    const rows = this.sql
      .exec<{ due: number | null }>(
        `SELECT MIN(MAX(o.next_at, COALESCE(c.not_before, 0))) AS due
         FROM outbox o LEFT JOIN notify_channels c ON c.name = o.channel WHERE o.status = 'pending'`,
      )
      .toArray();
    return rows[0]?.due ?? null;
  }

  list(status: DeliveryStatus | undefined, limit: number): DeliveryView[] {
    const rows = status
      ? this.sql.exec<Row>("SELECT * FROM outbox WHERE status = ? ORDER BY id DESC LIMIT ?", status, limit).toArray()
      : this.sql.exec<Row>("SELECT * FROM outbox ORDER BY id DESC LIMIT ?", limit).toArray();
    return rows.map((r) => ({
      id: r.msg_id,
      eventId: r.event_id,
      eventType: r.event_type,
      channel: r.channel,
      kind: r.kind,
      status: r.status,
      attempts: r.attempts,
      createdAt: r.created_at,
      nextAttemptAt: r.status === "pending" ? r.next_at : null,
      lastStatus: r.last_status,
      lastError: r.last_error,
      deliveredAt: r.delivered_at,
    }));
  }

  channelStatus(channels: readonly Channel[]): ChannelStatus[] {
    return channels.map((c) => {
      const s = this.state(c);
      return {
        name: c.name,
        kind: c.kind,
        disabled:
          s && s.disabled_at !== null && s.url === c.url
            ? { at: s.disabled_at, reason: s.disabled_reason ?? "" }
            : null,
      };
    });
  }

  /** Drops settled rows past SETTLED_RETENTION_MS, at most once an hour. */
  prune(now: number): void {
    if (now - this.prunedAt < 3_600_000) return;
    this.prunedAt = now;
    this.sql.exec("DELETE FROM outbox WHERE status != 'pending' AND created_at < ?", now - SETTLED_RETENTION_MS);
  }

  /**
   * One delivery pass over everything due at `now`. Passes are serialised (the alarm and a
   * post-event kick may overlap), so a row is never in flight twice from this object.
   */
  deliver(cluster: string, channels: readonly Channel[], now: number, opts: DeliverOptions = {}): Promise<PassResult> {
    const run = this.chain.then(() => this.pass(cluster, channels, now, opts));
    this.chain = run.catch(() => undefined);
    return run;
  }

  // ---------------------------------------------------------------------------------------------

  private async pass(
    cluster: string,
    channels: readonly Channel[],
    now: number,
    opts: DeliverOptions,
  ): Promise<PassResult> {
    const result: PassResult = { attempted: 0, delivered: 0, failed: 0 };
    // Per channel, only the rows this pass may send: a backlog is never loaded whole.
    const names = this.sql
      .exec<{ channel: string }>("SELECT DISTINCT channel FROM outbox WHERE status = 'pending'")
      .toArray();

    const jobs: Array<() => Promise<void>> = [];
    for (const { channel: name } of names) {
      const channel = channels.find((c) => c.name === name);
      if (!channel) {
        result.failed += this.failPending(name, "channel removed from the config");
        continue;
      }
      const state = this.state(channel);
      if (state?.disabled_at != null && state.url === channel.url) {
        result.failed += this.failPending(name, `channel disabled: ${state.disabled_reason}`);
        continue;
      }
      if ((state?.not_before ?? 0) > now) continue;
      const perPass = channel.kind === "slack" ? SLACK_MAX_EVENTS_PER_MESSAGE : WEBHOOK_ROWS_PER_PASS;
      const due = this.sql
        .exec<Row>(
          "SELECT * FROM outbox WHERE status = 'pending' AND channel = ? AND next_at <= ? ORDER BY id LIMIT ?",
          name,
          now,
          perPass,
        )
        .toArray();
      if (due.length === 0) continue;
      jobs.push(async () => {
        if (channel.kind === "slack") {
          // Coalesce: everything due for this channel in one message, then wait a second.
          await this.attempt(channel, due, cluster, now, opts, result);
          this.setNotBefore(channel, Math.max(this.state(channel)?.not_before ?? 0, now + SLACK_SPACING_MS));
        } else {
          for (const row of due) {
            if (!(await this.attempt(channel, [row], cluster, now, opts, result))) break; // endpoint unwell: stop for this pass
          }
        }
      });
    }
    for (let i = 0; i < jobs.length; i += CONCURRENT_CHANNELS) {
      await Promise.all(jobs.slice(i, i + CONCURRENT_CHANNELS).map((j) => j()));
    }
    return result;
  }

  /** One HTTP attempt for `rows` (one webhook row, or a coalesced Slack batch). True on 2xx. */
  private async attempt(
    channel: Channel,
    rows: Row[],
    cluster: string,
    now: number,
    opts: DeliverOptions,
    result: PassResult,
  ): Promise<boolean> {
    const doFetch = opts.fetch ?? fetch;
    const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    result.attempted += rows.length;
    let status: number | null = null;
    let error: string | null = null;
    let retryAfter: string | null = null;
    try {
      const { body, headers } = await this.request(channel, rows, cluster);
      const res = await doFetch(channel.url, {
        method: "POST",
        headers: { "content-type": "application/json", "user-agent": "xivo-ha-notify/1", ...headers },
        body,
        redirect: "manual",
        signal: AbortSignal.timeout(timeoutMs),
      });
      status = res.status;
      retryAfter = res.headers.get("retry-after");
      // A short excerpt helps the admin (Slack says e.g. "invalid_payload"); never the URL.
      const excerpt = res.ok ? "" : (await res.text().catch(() => "")).slice(0, 200);
      if (!res.ok) error = `HTTP ${res.status}${excerpt ? `: ${excerpt}` : ""}`;
      else await res.body?.cancel().catch(() => undefined);
    } catch (err) {
      const e = err as Error;
      error =
        e.name === "TimeoutError" || e.name === "AbortError"
          ? `timed out after ${timeoutMs} ms`
          : `network error: ${e.message.slice(0, 200)}`;
    }
    const attempts = (r: Row) => r.attempts + 1;

    if (status !== null && status >= 200 && status < 300) {
      for (const r of rows)
        this.update(r, {
          status: "delivered",
          attempts: attempts(r),
          last_status: status,
          last_error: null,
          delivered_at: now,
        });
      result.delivered += rows.length;
      return true;
    }
    if (status === 410) {
      // Gone: the receiver asks us to stop. Disable the channel (until its URL changes) and say why.
      const reason = `endpoint ${redactUrl(channel.url)} answered 410 Gone`;
      this.ctxDisable(channel, now, reason);
      for (const r of rows)
        this.update(r, {
          status: "failed",
          attempts: attempts(r),
          last_status: 410,
          last_error: reason,
          delivered_at: null,
        });
      result.failed += rows.length + this.failPending(channel.name, `channel disabled: ${reason}`);
      this.record("channel.disabled", now, reason, { channel: channel.name });
      return false;
    }
    let delay: number;
    if (status === 429) {
      delay = retryAfterMs(retryAfter, now) ?? backoffMs(rows[0]!.attempts + 1, opts.random);
      // Rate limited: the whole channel waits, not just these rows.
      this.setNotBefore(channel, now + delay);
    } else {
      delay = backoffMs(rows[0]!.attempts + 1, opts.random);
    }
    for (const r of rows) {
      const next = now + delay;
      if (next - r.created_at > GIVE_UP_AFTER_MS) {
        this.update(r, {
          status: "failed",
          attempts: attempts(r),
          last_status: status,
          last_error: `gave up after 24 h: ${error}`,
          delivered_at: null,
        });
        result.failed++;
      } else {
        this.update(r, {
          status: "pending",
          attempts: attempts(r),
          last_status: status,
          last_error: error,
          delivered_at: null,
          next_at: next,
        });
      }
    }
    return false;
  }

  private async request(
    channel: Channel,
    rows: Row[],
    cluster: string,
  ): Promise<{ body: string; headers: Record<string, string> }> {
    if (channel.kind === "webhook") {
      const row = rows[0]!;
      // The timestamp is the real sending time (receivers reject old ones); the id never changes.
      const headers = await signWebhook(channel.secrets, row.msg_id, Math.floor(Date.now() / 1000), row.body);
      return { body: row.body, headers: { ...headers } };
    }
    const bodies = rows.map((r) => JSON.parse(r.body) as WebhookBody);
    const message = slackMessage(
      rows.map((r, i) => ({
        cluster,
        type: r.event_type,
        at: r.at,
        reason: r.reason,
        planned: bodies[i]!.data.details.planned === true,
      })),
      bodies[0]!.data.statusUrl,
    );
    return { body: JSON.stringify(message), headers: {} };
  }

  private update(
    r: Row,
    f: {
      status: DeliveryStatus;
      attempts: number;
      last_status: number | null;
      last_error: string | null;
      delivered_at: number | null;
      next_at?: number;
    },
  ): void {
    this.sql.exec(
      "UPDATE outbox SET status = ?, attempts = ?, last_status = ?, last_error = ?, delivered_at = ?, next_at = ? WHERE id = ?",
      f.status,
      f.attempts,
      f.last_status,
      f.last_error,
      f.delivered_at,
      f.next_at ?? r.next_at,
      r.id,
    );
  }

  /** Fails a channel's pending rows, which will never be attempted again (channel removed or disabled), with why. */
  private failPending(channel: string, error: string): number {
    return this.sql
      .exec(
        "UPDATE outbox SET status = 'failed', last_error = ? WHERE status = 'pending' AND channel = ? RETURNING id",
        error,
        channel,
      )
      .toArray().length;
  }

  private state(c: Channel): ChannelState | null {
    return this.sql.exec<ChannelState>("SELECT * FROM notify_channels WHERE name = ?", c.name).toArray()[0] ?? null;
  }

  private disabled(c: Channel): boolean {
    const s = this.state(c);
    return !!s && s.disabled_at !== null && s.url === c.url;
  }

  private upsert(c: Channel): void {
    // A new URL for the same name is a new endpoint: forget the old one's 410 and rate limit.
    this.sql.exec(
      `INSERT INTO notify_channels (name, url) VALUES (?, ?)
       ON CONFLICT (name) DO UPDATE SET url = excluded.url, not_before = 0, disabled_at = NULL, disabled_reason = NULL
       WHERE notify_channels.url <> excluded.url`,
      c.name,
      c.url,
    );
  }

  private setNotBefore(c: Channel, at: number): void {
    this.upsert(c);
    this.sql.exec("UPDATE notify_channels SET not_before = ? WHERE name = ?", at, c.name);
  }

  private ctxDisable(c: Channel, at: number, reason: string): void {
    this.upsert(c);
    this.sql.exec("UPDATE notify_channels SET disabled_at = ?, disabled_reason = ? WHERE name = ?", at, reason, c.name);
  }
}

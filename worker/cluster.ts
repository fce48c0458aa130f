import { DurableObject } from "cloudflare:workers";
import { constantTimeEqual, sha256Hex } from "../protocol/encoding.js";
import type { EventPage, HistoryEvent } from "../protocol/events.js";
import { applyRound, initialTracker, type Tracker } from "../protocol/hysteresis.js";
import type { PushMessage } from "../protocol/push.js";
import type { AgentReport } from "../protocol/report.js";
import { importSigner, type SignedEnvelope, type Signer } from "../protocol/signing.js";
import type { RoundSummary, Verdict } from "../protocol/verdict.js";
import type { ClusterConfig, ClusterConfigInput } from "./config.js";
import { done, fail, type Env, type Outcome } from "./env.js";
import { bearer } from "./http/auth.js";
import { registryOf } from "./registry.js";
import { runRound } from "./round.js";

/** The history keeps this many events; older ones are dropped (issue: retention comes later). */
const MAX_EVENTS = 10_000;

interface ClusterRecord {
  id: string;
  config: ClusterConfig;
  tokenHash: string;
  createdAt: number;
  updatedAt: number;
}

interface MonitorRecord {
  tracker: Tracker;
  seq: number;
  graceUntil: number;
  lastRound: RoundSummary | null;
}

interface ReportRecord {
  report: AgentReport;
  receivedAt: number;
}

/** Who is asking: the worker has already checked the admin token; agent tokens are checked here. */
export type Caller = { admin: true } | { agentToken: string };

export interface ClusterView {
  id: string;
  config: ClusterConfig;
  agentTokenSet: true;
  createdAt: number;
  updatedAt: number;
  verdict: Pick<Verdict, "state" | "since" | "reason" | "seq" | "lastRound">;
  agent: ReportRecord | null;
}

/**
 * One monitored cluster: its config, the probe loop (Durable Object alarms), the hysteresis
 * state, the signed verdict and the history. Everything lives in this object's SQLite storage,
 * so a restart of the runtime loses nothing but the round in flight.
 */
export class ClusterMonitor extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  private signer: Promise<Signer> | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.createTables();
  }

  private createTables(): void {
    this.sql.exec(`
      CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS events (
        id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, type TEXT NOT NULL,
        reason TEXT NOT NULL, data TEXT NOT NULL);
    `);
  }

  // ---- storage -------------------------------------------------------------------------------

  private get<T>(key: "cluster" | "monitor" | "report"): T | null {
    const row = this.sql.exec<{ value: string }>("SELECT value FROM kv WHERE key = ?", key).toArray()[0];
    return row ? (JSON.parse(row.value) as T) : null;
  }

  private put(key: "cluster" | "monitor" | "report", value: unknown): void {
    this.sql.exec("INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", key, JSON.stringify(value));
  }

  private record(type: HistoryEvent["type"], at: number, reason: string, data: Record<string, unknown>): void {
    this.sql.exec("INSERT INTO events (at, type, reason, data) VALUES (?, ?, ?, ?)", at, type, reason, JSON.stringify(data));
    this.sql.exec("DELETE FROM events WHERE id <= (SELECT MAX(id) FROM events) - ?", MAX_EVENTS);
  }

  private async authorize(caller: Caller): Promise<Outcome<ClusterRecord>> {
    const cluster = this.get<ClusterRecord>("cluster");
    if (!cluster) return fail(404, "unknown_cluster", "no such cluster");
    if ("admin" in caller) return done(cluster);
    if (!constantTimeEqual(await sha256Hex(caller.agentToken), cluster.tokenHash)) {
      return fail(401, "unauthorized", "wrong token for this cluster");
    }
    return done(cluster);
  }

  // ---- admin ---------------------------------------------------------------------------------

  async configure(id: string, input: ClusterConfigInput): Promise<Outcome<{ created: boolean; cluster: ClusterView }>> {
    const now = Date.now();
    const existing = this.get<ClusterRecord>("cluster");
    const { agentToken, ...config } = input;
    if (!existing && !agentToken) {
      return fail(400, "invalid_body", "agentToken: required when a cluster is created (at least 32 characters)");
    }
    const tokenHash = agentToken ? await sha256Hex(agentToken) : existing!.tokenHash;
    const record: ClusterRecord = { id, config, tokenHash, createdAt: existing?.createdAt ?? now, updatedAt: now };
    this.ctx.storage.transactionSync(() => {
      this.put("cluster", record);
      if (!existing) {
        const monitor: MonitorRecord = { tracker: initialTracker(now), seq: 0, graceUntil: now + config.graceSec * 1000, lastRound: null };
        this.put("monitor", monitor);
      }
      this.record("cluster.configured", now, existing ? "configuration updated" : "cluster created", {
        created: !existing,
        probes: config.probes.map((p) => p.name),
        intervalSec: config.intervalSec,
        fall: config.fall,
        rise: config.rise,
      });
    });
    if (!existing) await registryOf(this.env).add(id);
    // The first round runs at once. On an update, a shorter interval must not wait out the
    // old, longer one: the next round comes no later than one new interval from now.
    const alarm = await this.ctx.storage.getAlarm();
    const due = existing ? now + config.intervalSec * 1000 : now;
    if (alarm === null || alarm > due) await this.ctx.storage.setAlarm(alarm === null ? now : due);
    return done({ created: !existing, cluster: this.view()! });
  }

  describe(): ClusterView | null {
    return this.view();
  }

  private view(): ClusterView | null {
    const cluster = this.get<ClusterRecord>("cluster");
    const monitor = this.get<MonitorRecord>("monitor");
    if (!cluster || !monitor) return null;
    const { tracker, seq, lastRound } = monitor;
    return {
      id: cluster.id,
      config: cluster.config,
      agentTokenSet: true,
      createdAt: cluster.createdAt,
      updatedAt: cluster.updatedAt,
      verdict: { state: tracker.state, since: tracker.since, reason: tracker.reason, seq, lastRound },
      agent: this.get<ReportRecord>("report"),
    };
  }

  async remove(): Promise<boolean> {
    const cluster = this.get<ClusterRecord>("cluster");
    if (!cluster) return false;
    await this.ctx.storage.deleteAlarm();
    for (const ws of this.ctx.getWebSockets()) ws.close(1000, "cluster deleted");
    await this.ctx.storage.deleteAll(); // drops the tables too: this instance may be asked again
    this.createTables();
    await registryOf(this.env).remove(cluster.id);
    return true;
  }

  // ---- agent ---------------------------------------------------------------------------------

  async signedVerdict(caller: Caller, nonce: string | null): Promise<Outcome<SignedEnvelope>> {
    const auth = await this.authorize(caller);
    if (!auth.ok) return auth;
    let signer: Signer;
    try {
      signer = await this.getSigner();
    } catch (err) {
      return fail(503, "signing_unavailable", (err as Error).message);
    }
    return done(await signer.sign(this.verdict(auth.value.id, nonce)));
  }

  private verdict(clusterId: string, nonce: string | null): Verdict {
    const { tracker, seq, lastRound } = this.get<MonitorRecord>("monitor")!;
    const issuedAt = Date.now();
    return {
      v: 1,
      clusterId,
      state: tracker.state,
      since: tracker.since,
      reason: tracker.reason,
      seq,
      issuedAt,
      ageMs: lastRound ? Math.max(0, issuedAt - lastRound.at) : null,
      lastRound,
      nonce,
    };
  }

  private getSigner(): Promise<Signer> {
    if (!this.env.SIGNING_KEY) return Promise.reject(new Error("the SIGNING_KEY secret is not set: no verdict can be signed"));
    this.signer ??= importSigner(this.env.SIGNING_KEY);
    this.signer.catch(() => (this.signer = null));
    return this.signer;
  }

  async report(caller: Caller, report: AgentReport): Promise<Outcome<{ receivedAt: number }>> {
    const auth = await this.authorize(caller);
    if (!auth.ok) return auth;
    const receivedAt = Date.now();
    const previous = this.get<ReportRecord>("report")?.report;
    this.ctx.storage.transactionSync(() => {
      this.put("report", { report, receivedAt } satisfies ReportRecord);
      // The history records what changed, not every heartbeat.
      const changed =
        !previous ||
        previous.role !== report.role ||
        previous.mode !== report.mode ||
        JSON.stringify(previous.lastAction) !== JSON.stringify(report.lastAction) ||
        JSON.stringify(previous.alerts) !== JSON.stringify(report.alerts);
      if (changed) {
        const reason = report.lastAction?.reason ?? `agent reports role ${report.role}`;
        this.record("agent.changed", receivedAt, reason, {
          role: report.role,
          mode: report.mode,
          lastAction: report.lastAction,
          alerts: report.alerts,
          lan: report.lan?.state ?? null,
        });
      }
    });
    return done({ receivedAt });
  }

  async events(caller: Caller, since: number, limit: number): Promise<Outcome<EventPage>> {
    const auth = await this.authorize(caller);
    if (!auth.ok) return auth;
    const rows = this.sql
      .exec<{ id: number; at: number; type: HistoryEvent["type"]; reason: string; data: string }>(
        "SELECT id, at, type, reason, data FROM events WHERE id > ? ORDER BY id LIMIT ?",
        since,
        limit,
      )
      .toArray();
    const events = rows.map((r) => ({ ...r, data: JSON.parse(r.data) as Record<string, unknown> }));
    return done({ events, next: events.length === limit ? events[events.length - 1]!.id : null });
  }

  // ---- push ------------------------------------------------------------------------------------

  /**
   * An agent's WebSocket. A socket cannot travel over RPC, so this one route reaches the object
   * through fetch; the worker has checked the upgrade and the bearer's presence. Hibernatable:
   * an idle connection costs nothing, and the object wakes to push each round.
   */
  override async fetch(request: Request): Promise<Response> {
    const token = bearer(request.headers.get("authorization") ?? undefined);
    const auth = await this.authorize({ agentToken: token ?? "" });
    if (!auth.ok) {
      return Response.json({ error: { code: auth.code, message: auth.message } }, { status: auth.status });
    }
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    this.ctx.acceptWebSocket(server);
    const first = await this.pushMessage(auth.value.id);
    server.send(JSON.stringify(first));
    return new Response(null, { status: 101, webSocket: client });
  }

  private async pushMessage(clusterId: string): Promise<PushMessage> {
    try {
      return { type: "verdict", envelope: await (await this.getSigner()).sign(this.verdict(clusterId, null)) };
    } catch (err) {
      return { type: "error", code: "signing_unavailable", message: (err as Error).message };
    }
  }

  private async broadcast(clusterId: string): Promise<void> {
    const sockets = this.ctx.getWebSockets();
    if (sockets.length === 0) return;
    const text = JSON.stringify(await this.pushMessage(clusterId));
    for (const ws of sockets) {
      try {
        ws.send(text);
      } catch {
        // a socket closing under us: the agent falls back to polling and reconnects
      }
    }
  }

  /** Agents do not talk on this socket (reports go over HTTP); anything they send is ignored. */
  override async webSocketMessage(): Promise<void> {}

  override async webSocketClose(ws: WebSocket, code: number): Promise<void> {
    try {
      ws.close(code === 1005 ? 1000 : code, "closing");
    } catch {
      // already closed
    }
  }

  // ---- the probe loop --------------------------------------------------------------------------

  /** Called by the cron trigger: re-arms a loop whose alarm was lost. True if it had to. */
  async ensureAlarm(): Promise<boolean> {
    if (!this.get<ClusterRecord>("cluster")) return false;
    if ((await this.ctx.storage.getAlarm()) !== null) return false;
    await this.ctx.storage.setAlarm(Date.now());
    return true;
  }

  override async alarm(): Promise<void> {
    const cluster = this.get<ClusterRecord>("cluster");
    if (!cluster) return; // deleted while the alarm was pending
    const started = Date.now();
    try {
      await this.round(cluster);
    } finally {
      // Always re-arm, even if the round failed, and never sooner than half a second from now.
      const current = this.get<ClusterRecord>("cluster");
      if (current) await this.ctx.storage.setAlarm(Math.max(started + current.config.intervalSec * 1000, Date.now() + 500));
    }
  }

  /** One round: every probe concurrently, classify, apply hysteresis, store, record changes. */
  private async round(cluster: ClusterRecord): Promise<void> {
    const { config } = cluster;
    const { reason, ...lastRound } = await runRound(config);
    const at = lastRound.at;
    const monitor = this.get<MonitorRecord>("monitor");
    if (!monitor || !this.get<ClusterRecord>("cluster")) return; // deleted during the round
    const { tracker, change } = applyRound(monitor.tracker, { class: lastRound.class, reason, at }, {
      fall: config.fall,
      rise: config.rise,
      graceUntil: monitor.graceUntil,
    });
    this.ctx.storage.transactionSync(() => {
      this.put("monitor", { ...monitor, tracker, seq: monitor.seq + 1, lastRound } satisfies MonitorRecord);
      if (change) this.record("verdict.changed", at, change.reason, { from: change.from, to: change.to, seq: monitor.seq + 1 });
    });
    await this.broadcast(cluster.id);
  }
}

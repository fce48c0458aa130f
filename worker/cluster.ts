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
import { activeWindow, addWindow, endWindows, nextBoundary, planEvent, verdictWindow, windowTransitions, type MaintenanceRequest, type Window } from "./maintenance.js";
import { registryOf } from "./registry.js";
import { runRound } from "./round.js";
import { publicConfig, type PublicConfig } from "./notify/channels.js";
import { fromReport, fromVerdictChange, type NotifyEvent } from "./notify/events.js";
import { Notifier } from "./notify/notifier.js";
import type { ChannelStatus, DeliverOptions, DeliveryStatus, DeliveryView, PassResult } from "./notify/outbox.js";
import { createStatusTables, gapThresholdMs, maintainStatus, readHistory, readHourly, readLatency, recordRound, type History } from "./status/store.js";
import type { StatusData } from "./status/data.js";

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

/** `maintenance`: the window the alarm loop last saw in force (null: none), to notice changes. */
type KvKey = "cluster" | "monitor" | "report" | "maintenance";

/** Who is asking: the worker has already checked the admin token; agent tokens are checked here. */
export type Caller = { admin: true } | { agentToken: string };

export interface ClusterView {
  id: string;
  config: PublicConfig<ClusterConfig>;
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
  private readonly notifier: Notifier;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.notifier = new Notifier(this.sql, (type, at, reason, data) => this.record(type, at, reason, data));
    this.createTables();
  }

  private createTables(): void {
    this.sql.exec(`
      CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS events (
        id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, type TEXT NOT NULL,
        reason TEXT NOT NULL, data TEXT NOT NULL);
    `);
    createStatusTables(this.sql); // rounds, hourly aggregates, gaps (worker/status/store.ts)
    this.notifier.createTables(); // outbox, channel state (worker/notify/)
  }

  // ---- storage -------------------------------------------------------------------------------

  private get<T>(key: KvKey): T | null {
    const row = this.sql.exec<{ value: string }>("SELECT value FROM kv WHERE key = ?", key).toArray()[0];
    return row ? (JSON.parse(row.value) as T) : null;
  }

  private put(key: KvKey, value: unknown): void {
    this.sql.exec("INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", key, JSON.stringify(value));
  }

  private record(type: HistoryEvent["type"], at: number, reason: string, data: Record<string, unknown>): void {
    this.sql.exec("INSERT INTO events (at, type, reason, data) VALUES (?, ?, ?, ?)", at, type, reason, JSON.stringify(data));
    this.sql.exec("DELETE FROM events WHERE id <= (SELECT MAX(id) FROM events) - ?", MAX_EVENTS);
  }

  /**
   * A notification event: in the history like any other, and queued for every channel that wants
   * it — unless a planned maintenance window silences it (tagged `planned`, history only). True
   * when something was queued.
   */
  private emit(cluster: ClusterRecord, at: number, raw: NotifyEvent): boolean {
    const { event, send } = planEvent(raw, cluster.config.maintenance ?? [], at);
    this.record(event.type, at, event.reason, event.data);
    if (!send) return false;
    const { id } = this.sql.exec<{ id: number }>("SELECT MAX(id) AS id FROM events").one();
    return this.notifier.queue(cluster.id, { ...event, id, at }, cluster.config.notifications ?? []) > 0;
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

  async configure(id: string, input: ClusterConfigInput, origin?: string): Promise<Outcome<{ created: boolean; cluster: ClusterView }>> {
    const now = Date.now();
    const existing = this.get<ClusterRecord>("cluster");
    const { agentToken, maintenance, ...rest } = input;
    const config: ClusterConfig = { ...rest, maintenance: maintenance ?? existing?.config.maintenance ?? [] };
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
      this.checkMaintenance(record, now); // a PUT may add or end the window in force
    });
    if (!existing) await registryOf(this.env).add(id);
    // The first round runs at once. On an update, a shorter interval must not wait out the
    // old, longer one: the next round comes no later than one new interval from now.
    const alarm = await this.ctx.storage.getAlarm();
    const due = existing ? now + config.intervalSec * 1000 : now;
    if (alarm === null || alarm > due) {
      await this.ctx.storage.setAlarm(alarm === null ? now : due);
      this.notifier.roundAt = null; // the armed alarm is the round's own again
    } else if ((this.notifier.roundAt ?? 0) > due) this.notifier.roundAt = due;
    if (origin) this.notifier.setOrigin(origin); // for the status page link in notifications
    await this.notifySoon(); // wake for a maintenance boundary sooner than the round, if any
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
      config: publicConfig(cluster.config), // never the webhook secrets
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

  // ---- planned maintenance (worker/maintenance.ts) ---------------------------------------------

  /** POST …/maintenance: adds a window (validated by the route) to the config's list. */
  async startMaintenance(window: MaintenanceRequest): Promise<Outcome<{ window: Window & { reason: string }; active: boolean }>> {
    const now = Date.now();
    const cluster = this.get<ClusterRecord>("cluster");
    if (!cluster) return fail(404, "unknown_cluster", "no such cluster");
    const windows = addWindow(cluster.config.maintenance ?? [], window, now);
    if (!windows) return fail(409, "too_many_windows", "50 maintenance windows are current or scheduled: end or remove one first");
    await this.setWindows(cluster, windows, now);
    return done({ window, active: activeWindow([window], now) !== null });
  }

  /** DELETE …/maintenance: ends the window in force now; 404 when there is none. */
  async endMaintenance(): Promise<Outcome<{ window: Window }>> {
    const now = Date.now();
    const cluster = this.get<ClusterRecord>("cluster");
    if (!cluster) return fail(404, "unknown_cluster", "no such cluster");
    const ended = endWindows(cluster.config.maintenance ?? [], now);
    if (!ended) return fail(404, "no_active_maintenance", "no maintenance window is in force");
    await this.setWindows(cluster, ended.windows, now);
    return done({ window: ended.ended });
  }

  /** Stores the new list, records a start / end at once, tells the agents, re-arms for the next boundary. */
  private async setWindows(cluster: ClusterRecord, windows: Window[], now: number): Promise<void> {
    const updated: ClusterRecord = { ...cluster, config: { ...cluster.config, maintenance: windows }, updatedAt: now };
    let changed = false;
    this.ctx.storage.transactionSync(() => {
      this.put("cluster", updated);
      changed = this.checkMaintenance(updated, now);
    });
    if (changed) await this.broadcast();
    await this.notifySoon();
  }

  /**
   * maintenance.started / ended when the window in force differs from the one last seen. Called
   * by the alarm (a scheduled window begins on its own) and by the admin routes. True on a change.
   */
  private checkMaintenance(cluster: ClusterRecord, now: number): boolean {
    const previous = this.get<Window | null>("maintenance") ?? null;
    const current = activeWindow(cluster.config.maintenance ?? [], now);
    const events = windowTransitions(previous, current, now);
    if (JSON.stringify(previous) !== JSON.stringify(current)) this.put("maintenance", current);
    for (const event of events) this.emit(cluster, now, event);
    return events.length > 0;
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
    return done(await signer.sign(this.verdict(auth.value, nonce)));
  }

  /** From the record the caller already read: the verdict GET is the hot path. */
  private verdict(cluster: ClusterRecord, nonce: string | null): Verdict {
    const { tracker, seq, lastRound } = this.get<MonitorRecord>("monitor")!;
    const issuedAt = Date.now();
    return {
      v: 1,
      clusterId: cluster.id,
      state: tracker.state,
      since: tracker.since,
      reason: tracker.reason,
      seq,
      issuedAt,
      ageMs: lastRound ? Math.max(0, issuedAt - lastRound.at) : null,
      lastRound,
      nonce,
      maintenance: verdictWindow(cluster.config.maintenance ?? [], issuedAt),
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
    const stored = this.get<ReportRecord>("report");
    const previous = stored?.report;
    const previousAt = stored?.receivedAt ?? null;
    let queued = false;
    this.ctx.storage.transactionSync(() => {
      this.put("report", { report, receivedAt } satisfies ReportRecord);
      // Notification events first (agent back, failover done, alerts…), then the raw change.
      const back = this.notifier.agentReported(receivedAt, previousAt);
      const events = [...(back ? [back] : []), ...fromReport(previous ?? null, report)];
      for (const event of events) queued = this.emit(auth.value, receivedAt, event) || queued;
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
    // A heartbeat that queued nothing leaves the alarm alone (the agent reports every 15 s).
    if (queued) await this.notifySoon();
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
    const first = await this.pushMessage(auth.value);
    server.send(JSON.stringify(first));
    return new Response(null, { status: 101, webSocket: client });
  }

  private async pushMessage(cluster: ClusterRecord): Promise<PushMessage> {
    try {
      return { type: "verdict", envelope: await (await this.getSigner()).sign(this.verdict(cluster, null)) };
    } catch (err) {
      return { type: "error", code: "signing_unavailable", message: (err as Error).message };
    }
  }

  /** Pushes the current verdict, from the record as stored now (a round's probes may have let a PUT in). */
  private async broadcast(): Promise<void> {
    const sockets = this.ctx.getWebSockets();
    const cluster = this.get<ClusterRecord>("cluster");
    if (sockets.length === 0 || !cluster) return;
    const text = JSON.stringify(await this.pushMessage(cluster));
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
    // An alarm pulled early for a notification delivery leaves the probe round to its own time.
    const early = this.notifier.roundAt;
    const roundDue = early === null || early <= started;
    try {
      // Before the round, so the round's events already see a window that began meanwhile.
      let begunOrEnded = false;
      this.ctx.storage.transactionSync(() => (begunOrEnded = this.checkMaintenance(cluster, started)));
      if (roundDue) await this.round(cluster);
      else if (begunOrEnded) await this.broadcast(); // the round would have pushed it
    } finally {
      // Always re-arm, even if the round failed, and never sooner than half a second from now.
      const current = this.get<ClusterRecord>("cluster");
      if (current) {
        await this.notifyTick().catch((err: unknown) => console.error(`notifications: ${(err as Error).message}`));
        await this.armLoop(roundDue ? Math.max(started + current.config.intervalSec * 1000, Date.now() + 500) : early);
      }
    }
  }

  // ---- notifications (worker/notify/) ------------------------------------------------------------

  /**
   * The alarm's notification work: the agent's dead man's switch (so checked every round and
   * every delivery wake-up), then one delivery pass. `now` and `opts` are injectable for tests.
   */
  async notifyTick(now = Date.now(), opts?: DeliverOptions): Promise<PassResult | null> {
    const cluster = this.get<ClusterRecord>("cluster");
    if (!cluster) return null;
    const lastReportAt = this.get<ReportRecord>("report")?.receivedAt ?? null;
    this.ctx.storage.transactionSync(() => {
      const lost = this.notifier.checkAgent(now, lastReportAt, cluster.config.agentLostAfterSec ?? 60);
      if (lost) this.emit(cluster, now, lost);
    });
    this.notifier.outbox.prune(now);
    return this.notifier.outbox.deliver(cluster.id, cluster.config.notifications ?? [], now, opts);
  }

  /**
   * One alarm serves both loops: the earliest of the next round, the next due delivery and the
   * next maintenance boundary (so a scheduled window begins and ends on time, not at a round).
   */
  private async armLoop(roundAt: number): Promise<void> {
    const delivery = this.notifier.outbox.nextDue();
    const boundary = nextBoundary(this.get<ClusterRecord>("cluster")?.config.maintenance ?? [], Date.now());
    const due = delivery === null ? boundary : boundary === null ? delivery : Math.min(delivery, boundary);
    if (due !== null && due < roundAt) {
      this.notifier.roundAt = roundAt;
      await this.ctx.storage.setAlarm(Math.max(due, Date.now() + 100));
    } else {
      this.notifier.roundAt = null;
      await this.ctx.storage.setAlarm(roundAt);
    }
  }

  /** Right after an event: pull the alarm in so the delivery goes out now, not at the next round. */
  private async notifySoon(): Promise<void> {
    const roundAt = this.notifier.roundAt ?? (await this.ctx.storage.getAlarm());
    if (roundAt === null) return; // no alarm armed: the alarm is running, and delivers before re-arming
    await this.armLoop(roundAt);
  }

  deliveries(status: DeliveryStatus | undefined, limit: number): { deliveries: DeliveryView[]; channels: ChannelStatus[] } | null {
    const cluster = this.get<ClusterRecord>("cluster");
    if (!cluster) return null;
    return {
      deliveries: this.notifier.outbox.list(status, limit),
      channels: this.notifier.outbox.channelStatus(cluster.config.notifications ?? []),
    };
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
      recordRound(this.sql, lastRound, monitor.lastRound?.at ?? null, config.intervalSec);
      if (change) this.record("verdict.changed", at, change.reason, { from: change.from, to: change.to, seq: monitor.seq + 1 });
      const event = change && fromVerdictChange(change);
      if (event) this.emit(cluster, at, event);
    });
    // Once per completed hour: roll up into `hourly`, prune past retention (cheap otherwise).
    maintainStatus(this.sql, at, config.maintenance ?? []);
    await this.broadcast();
  }

  // ---- status page and uptime (worker/status/) -------------------------------------------------

  /** Uptime input over [from, to) for an admin or this cluster's agent; the worker does the sums. */
  async uptimeHistory(caller: Caller, from: number, to: number): Promise<Outcome<History & { maintenance: { from: number; to: number }[] }>> {
    const auth = await this.authorize(caller);
    if (!auth.ok) return auth;
    return done({ ...readHistory(this.sql, from, to, this.ongoingGap(Date.now())), maintenance: auth.value.config.maintenance ?? [] });
  }

  /** Everything the status page shows; null for an unknown cluster. Access is checked by the worker. */
  statusData(now: number, from: number): StatusData | null {
    const cluster = this.get<ClusterRecord>("cluster");
    const monitor = this.get<MonitorRecord>("monitor");
    if (!cluster || !monitor) return null;
    const report = this.get<ReportRecord>("report");
    return {
      id: cluster.id,
      public: cluster.config.public === true,
      createdAt: cluster.createdAt,
      intervalSec: cluster.config.intervalSec,
      verdict: { state: monitor.tracker.state, since: monitor.tracker.since, reason: monitor.tracker.reason, lastRoundAt: monitor.lastRound?.at ?? null },
      agent: report ? { role: report.report.role, mode: report.report.mode, receivedAt: report.receivedAt, lastAction: report.report.lastAction } : null,
      maintenance: cluster.config.maintenance ?? [],
      history: readHistory(this.sql, from, now, this.ongoingGap(now)),
      latency: readLatency(this.sql, now - 24 * 3_600_000, now, 96),
      hourly: readHourly(this.sql, from),
    };
  }

  /** The probe loop's current silence, if the last round is older than the gap threshold. */
  private ongoingGap(now: number): { from: number; to: number } | null {
    const cluster = this.get<ClusterRecord>("cluster");
    const last = this.get<MonitorRecord>("monitor")?.lastRound?.at;
    if (!cluster || last === undefined) return null;
    return now - last > gapThresholdMs(cluster.config.intervalSec) ? { from: last, to: now } : null;
  }
}

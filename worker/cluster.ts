import { DurableObject } from "cloudflare:workers";
import { clip, constantTimeEqual, sha256Hex } from "../protocol/encoding.js";
import type { EventPage } from "../protocol/events.js";
import { applyRound, type Change } from "../protocol/hysteresis.js";
import { RoundSummary, type QuorumRound, type RoundClass } from "../protocol/verdict.js";
import type { AgentReport } from "../protocol/report.js";
import type { SignedEnvelope } from "../protocol/signing.js";
import { ClusterConfig, MAX_WINDOWS, quorumOf, usesVantageObjects, type ClusterConfigInput } from "./config.js";
import { done, fail, type Env, type Outcome } from "./env.js";
import { bearer } from "./http/auth.js";
import { errorBody } from "./http/errors.js";
import {
  activeWindow,
  addWindow,
  endWindows,
  nextBoundary,
  planEvent,
  windowTransitions,
  type MaintenanceRequest,
  type Window,
} from "./maintenance.js";
import { LEASE_MS, renewal } from "./lease.js";
import { registryOf } from "./registry.js";
import { roundBudgetMs, runRound } from "./round.js";
import { fromReport, fromVerdictChange, type NotifyEvent } from "./notify/events.js";
import { keepSecrets } from "./notify/channels.js";
import { Notifier } from "./notify/notifier.js";
import type { ChannelStatus, DeliverOptions, DeliveryStatus, DeliveryView, PassResult } from "./notify/outbox.js";
import {
  createStatusTables,
  gapThresholdMs,
  maintainStatus,
  readHistory,
  readHourly,
  readLatency,
  recordRound,
  type History,
} from "./status/store.js";
import type { StatusData } from "./status/data.js";
import { needsConfirmation, nextRoundAt, roundSpacingSec } from "./cluster/alarm.js";
import { countVotes, MAX_RESULT_REASON_CHARS, withoutOpinion, type VantageResult } from "./cluster/quorum.js";
import { capStreaks, initialMonitor, type ClusterRecord, type MonitorRecord } from "./cluster/records.js";
import { MAX_SOCKETS, REPORT_BURST, REPORT_RATE, ReportBucket } from "./cluster/report-rate.js";
import { RoundSchedule } from "./cluster/schedule.js";
import { VerdictSigner } from "./cluster/signer.js";
import { ClusterStore } from "./cluster/store.js";
import { Meter } from "./cluster/meter.js";
import { agentChange, clusterView, verdictOf, type ClusterView } from "./cluster/views.js";

export type { ClusterView } from "./cluster/views.js";

/** What the cron learns from a loop it checked: gone (deleted), or the lease it holds now. */
export type AlarmCheck = { state: "gone" } | { state: "armed" | "rearmed"; lease: number };

const UNKNOWN_CLUSTER = fail(404, "unknown_cluster", "no such cluster");
const UNAUTHORIZED = fail(401, "unauthorized", "wrong token for this cluster");

/** Who is asking: the worker has already checked the admin token; agent tokens are checked here. */
export type Caller = { admin: true } | { agentToken: string };

/**
 * One monitored cluster. The object is wiring: it reads its records (cluster/store.ts), calls the
 * pure rules (hysteresis, maintenance, notification events, the alarm's next time) and stores
 * what they return, all in its own SQLite storage, so a restart loses only the round in flight.
 */
export class ClusterMonitor extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  private readonly store: ClusterStore;
  private readonly schedule: RoundSchedule;
  private readonly notifier: Notifier;
  private readonly signer: VerdictSigner;
  /** Only reports with the right token count: a wrong token never drains the agent's allowance. */
  private readonly reports = new ReportBucket();
  /**
   * Tables are created by the first configuration only: any id can be asked for (a guessed one, a
   * bearer string on an agent route), and an unknown id must leave no storage behind.
   */
  private hasTables: boolean;
  /**
   * The lease this loop last gave its registry shard (worker/lease.ts). In memory only: an object
   * that restarts renews at its first round, one request and one row, rather than a row at every
   * renewal.
   */
  private lease: number | null = null;
  /** Billing counters, only under `npm run bench:cost` (worker/cluster/meter.ts). */
  private readonly meter: Meter | null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.meter = env.COST_METER ? new Meter() : null;
    this.sql = this.meter?.sql(ctx.storage.sql) ?? ctx.storage.sql;
    this.store = new ClusterStore(this.sql);
    this.schedule = new RoundSchedule(this.store, this.meter?.storage(ctx.storage) ?? ctx.storage);
    this.signer = new VerdictSigner(env.SIGNING_KEY);
    this.notifier = new Notifier(this.sql, (type, at, reason, data) => this.store.record(type, at, reason, data));
    this.hasTables = this.store.tablesExist();
  }

  private createTables(): void {
    if (this.hasTables) return;
    this.store.createTables(); // kv records, history
    createStatusTables(this.sql); // rounds, hourly aggregates, gaps (worker/status/store.ts)
    this.notifier.createTables(); // outbox, channel state (worker/notify/)
    this.hasTables = true;
  }

  /** The cluster and its monitor state; null for an unknown cluster (or one whose records no longer parse). */
  private load(): { cluster: ClusterRecord; monitor: MonitorRecord } | null {
    if (!this.hasTables) return null;
    const cluster = this.store.get("cluster");
    const monitor = cluster && this.store.get("monitor");
    return cluster && monitor ? { cluster, monitor } : null;
  }

  /** `load()` for the methods the routes call: every one answers an Outcome. */
  private known(): Outcome<{ cluster: ClusterRecord; monitor: MonitorRecord }> {
    const loaded = this.load();
    return loaded ? done(loaded) : UNKNOWN_CLUSTER;
  }

  /**
   * A notification event: in the history like any other, and queued for every channel that wants
   * it — unless a planned maintenance window silences it (tagged `planned`, history only). True
   * when something was queued.
   */
  private emit(cluster: ClusterRecord, at: number, raw: NotifyEvent): boolean {
    const { event, send } = planEvent(raw, cluster.config.maintenance, at);
    const id = this.store.record(event.type, at, event.reason, event.data);
    return send && this.notifier.queue(cluster.id, { ...event, id, at }, cluster.config.notifications) > 0;
  }

  /**
   * The admin learns whether the cluster exists; anyone else gets the same 401 for an unknown
   * cluster as for a wrong token, so ids cannot be enumerated.
   */
  private async authorize(caller: Caller): Promise<Outcome<{ cluster: ClusterRecord; monitor: MonitorRecord }>> {
    const known = this.known();
    if ("admin" in caller) return known;
    const digest = await sha256Hex(caller.agentToken);
    return known.ok && constantTimeEqual(digest, known.value.cluster.tokenHash) ? known : UNAUTHORIZED;
  }

  // ---- admin ---------------------------------------------------------------------------------

  async configure(
    id: string,
    input: ClusterConfigInput,
    origin?: string,
  ): Promise<Outcome<{ created: boolean; cluster: ClusterView }>> {
    const now = Date.now();
    this.createTables();
    const existing = this.load()?.cluster ?? null;
    const { agentToken, maintenance, notifications, ...rest } = input;
    const kept = keepSecrets(notifications, existing?.config.notifications ?? []);
    if ("field" in kept) return fail(400, "invalid_body", kept.message, { field: kept.field });
    // Parsed again for the default of `maintenance` (none stored yet, none given) and the channels as stored.
    const config = ClusterConfig.parse({
      ...rest,
      notifications: kept.channels,
      maintenance: maintenance ?? existing?.config.maintenance,
    });
    if (!existing && !agentToken) {
      return fail(400, "invalid_body", "agentToken: required when a cluster is created (at least 32 characters)");
    }
    const tokenHash = agentToken ? await sha256Hex(agentToken) : existing!.tokenHash;
    const record: ClusterRecord = { id, config, tokenHash, createdAt: existing?.createdAt ?? now, updatedAt: now };
    this.ctx.storage.transactionSync(() => {
      this.store.put("cluster", record);
      if (!existing) this.store.put("monitor", initialMonitor(now, now + config.graceSec * 1000));
      this.store.record("cluster.configured", now, existing ? "configuration updated" : "cluster created", {
        created: !existing,
        probes: config.probes.map((p) => p.name),
        intervalSec: config.intervalSec,
        fall: config.fall,
        rise: config.rise,
      });
      this.checkMaintenance(record, now); // a PUT may add or end the window in force
    });
    if (!existing) {
      const lease = now + LEASE_MS;
      await registryOf(this.env, id).renew([{ id, due: lease }]);
      this.lease = lease;
    }
    await this.schedule.configured(existing ? now + config.intervalSec * 1000 : now, now);
    if (origin) this.notifier.setOrigin(origin); // for the status page link in notifications
    await this.notifySoon(); // wake for a maintenance boundary sooner than the round, if any
    const view = this.describe();
    return view.ok ? done({ created: !existing, cluster: view.value }) : view;
  }

  describe(): Outcome<ClusterView> {
    const meter = this.meter?.snapshot(); // before this call's own reads
    const known = this.known();
    if (!known.ok) return known;
    const view = clusterView(known.value.cluster, known.value.monitor, this.store.get("report"));
    return done(meter ? { ...view, meter } : view);
  }

  async remove(): Promise<Outcome<null>> {
    const cluster = this.hasTables ? this.store.get("cluster") : null;
    if (!cluster) return UNKNOWN_CLUSTER; // a cluster record alone is enough to delete what is left
    await this.ctx.storage.deleteAlarm();
    for (const ws of this.ctx.getWebSockets()) ws.close(1000, "cluster deleted");
    await this.ctx.storage.deleteAll(); // drops the tables too: nothing is left, as for an id never used
    this.hasTables = false;
    await registryOf(this.env, cluster.id).remove([cluster.id]);
    return done(null);
  }

  // ---- planned maintenance (worker/maintenance.ts) ---------------------------------------------

  /** POST …/maintenance: adds a window (validated by the route) to the config's list. */
  async startMaintenance(
    window: MaintenanceRequest,
  ): Promise<Outcome<{ window: Window & { reason: string }; active: boolean }>> {
    const now = Date.now();
    const known = this.known();
    if (!known.ok) return known;
    const { cluster } = known.value;
    const windows = addWindow(cluster.config.maintenance, window, now);
    if (!windows)
      return fail(
        409,
        "too_many_windows",
        `${MAX_WINDOWS} maintenance windows are current or scheduled: end or remove one first`,
      );
    await this.setWindows(cluster, windows, now);
    return done({ window, active: activeWindow([window], now) !== null });
  }

  /** DELETE …/maintenance: ends the window in force now; 404 when there is none. */
  async endMaintenance(): Promise<Outcome<{ window: Window }>> {
    const now = Date.now();
    const known = this.known();
    if (!known.ok) return known;
    const { cluster } = known.value;
    const ended = endWindows(cluster.config.maintenance, now);
    if (!ended) return fail(404, "no_active_maintenance", "no maintenance window is in force");
    await this.setWindows(cluster, ended.windows, now);
    return done({ window: ended.ended });
  }

  /** Stores the new list, records a start / end at once, tells the agents, re-arms for the next boundary. */
  private async setWindows(cluster: ClusterRecord, windows: Window[], now: number): Promise<void> {
    const updated: ClusterRecord = { ...cluster, config: { ...cluster.config, maintenance: windows }, updatedAt: now };
    let changed = false;
    this.ctx.storage.transactionSync(() => {
      this.store.put("cluster", updated);
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
    const previous = this.store.get("maintenance");
    const current = activeWindow(cluster.config.maintenance, now);
    const events = windowTransitions(previous, current, now);
    if (JSON.stringify(previous) !== JSON.stringify(current)) this.store.put("maintenance", current);
    for (const event of events) this.emit(cluster, now, event);
    return events.length > 0;
  }

  // ---- agent ---------------------------------------------------------------------------------

  async signedVerdict(caller: Caller, nonce: string | null): Promise<Outcome<SignedEnvelope>> {
    const auth = await this.authorize(caller);
    return auth.ok ? this.signer.sign(verdictOf(auth.value.cluster, auth.value.monitor, Date.now(), nonce)) : auth;
  }

  async report(caller: Caller, report: AgentReport): Promise<Outcome<{ receivedAt: number }>> {
    const auth = await this.authorize(caller);
    if (!auth.ok) return auth;
    const { cluster } = auth.value;
    const receivedAt = Date.now();
    const waitMs = this.reports.take(receivedAt);
    if (waitMs > 0) {
      const message = `more than ${REPORT_BURST} reports in a burst or ${REPORT_RATE} a second sustained: try again later`;
      return fail(429, "rate_limited", message, { retryAfterSec: Math.ceil(waitMs / 1000) });
    }
    const stored = this.store.get("report");
    const previous = stored?.report ?? null;
    let queued = false;
    this.ctx.storage.transactionSync(() => {
      this.store.put("report", { report, receivedAt });
      // Notification events first (agent back, failover done, alerts…), then the raw change.
      const back = this.notifier.agentReported(receivedAt, stored?.receivedAt ?? null);
      for (const event of [...(back ? [back] : []), ...fromReport(previous, report)])
        queued = this.emit(cluster, receivedAt, event) || queued;
      const change = agentChange(previous, report);
      if (change) this.store.record("agent.changed", receivedAt, change.reason, change.data);
    });
    // A heartbeat that queued nothing leaves the alarm alone (the agent reports every 15 s).
    if (queued) await this.notifySoon();
    return done({ receivedAt });
  }

  async events(caller: Caller, since: number, limit: number): Promise<Outcome<EventPage>> {
    const auth = await this.authorize(caller);
    return auth.ok ? done(this.store.events(since, limit)) : auth;
  }

  // ---- push ------------------------------------------------------------------------------------

  /**
   * An agent's WebSocket. A socket cannot travel over RPC, so this one route reaches the object
   * through fetch; the worker has checked the upgrade and the bearer's presence. Hibernatable:
   * an idle connection costs nothing, and the object wakes to push each round.
   */
  override async fetch(request: Request): Promise<Response> {
    this.meter?.count("fetch");
    const auth = await this.authorize({ agentToken: bearer(request.headers.get("authorization") ?? undefined) ?? "" });
    if (!auth.ok) {
      return Response.json(errorBody(auth.code, auth.message), { status: auth.status });
    }
    if (this.ctx.getWebSockets().length >= MAX_SOCKETS) {
      const message = `this cluster already has ${MAX_SOCKETS} push connections: close one, or poll`;
      return Response.json(errorBody("too_many_sockets", message), { status: 429, headers: { "retry-after": "60" } });
    }
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    this.ctx.acceptWebSocket(server);
    this.meter?.sent(1);
    server.send(
      JSON.stringify(await this.signer.push(verdictOf(auth.value.cluster, auth.value.monitor, Date.now(), null))),
    );
    return new Response(null, { status: 101, webSocket: client });
  }

  /** Pushes the current verdict, from the record as stored now (a round's probes may have let a PUT in). */
  private async broadcast(): Promise<void> {
    const sockets = this.ctx.getWebSockets();
    const loaded = this.load();
    if (sockets.length === 0 || !loaded) return;
    const text = JSON.stringify(await this.signer.push(verdictOf(loaded.cluster, loaded.monitor, Date.now(), null)));
    this.meter?.sent(sockets.length);
    for (const ws of sockets) {
      try {
        ws.send(text);
      } catch {
        // a socket closing under us: the agent falls back to polling and reconnects
      }
    }
  }

  /** Agents do not talk on this socket (reports go over HTTP); anything they send is ignored. */
  override async webSocketMessage(): Promise<void> {
    this.meter?.count("wsMessage");
  }

  override async webSocketClose(ws: WebSocket, code: number): Promise<void> {
    try {
      ws.close(code === 1005 ? 1000 : code, "closing");
    } catch {
      // already closed
    }
  }

  // ---- the alarm: probe rounds, deliveries, maintenance boundaries ------------------------------

  /**
   * Called by the cron for a loop whose lease ran out: re-arms it if its alarm was lost, and
   * answers the lease it holds now, which the cron writes to the registry for it.
   */
  async ensureAlarm(): Promise<AlarmCheck> {
    if (!this.hasTables) return { state: "gone" }; // deleted: its tables went with it
    // Records that no longer read: a failure the cron logs and retries, never a reason to unlist it.
    if (!this.load()) throw new Error("the cluster's records do not read");
    const now = Date.now();
    const armed = await this.ctx.storage.getAlarm();
    if (armed === null) await this.ctx.storage.setAlarm(now);
    const lease = renewal(null, this.schedule.pending ?? armed ?? now, now)!;
    this.lease = lease;
    return { state: armed === null ? "rearmed" : "armed", lease };
  }

  /**
   * The lease renewal hook of the loop, once the round due at `nextRound` is armed: writes a new
   * lease to the registry only when the old one runs short.
   */
  private async renewLease(id: string, nextRound: number): Promise<void> {
    const lease = renewal(this.lease, nextRound, Date.now());
    if (lease === null) return;
    try {
      await registryOf(this.env, id).renew([{ id, due: lease }]);
      this.lease = lease;
    } catch (err) {
      // The round is not at stake: the cron sees the lease run out and renews it.
      console.error(`lease renewal failed: ${(err as Error).message}`);
    }
  }

  /** Test-only (its route exists only under the scale bench's config): the alarm vanishes as a lost one would. */
  async dropAlarm(): Promise<Outcome<null>> {
    if (!this.load()) return UNKNOWN_CLUSTER;
    await this.ctx.storage.deleteAlarm();
    return done(null);
  }

  override async alarm(): Promise<void> {
    const loaded = this.load();
    if (!loaded) return; // deleted while the alarm was pending
    const started = Date.now();
    this.meter?.count("alarm");
    // An alarm pulled early for a delivery or a boundary leaves the probe round to its own time.
    const pending = this.schedule.pending;
    const roundDue = pending === null || pending <= started;
    try {
      // Before the round, so the round's events already see a window that began meanwhile.
      // A failure here is logged and never keeps the round from running: the verdict must not freeze.
      let begunOrEnded = false;
      try {
        this.ctx.storage.transactionSync(() => (begunOrEnded = this.checkMaintenance(loaded.cluster, started)));
      } catch (err) {
        console.error(`maintenance check failed, the round runs anyway: ${(err as Error).message}`);
      }
      if (roundDue) await this.round(loaded.cluster);
      else if (begunOrEnded) await this.broadcast(); // the round would have pushed it
    } finally {
      // Always re-arm, even if the round failed.
      const current = this.load();
      if (current) {
        const { cluster, monitor } = current;
        await this.notifyTick().catch((err: unknown) => console.error(`notifications: ${(err as Error).message}`));
        const spacing = roundSpacingSec(cluster.config, monitor.confirming);
        const nextRound = roundDue ? nextRoundAt(started, spacing, Date.now()) : pending!;
        await this.arm(cluster, nextRound);
        await this.renewLease(cluster.id, nextRound);
      }
      this.meter?.alarmTook(Date.now() - started);
    }
  }

  /** Arms the one alarm for the earliest of the round, the next delivery and the next boundary. */
  private async arm(cluster: ClusterRecord, roundDue: number): Promise<void> {
    const now = Date.now();
    await this.schedule.arm({
      roundDue,
      deliveryDue: this.notifier.outbox.nextDue(),
      boundary: nextBoundary(cluster.config.maintenance, now),
      now,
    });
  }

  /** Right after an event: pull the alarm in so the delivery goes out now, not at the next round. */
  private async notifySoon(): Promise<void> {
    const cluster = this.load()?.cluster;
    if (!cluster) return;
    const now = Date.now();
    await this.schedule.pullIn({
      deliveryDue: this.notifier.outbox.nextDue(),
      boundary: nextBoundary(cluster.config.maintenance, now),
      now,
    });
  }

  /**
   * The alarm's notification work: the agent's dead man's switch (so checked every round and
   * every delivery wake-up), then one delivery pass. `now` and `opts` are injectable for tests.
   */
  async notifyTick(now = Date.now(), opts?: DeliverOptions): Promise<PassResult | null> {
    const cluster = this.load()?.cluster;
    if (!cluster) return null;
    const lastReportAt = this.store.lastReportAt();
    this.ctx.storage.transactionSync(() => {
      const lost = this.notifier.checkAgent(now, lastReportAt, cluster.config.agentLostAfterSec);
      if (lost) this.emit(cluster, now, lost);
    });
    this.notifier.outbox.prune(now);
    return this.notifier.outbox.deliver(cluster.id, cluster.config.notifications, now, opts);
  }

  deliveries(
    status: DeliveryStatus | undefined,
    limit: number,
  ): Outcome<{ deliveries: DeliveryView[]; channels: ChannelStatus[] }> {
    const known = this.known();
    if (!known.ok) return known;
    const { notifications } = known.value.cluster.config;
    return done({
      deliveries: this.notifier.outbox.list(status, limit),
      channels: this.notifier.outbox.channelStatus(notifications),
    });
  }

  /**
   * One round: every probe concurrently (from this object, or from every vantage and counted),
   * classify, apply hysteresis, store, record changes, and decide whether the next round comes
   * early to confirm this one.
   */
  private async round(cluster: ClusterRecord): Promise<void> {
    const { config } = cluster;
    const counted = usesVantageObjects(config) ? await this.askVantages(cluster) : await localRound(config);
    const monitor = this.load()?.monitor;
    if (!monitor) return; // deleted during the round
    const { at, outcome, reason } = counted;
    const confirmation = monitor.confirming;
    const spacingSec = roundSpacingSec(config, true);
    const params = { fall: config.fall, rise: config.rise, graceUntil: monitor.graceUntil };
    let next: MonitorRecord;
    let change: Change | null;
    if (outcome !== null) {
      const confirmRun = confirmation ? monitor.confirmRun + 1 : 0;
      const applied = applyRound(
        monitor.tracker,
        { class: outcome, reason, at, confirmations: { run: confirmRun, spacingSec } },
        params,
      );
      change = applied.change;
      next = {
        ...monitor,
        tracker: applied.tracker,
        lastRound: { ...counted.summary!, ...(confirmation ? { confirmation: true } : {}) },
        // A confirmation spacing no shorter than the interval means no confirmation rounds at all.
        confirming:
          spacingSec < config.intervalSec && needsConfirmation(applied.tracker.state, outcome, at < monitor.graceUntil),
        confirmRun,
        silentRounds: 0,
      };
    } else {
      // No opinion: the last round with one stays `lastRound`, so the verdict's age keeps growing.
      const silentRounds = monitor.silentRounds + 1;
      const held = withoutOpinion(monitor.tracker, silentRounds, config.fall, at, reason);
      change = held.change;
      next = { ...monitor, tracker: held.tracker, confirming: false, silentRounds };
    }
    next = { ...next, seq: monitor.seq + 1, quorum: counted.quorum, vantages: counted.vantages };
    const seq = next.seq;
    this.ctx.storage.transactionSync(() => {
      // Streaks counted no further than hysteresis asks: a steady verdict leaves the tracker unchanged.
      this.store.put("monitor", { ...next, tracker: capStreaks(next.tracker, Math.max(config.fall, config.rise)) });
      if (outcome !== null) recordRound(this.sql, next.lastRound!, monitor.lastRound?.at ?? null, config.intervalSec);
      if (change) {
        const confirmations = change.confirmations
          ? { confirmations: change.confirmations, confirmIntervalSec: spacingSec }
          : {};
        this.store.record("verdict.changed", at, change.reason, {
          from: change.from,
          to: change.to,
          seq,
          ...confirmations,
        });
      }
      const event = change && fromVerdictChange(change);
      if (event) this.emit(cluster, at, event);
    });
    // Once per completed hour: roll up into `hourly`, prune past retention (cheap otherwise).
    maintainStatus(this.sql, at, config.maintenance);
    await this.broadcast();
  }

  /**
   * Every vantage runs the round concurrently; one that does not answer by the deadline (its
   * probes' worst case plus slack for the call) or fails is silent. Then the votes are counted.
   */
  private async askVantages(cluster: ClusterRecord): Promise<CountedRound> {
    const { config } = cluster;
    const started = Date.now();
    const deadlineMs = roundBudgetMs(config) + VANTAGE_SLACK_MS;
    const target = { master: config.master, probes: config.probes };
    const answers = await Promise.all(
      config.vantages.map(async (v) => {
        const id = this.env.VANTAGE.idFromName(`${cluster.id}/${v.name}`);
        const stub = this.env.VANTAGE.get(id, v.locationHint ? { locationHint: v.locationHint } : undefined);
        try {
          const raw = await withDeadline(stub.round({ vantage: v.name, target, deadlineMs }), deadlineMs);
          const round = RoundSummary.safeParse(raw?.round);
          if (!raw || !round.success) return null;
          return { round: round.data, reason: String(raw.reason), location: String(raw.location).slice(0, 200) };
        } catch (err) {
          console.error(`vantage ${v.name} of ${cluster.id} failed: ${(err as Error).message}`);
          return null;
        }
      }),
    );
    const at = Date.now();
    const quorum = quorumOf(config);
    const count = countVotes(
      config.vantages.map((v, i) => ({
        name: v.name,
        class: answers[i]?.round.class ?? null,
        reason: answers[i]?.reason ?? "no answer in time",
      })),
      quorum,
    );
    const previous = new Map((this.load()?.monitor.vantages ?? []).map((r) => [r.name, r]));
    const vantages = config.vantages.map((v, i): VantageResult => {
      const a = answers[i];
      return {
        name: v.name,
        ...(v.locationHint ? { locationHint: v.locationHint } : {}),
        location: a?.location ?? previous.get(v.name)?.location ?? null,
        at,
        vote: a?.round.class ?? "silent",
        reason: clip(a?.reason ?? `no answer within ${deadlineMs} ms`, MAX_RESULT_REASON_CHARS),
        durationMs: a ? a.round.durationMs : null,
      };
    });
    const rep = count.representative === null ? null : answers[count.representative]!;
    return {
      at,
      outcome: count.outcome,
      reason: count.reason,
      summary:
        rep && count.outcome ? { at, durationMs: at - started, class: count.outcome, probes: rep.round.probes } : null,
      quorum: { at, ...count.record },
      vantages,
    };
  }

  // ---- status page and uptime (worker/status/) -------------------------------------------------

  /** Uptime input over [from, to) for an admin or this cluster's agent; the worker does the sums. */
  async uptimeHistory(caller: Caller, from: number, to: number): Promise<Outcome<History & { maintenance: Window[] }>> {
    const auth = await this.authorize(caller);
    if (!auth.ok) return auth;
    const { cluster, monitor } = auth.value;
    return done({
      ...readHistory(this.sql, from, to, ongoingGap(cluster, monitor, Date.now())),
      maintenance: cluster.config.maintenance,
    });
  }

  /**
   * Everything the status page shows, read only once access is settled: a private cluster
   * answers a caller without the admin token exactly as an unknown one does.
   */
  statusData(now: number, from: number, admin: boolean): Outcome<StatusData> {
    const known = this.known();
    if (!known.ok) return known;
    const { cluster, monitor } = known.value;
    if (!cluster.config.public && !admin) return UNKNOWN_CLUSTER;
    const report = this.store.get("report");
    return done({
      id: cluster.id,
      public: cluster.config.public,
      createdAt: cluster.createdAt,
      intervalSec: cluster.config.intervalSec,
      verdict: {
        state: monitor.tracker.state,
        since: monitor.tracker.since,
        reason: monitor.tracker.reason,
        lastRoundAt: monitor.lastRound?.at ?? null,
      },
      agent: report
        ? {
            role: report.report.role,
            mode: report.report.mode,
            receivedAt: report.receivedAt,
            lastAction: report.report.lastAction,
          }
        : null,
      maintenance: cluster.config.maintenance,
      vantages: monitor.vantages,
      history: readHistory(this.sql, from, now, ongoingGap(cluster, monitor, now)),
      latency: readLatency(this.sql, now - 24 * 3_600_000, now, 96),
      hourly: readHourly(this.sql, from),
    });
  }
}

/** A round ready for the hysteresis: its class (null: no opinion), why, and what to keep of it. */
interface CountedRound {
  at: number;
  outcome: RoundClass | null;
  reason: string;
  summary: RoundSummary | null;
  quorum: QuorumRound | undefined;
  vantages: VantageResult[];
}

/** How long a vantage may take beyond its probes' worst case: the call, and a cold start far away. */
const VANTAGE_SLACK_MS = 2_000;

/** The round probed from this object: one vantage, today's behaviour. */
async function localRound(config: ClusterConfig): Promise<CountedRound> {
  const { reason, ...summary } = await runRound(config);
  return { at: summary.at, outcome: summary.class, reason, summary, quorum: undefined, vantages: [] };
}

/** `work`, or null once `ms` have passed (the work is left to finish unheard). */
async function withDeadline<T>(work: Promise<T>, ms: number): Promise<T | null> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<null>((resolve) => {
    timer = setTimeout(() => resolve(null), ms);
  });
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** The probe loop's current silence, if the last round is older than the gap threshold. */
function ongoingGap(cluster: ClusterRecord, monitor: MonitorRecord, now: number): { from: number; to: number } | null {
  const last = monitor.lastRound?.at;
  if (last === undefined) return null;
  return now - last > gapThresholdMs(cluster.config.intervalSec) ? { from: last, to: now } : null;
}

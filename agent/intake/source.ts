import { EventEmitter } from "node:events";
import { PushMessage } from "../../protocol/push.js";
import type { PublicJwk } from "../../protocol/signing.js";
import type { Freshness } from "../decision.js";
import { acceptVerdict, type AcceptedVerdict, type Rejection } from "./accept.js";
import { ageNowMs, heldForMs, isFresh, pushAgeAtReceiptMs, type WorkerClockRef } from "./age.js";
import { DEFAULT_BACKOFF, type BackoffPolicy } from "./backoff.js";
import { requestVerdict } from "./poll.js";
import { judgePoll, pollTimeoutMs } from "./poll-judge.js";
import { PushSocket } from "./push.js";

/**
 * The agent's verdict client: the worker pushes every signed verdict over an outbound
 * WebSocket; while that channel is not healthy the agent polls with a fresh nonce. Every
 * envelope goes through `acceptVerdict` (signature, cluster, nonce or seq, age); only an
 * accepted one becomes `latest()`. Freshness is the worker-measured age plus the agent's own
 * monotonic time since receipt (./age.ts): no wall clock is ever read, so a skewed clock changes nothing.
 */

export type { AcceptedVerdict, ChannelKind, Rejection } from "./accept.js";
export type { Freshness };

/** How old the worker-clock reference may get while pushes flow before a poll renews it. */
const WORKER_CLOCK_REFRESH_MS = 5 * 60_000;

export interface Counters {
  accepted: { push: number; poll: number };
  /** By reason: malformed, forged, wrong-cluster, replayed, stale. */
  rejected: Record<string, number>;
  pollErrors: number;
  pushConnected: boolean;
  /** Push connection attempts after the first. */
  reconnects: number;
  /** Refused upgrades and `{type:"error"}` messages from the worker. */
  pushErrors: number;
  /** Authentic verdicts that carried nothing new: a push repeating the last seq (normal at reconnect), a poll older than latest(). */
  ignored: { duplicate: number; older: number };
}

export interface VerdictSourceOptions {
  url: string;
  clusterId: string;
  token: string;
  publicKeys: PublicJwk[];
  pollIntervalMs: number;
  maxVerdictAgeMs: number;
  /** Persisted by the caller (state file). */
  lastSeq: number | null;
  /** The cluster incarnation lastSeq belongs to, persisted with it (null: none seen yet). */
  incarnation?: number | null;
  /**
   * Called (serially, in order) whenever lastSeq rises, or is reset by a new cluster
   * incarnation, so the caller persists both.
   */
  onSeq?: (seq: number, incarnation: number | null) => void | Promise<void>;
  /** Default performance.now(); injectable for tests. */
  clock?: { mono(): number };
  /** Structured log. The token is never passed. */
  log?: (event: string, fields: Record<string, unknown>) => void;
  /** Default true; false = polling only. */
  push?: boolean;
  /** Push reconnect delays; default 0.5 s doubling to 30 s (refused upgrades retry near the cap). */
  reconnect?: BackoffPolicy;
}

export interface VerdictSourceEvents {
  verdict: [AcceptedVerdict];
  rejected: [Rejection];
  push: [{ connected: boolean }];
}

export class VerdictSource extends EventEmitter<VerdictSourceEvents> {
  private readonly o: VerdictSourceOptions;
  private readonly mono: () => number;
  private readonly log: (event: string, fields: Record<string, unknown>) => void;
  private readonly pushSocket: PushSocket | null;
  private lastSeq: number | null;
  private incarnation: number | null;
  private current: AcceptedVerdict | null = null;
  private started = false;
  private stopped = false;
  private pollTimer: NodeJS.Timeout | null = null;
  private pollInFlight: Promise<void> | null = null;
  private readonly pollAbort = new AbortController();
  /** Push frames are checked one at a time, in arrival order, so that seq checks see each other. */
  private pushChain: Promise<void> = Promise.resolve();
  private seqChain: Promise<void> = Promise.resolve();
  private lastPushAcceptedMono: number | null = null;
  /** The worker's clock as the last accepted poll answer showed it: bounds a push's transit. */
  private workerClock: WorkerClockRef | null = null;
  private readonly stats = {
    accepted: { push: 0, poll: 0 },
    rejected: {} as Record<string, number>,
    pollErrors: 0,
    pushErrors: 0,
    ignored: { duplicate: 0, older: 0 },
  };

  constructor(o: VerdictSourceOptions) {
    super();
    if (!(o.pollIntervalMs > 0)) throw new RangeError("pollIntervalMs must be positive");
    if (!(o.maxVerdictAgeMs > 0)) throw new RangeError("maxVerdictAgeMs must be positive");
    this.o = o;
    const clock = o.clock ?? { mono: () => performance.now() };
    this.mono = () => clock.mono();
    this.log = o.log ?? (() => {});
    this.lastSeq = o.lastSeq;
    this.incarnation = o.incarnation ?? null;
    this.pushSocket =
      o.push === false
        ? null
        : new PushSocket({
            url: o.url,
            clusterId: o.clusterId,
            token: o.token,
            backoff: o.reconnect ?? DEFAULT_BACKOFF,
            silenceMs: o.maxVerdictAgeMs,
            mono: this.mono,
            log: (event, fields) => this.safeLog(event, fields),
            hooks: {
              onOpen: () => this.emit("push", { connected: true }),
              onClose: () => this.emit("push", { connected: false }),
              onMessage: (text, at) => {
                this.pushChain = this.pushChain
                  .then(() => this.onPushFrame(text, at))
                  .catch((err: unknown) => {
                    this.safeLog("push.internal-error", { error: String(err) });
                  });
              },
              onRefused: () => this.stats.pushErrors++,
            },
          });
  }

  start(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    this.safeLog("intake.start", {
      url: this.o.url,
      clusterId: this.o.clusterId,
      push: this.pushSocket !== null,
      pollIntervalMs: this.o.pollIntervalMs,
      maxVerdictAgeMs: this.o.maxVerdictAgeMs,
      lastSeq: this.lastSeq,
    });
    this.pushSocket?.start();
    this.pollTick();
  }

  /** Closes the socket, cancels the poll in flight and every timer; resolves once all is quiet. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.pollTimer) clearTimeout(this.pollTimer);
    this.pollTimer = null;
    this.pollAbort.abort();
    await Promise.all([this.pushSocket?.stop(), this.pollInFlight]);
    await this.pushChain;
    await this.seqChain;
    this.safeLog("intake.stop", {});
  }

  latest(): AcceptedVerdict | null {
    return this.current;
  }

  /** Whether latest() is still within maxVerdictAgeMs, judged on the monotonic clock only. */
  freshness(nowMono: number = this.mono()): Freshness {
    const c = this.current;
    if (!c) return "none";
    return isFresh(c.ageAtReceiptMs, heldForMs(c, nowMono), this.o.maxVerdictAgeMs) ? "fresh" : "stale";
  }

  counters(): Counters {
    return {
      accepted: { ...this.stats.accepted },
      rejected: { ...this.stats.rejected },
      pollErrors: this.stats.pollErrors,
      pushConnected: this.pushSocket?.connected ?? false,
      reconnects: this.pushSocket?.reconnects ?? 0,
      pushErrors: this.stats.pushErrors,
      ignored: { ...this.stats.ignored },
    };
  }

  /** The last seq accepted (or given at construction). */
  seq(): number | null {
    return this.lastSeq;
  }

  /** Push is healthy when connected and a pushed verdict was accepted within two poll intervals. */
  pushHealthy(nowMono: number = this.mono()): boolean {
    if (!this.pushSocket?.connected || this.lastPushAcceptedMono === null) return false;
    // Healthy while pushes keep the verdict well inside its freshness bound: half of it leaves
    // room for a poll to rescue freshness, and it spans any sane worker interval (2 s to 10 s).
    return nowMono - this.lastPushAcceptedMono <= this.o.maxVerdictAgeMs / 2;
  }

  // ---- poll ------------------------------------------------------------------------------------

  private pollTick(): void {
    if (this.stopped) return;
    if (!this.pollInFlight && (!this.pushHealthy() || this.workerClockOld())) {
      const p = this.pollRound().catch((err: unknown) => {
        this.safeLog("poll.internal-error", { error: String(err) });
      });
      this.pollInFlight = p.finally(() => (this.pollInFlight = null));
    }
    this.pollTimer = setTimeout(() => this.pollTick(), this.o.pollIntervalMs);
  }

  /**
   * While pushes flow no poll is needed for freshness, but the worker-clock reference they are
   * judged against is renewed now and then, so the drift allowance stays small.
   */
  private workerClockOld(): boolean {
    return this.workerClock !== null && this.mono() - this.workerClock.sentAtMono > WORKER_CLOCK_REFRESH_MS;
  }

  private async pollRound(): Promise<void> {
    const out = await requestVerdict({
      url: this.o.url,
      clusterId: this.o.clusterId,
      token: this.o.token,
      timeoutMs: pollTimeoutMs(this.o.pollIntervalMs),
      mono: this.mono,
      signal: this.pollAbort.signal,
    });
    if (this.stopped) return;
    const got = await judgePoll(out, { ...this.o, incarnation: this.incarnation }, this.mono);
    if (this.stopped) return;
    switch (got.kind) {
      case "error":
        this.stats.pollErrors++;
        this.safeLog(got.event, got.fields);
        return;
      case "rejected":
        this.reject(got.rejection);
        return;
      case "accepted": {
        const a = got.accepted;
        if (a.sentAtMono !== undefined) this.workerClock = { issuedAt: a.verdict.issuedAt, sentAtMono: a.sentAtMono };
        if (!this.newerThanLatest(a)) {
          this.stats.ignored.older++;
          // The same round again is routine while polling (every other poll at 1 s against a 2 s
          // round): counted, not logged. An older round is worth a line.
          if (a.verdict.seq !== this.current?.verdict.seq) {
            this.safeLog("verdict.older", {
              channel: "poll",
              seq: a.verdict.seq,
              latestSeq: this.current?.verdict.seq,
            });
          }
          return;
        }
        this.stats.accepted.poll++;
        // Polls never lower lastSeq within an incarnation; they may raise it (an older push is
        // then refused as replayed). A fresh answer from a new incarnation restarts the floor.
        this.raiseSeq(a.verdict.seq, a.verdict.incarnation);
        this.adopt(a);
        return;
      }
    }
  }

  /**
   * A poll answer replaces latest() if it is from a later round, or (after the worker lost its
   * storage and restarted its seq) if its round is more recent by the monotonic age measure.
   */
  private newerThanLatest(a: AcceptedVerdict): boolean {
    const c = this.current;
    if (!c) return true;
    const inc = a.verdict.incarnation;
    if (inc !== undefined && inc !== (c.verdict.incarnation ?? this.incarnation)) return true; // checked newer by acceptVerdict
    if (a.verdict.seq > c.verdict.seq) return true;
    return a.ageAtReceiptMs < ageNowMs(c, a.receivedAtMono);
  }

  // ---- push ------------------------------------------------------------------------------------

  private async onPushFrame(text: string | null, receivedAtMono: number): Promise<void> {
    if (this.stopped) return;
    if (text === null) return this.reject({ channel: "push", reason: "malformed", detail: "binary frame" });
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      return this.reject({ channel: "push", reason: "malformed", detail: "frame is not JSON" });
    }
    const msg = PushMessage.safeParse(json);
    if (!msg.success) {
      const fields = msg.error.issues.map((i) => i.path.join(".") || "(root)").join(", ");
      return this.reject({ channel: "push", reason: "malformed", detail: `not a push message (${fields})` });
    }
    if (msg.data.type === "error") {
      this.stats.pushErrors++;
      this.safeLog("push.worker-error", { code: msg.data.code.slice(0, 100), message: msg.data.message.slice(0, 500) });
      return;
    }
    const envelope = msg.data.envelope;
    const check = (lastSeq: number | null) =>
      acceptVerdict(envelope, {
        publicKeys: this.o.publicKeys,
        clusterId: this.o.clusterId,
        maxVerdictAgeMs: this.o.maxVerdictAgeMs,
        channel: { kind: "push", lastSeq, incarnation: this.incarnation },
        heldForMs: heldForMs({ receivedAtMono }, this.mono()),
      });
    const lastSeq = this.lastSeq;
    const result = await check(lastSeq);
    if (this.stopped) return;
    if (!result.ok) {
      // The worker sends its current verdict at connect: after a reconnect with no new round it
      // repeats the seq already accepted. Authentic and harmless, but not news: not a rejection.
      if (result.reason === "replayed" && lastSeq !== null) {
        const again = await check(lastSeq > 0 ? lastSeq - 1 : null);
        if (this.stopped) return;
        if (again.ok && again.verdict.seq === lastSeq) {
          this.stats.ignored.duplicate++;
          this.pushSocket?.alive();
          this.safeLog("verdict.duplicate", { channel: "push", seq: lastSeq });
          return;
        }
      }
      return this.reject({ channel: "push", reason: result.reason, detail: result.detail });
    }
    const v = result.verdict;
    const ageAtReceiptMs = pushAgeAtReceiptMs(v, receivedAtMono, this.workerClock);
    if (ageAtReceiptMs + heldForMs({ receivedAtMono }, this.mono()) > this.o.maxVerdictAgeMs) {
      return this.reject({
        channel: "push",
        reason: "stale",
        detail: `pushed verdict arrived ${ageAtReceiptMs} ms after its round by the worker's clock (transit included), more than maxVerdictAgeMs ${this.o.maxVerdictAgeMs}`,
      });
    }
    if (this.lastSeq !== null && v.seq <= this.lastSeq) {
      // A poll raised lastSeq while this frame was being checked: same or older round.
      this.stats.ignored.duplicate++;
      this.safeLog("verdict.duplicate", { channel: "push", seq: v.seq, lastSeq: this.lastSeq });
      return;
    }
    this.stats.accepted.push++;
    this.lastPushAcceptedMono = receivedAtMono;
    this.pushSocket?.alive();
    this.raiseSeq(v.seq, v.incarnation);
    this.adopt({ verdict: v, channel: "push", receivedAtMono, ageAtReceiptMs });
  }

  // ---- shared ----------------------------------------------------------------------------------

  private adopt(a: AcceptedVerdict): void {
    const previous = this.current?.verdict.state;
    this.current = a;
    const v = a.verdict;
    // A verdict arrives every round: the journal gets the first one and each change of state.
    if (previous !== v.state)
      this.safeLog("verdict.accepted", {
        channel: a.channel,
        seq: v.seq,
        state: v.state,
        reason: v.reason,
        ageMs: a.ageAtReceiptMs,
      });
    this.emit("verdict", a);
  }

  private reject(r: Rejection): void {
    this.stats.rejected[r.reason] = (this.stats.rejected[r.reason] ?? 0) + 1;
    this.safeLog("verdict.rejected", { channel: r.channel, reason: r.reason, detail: r.detail });
    this.emit("rejected", r);
  }

  /** `incarnation` is the verdict's (undefined from a worker that predates it: kept as is). */
  private raiseSeq(seq: number, incarnation: number | undefined): void {
    const renewed = incarnation !== undefined && incarnation !== this.incarnation;
    if (!renewed && this.lastSeq !== null && seq <= this.lastSeq) return;
    if (renewed) {
      this.safeLog("cluster.incarnation", { from: this.incarnation, to: incarnation, seq, previousSeq: this.lastSeq });
      this.incarnation = incarnation;
    }
    this.lastSeq = seq;
    const inc = this.incarnation;
    const onSeq = this.o.onSeq;
    if (!onSeq) return;
    // Serial, so that the persisted value only ever rises.
    this.seqChain = this.seqChain
      .then(() => onSeq(seq, inc))
      .catch((err: unknown) => this.safeLog("seq.persist-failed", { seq, error: String(err) }));
  }

  /** A throwing logger must not break the intake. */
  private safeLog(event: string, fields: Record<string, unknown>): void {
    try {
      this.log(event, fields);
    } catch {
      // ignore
    }
  }
}

import { join } from "node:path";
import { clip } from "../protocol/encoding.js";
import { type AgentReport, describeFence, type FenceResult, type Role } from "../protocol/report.js";
import type { MasterState, Verdict } from "../protocol/verdict.js";
import type { Config } from "./config.js";
import { decide, type Decision, type DecisionInput, type Freshness } from "./decision.js";
import { recordBaseline } from "./failback/userstate.js";
import { fenceReason, runFence } from "./fence.js";
import { heldForMs } from "./intake/age.js";
import { acquireLock, LockBusyError } from "./lock.js";
import { silentLogger, type Logger } from "./log.js";
import {
  describeFailure,
  enforce,
  startServices,
  stopServices,
  type EnforceReport,
  type TransitionReport,
} from "./services.js";
import { readSeq, readState, removeLeftoverTemps, writeSeq, writeState, type RoleState } from "./state.js";

/**
 * The keeper loop's one pass (pg_auto_failover's keeper): read the persisted role, look at the
 * two signals, consult the decision table, act under the action lock, then make the services
 * match the role. The role is written *before* services are touched, so an agent killed in the
 * middle of a transition finds its intent on restart and the next pass reconciles the services.
 */

export type LastAction = NonNullable<AgentReport["lastAction"]>;

/** What the keeper needs from the verdict client (agent/intake). */
export interface VerdictView {
  freshness(nowMono?: number): Freshness;
  latest(): { verdict: Verdict; receivedAtMono: number } | null;
}

/** What the keeper needs from the LAN monitor (agent/lan). */
export interface LanView {
  state: MasterState;
}

export interface Clock {
  /** Monotonic milliseconds: every duration the decision uses. */
  mono(): number;
  /** Wall clock, epoch ms: only stamped on records and reports. */
  now(): number;
}

export const systemClock: Clock = { mono: () => performance.now(), now: () => Date.now() };

export type KeeperConfig = Pick<
  Config,
  | "mode"
  | "requireLanConfirmation"
  | "failbackHoldDownMs"
  | "noVerdictAlertMs"
  | "stateDir"
  | "lockWaitMs"
  | "services"
  | "fence"
> & { enforceEveryMs: number } & Partial<Pick<Config, "failback">>;

export interface KeeperOptions {
  config: KeeperConfig;
  verdicts: VerdictView;
  lan: () => LanView | null;
  clock?: Clock;
  log?: Logger;
}

export interface TickResult {
  decision: Decision;
  role: Role;
  /** What this pass did to the services, if anything. */
  did: "failover" | "failback" | "enforce" | "fence" | "nothing" | "skipped-busy";
  ok: boolean;
}

export const actionLockPath = (stateDir: string) => join(stateDir, "action.lock");

/** No verdict at all: what a keeper outside the daemon sees unless it is given one. */
const NO_VERDICTS: VerdictView = { freshness: () => "none", latest: () => null };

/**
 * A keeper for the CLI's one-shot commands, outside the daemon loop: the signals it is given (by
 * default none), and the role enforced on every pass it is asked for.
 */
export function offlineKeeper(
  config: Omit<KeeperConfig, "enforceEveryMs">,
  log: Logger,
  signals: { verdicts?: VerdictView; lan?: () => LanView | null } = {},
): Keeper {
  return new Keeper({
    config: { ...config, enforceEveryMs: 0 },
    verdicts: signals.verdicts ?? NO_VERDICTS,
    lan: signals.lan ?? (() => null),
    log,
  });
}

export class Keeper {
  private readonly cfg: KeeperConfig;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly startedMono: number;
  private lastFreshMono: number | null = null;
  private lastEnforceMono = -Infinity;
  private booting = true;

  role: Role = "unknown";
  /** Agent clock, when `role` was entered (shown only). */
  since: number | null = null;
  lastAction: LastAction | null = null;
  lastDecision: Decision | null = null;
  lastSeq: number | null = null;
  /** The cluster incarnation `lastSeq` belongs to (see protocol/verdict.ts). */
  incarnation: number | null = null;
  reconcilePending = false;
  /** Set while the active slave's telephony runs but does not answer (services.ready); reported. */
  telephonyAlert: string | null = null;
  /** Set while fencing the master has failed (held, or proceeded as configured); reported. */
  fenceAlert: string | null = null;
  private lastFenceMono = -Infinity;
  private silentPasses = 0;

  constructor(private readonly o: KeeperOptions) {
    this.cfg = o.config;
    this.clock = o.clock ?? systemClock;
    this.log = o.log ?? silentLogger;
    this.startedMono = this.clock.mono();
  }

  /** Reads the persisted role and clears temp files a killed writer left behind. */
  async load(): Promise<RoleState | null> {
    const removed = await removeLeftoverTemps(this.cfg.stateDir);
    if (removed.length) this.log("state.leftovers-removed", { files: removed });
    if (this.lastSeq === null) {
      const floor = await readSeq(this.cfg.stateDir);
      if (floor) {
        this.lastSeq = floor.lastSeq;
        this.incarnation = floor.incarnation;
      }
    }
    const read = await readState(this.cfg.stateDir);
    if (!read.ok) {
      this.role = "unknown";
      this.since = null;
      if (read.problem === "corrupt") this.log("state.corrupt", { detail: read.detail }, "warn");
      return null;
    }
    this.role = read.state.role;
    this.since = read.state.since;
    this.lastAction = read.state.lastAction;
    // The replay floor is the verdict client's, kept in memory once known: only the daemon's own
    // client moves it, and its file (seq.json) may lag a write behind. An older agent kept it in
    // role.json, which no longer carries it: moved to seq.json once, so a role write cannot lose it.
    if (this.lastSeq === null && read.state.lastSeq != null) await this.persistSeq(read.state.lastSeq, null);
    this.reconcilePending = read.state.reconcilePending ?? false;
    return read.state;
  }

  /**
   * Called by the verdict client (serially) whenever the last accepted seq rises, or restarts
   * with a new cluster incarnation. Its own file, never role.json: this runs outside the action
   * lock, and a read-modify-write of role.json could undo a role a command wrote meanwhile.
   */
  async persistSeq(seq: number, incarnation: number | null = this.incarnation): Promise<void> {
    this.lastSeq = seq;
    this.incarnation = incarnation;
    await writeSeq(this.cfg.stateDir, { v: 1, lastSeq: seq, incarnation });
  }

  /** The inputs of the decision table, from the two signals and the monotonic clock. */
  private inputs() {
    const nowMono = this.clock.mono();
    const freshness = this.o.verdicts.freshness(nowMono);
    const latest = this.o.verdicts.latest();
    if (freshness === "fresh") {
      this.booting = false;
      this.lastFreshMono = nowMono;
    }
    const v = freshness === "fresh" ? (latest?.verdict ?? null) : null;
    const held = v ? heldForMs(latest!, nowMono) : 0;
    // How long the master has been up, on the *worker's* clock (issuedAt − since), plus how long
    // we have held the verdict on ours: a restart of the agent does not restart the hold-down.
    const externalUpForMs = v && v.state === "up" ? v.issuedAt - v.since + held : null;
    // The maintenance window, judged on the worker's clock the same way: a scheduled window
    // begins, and an ending one ends, on time even between two verdicts.
    const workerNow = v ? v.issuedAt + held : null;
    const m = v?.maintenance ?? null;
    const maintenance =
      m && workerNow !== null ? { active: m.from <= workerNow && workerNow < m.to, reason: m.reason } : null;
    return {
      role: this.role,
      external: { freshness, state: latest ? latest.verdict.state : null },
      lan: this.o.lan()?.state ?? "unknown",
      mode: this.cfg.mode,
      requireLanConfirmation: this.cfg.requireLanConfirmation,
      booting: this.booting,
      externalUpForMs,
      withoutVerdictMs: nowMono - (this.lastFreshMono ?? this.startedMono),
      failbackHoldDownMs: this.cfg.failbackHoldDownMs,
      noVerdictAlertMs: this.cfg.noVerdictAlertMs,
      maintenance,
      now: this.clock.now(),
    };
  }

  async tick(): Promise<TickResult> {
    await this.load();
    const inputs = this.inputs();
    const decision = decide(inputs);
    if (decision.row !== this.lastDecision?.row) {
      this.log("decision", {
        row: decision.row,
        action: decision.action,
        role: decision.role,
        reason: decision.reason,
        alert: decision.alert,
      });
    }
    this.lastDecision = decision;
    // A fencing episode ends when no failover is pending on a slave that is not active (the master
    // came back, an operator moved the role, or the slave failed back).
    if (decision.action !== "failover" && this.role !== "active" && this.fenceAlert) {
      this.log("fence.alert-cleared", { row: decision.row });
      this.fenceAlert = null;
    }
    if (decision.action !== "failover") this.lastFenceMono = -Infinity;
    if (decision.action === "failover" || decision.action === "failback") {
      return this.transition(decision, inputs);
    }
    const due = this.clock.mono() - this.lastEnforceMono >= this.cfg.enforceEveryMs;
    if (this.booting || this.role === "unknown" || !due) return { decision, role: this.role, did: "nothing", ok: true };
    return this.enforceRole(decision);
  }

  /** Failover or failback: the only place the role changes on its own. */
  private async transition(decision: Decision, inputs: DecisionInput): Promise<TickResult> {
    const kind = decision.action as "failover" | "failback";
    const target: Role = kind === "failover" ? "active" : "standby";
    const why =
      kind === "failover"
        ? fenceReason(this.cfg.fence, { row: decision.row, external: inputs.external.state, lan: inputs.lan })
        : null;
    // Held after a failed fence: the next attempt waits its turn (fence.retryEveryMs).
    if (why && this.clock.mono() - this.lastFenceMono < this.cfg.fence!.retryEveryMs) {
      return { decision, role: this.role, did: "nothing", ok: false };
    }
    const outcome = await this.underLock(kind, this.cfg.lockWaitMs, async () => {
      await this.load(); // a manual command may have moved the role while we waited
      if (this.role === target) return null;
      const fence = why ? await this.fence(why, decision) : undefined;
      if (fence?.outcome === "held") return "held" as const;
      return this.changeRole(target, kind, decision.reason, fence);
    });
    if (outcome === "busy") return { decision, role: this.role, did: "skipped-busy", ok: false };
    if (outcome === "held") return { decision, role: this.role, did: "fence", ok: false };
    this.lastEnforceMono = this.clock.mono();
    return { decision, role: this.role, did: outcome ? kind : "nothing", ok: outcome ? outcome.ok : true };
  }

  /**
   * Writes the new role first (with the action marked not yet done), then drives the services,
   * then records the outcome. Also used by the manual `manage-slave-services` command.
   */
  async changeRole(
    target: "active" | "standby",
    kind: LastAction["kind"],
    decided: string,
    fence?: FenceResult,
  ): Promise<TransitionReport> {
    const at = this.clock.now();
    const reason = fence ? clip(`${decided}; ${describeFence(fence)}`, 1500) : decided;
    if (target === "active") {
      // Before the telephony starts: what the slave's users then change is what failback merges back.
      await recordBaseline(this.cfg.failback, this.cfg.stateDir, this.reconcilePending, this.log);
      this.reconcilePending = true; // whatever happens next, copy back at failback
    }
    await this.persist(target, { kind, at, ok: false, inProgress: true, reason: `${reason} (in progress)`, fence });
    this.log(`${kind}.start`, { role: target, reason });
    const t = target === "active" ? await startServices(this.cfg.services) : await stopServices(this.cfg.services);
    const done: LastAction = {
      kind,
      at,
      ok: t.ok,
      reason: t.ok ? reason : `${reason}; but ${clip(describeFailure(t), 400)}`,
      fence,
    };
    await this.persist(target, done);
    const ready = t.ready && { readyProbe: t.ready.probe, readyAfterMs: t.ready.afterMs };
    this.log(
      `${kind}.${t.ok ? "done" : "failed"}`,
      { role: target, reason: done.reason, ...ready },
      t.ok ? "info" : "error",
    );
    return t;
  }

  /**
   * Runs the fence commands (under the action lock, before any service moves). A failure raises
   * the alert; held, the role stays and the failover is recorded as failed once per episode (one
   * notification, not one per retry), later attempts only renewing the alert.
   */
  private async fence(why: string, decision: Decision): Promise<FenceResult> {
    this.log("fence.start", { why, commands: this.cfg.fence!.commands.length });
    const f = await runFence(this.cfg.fence!, why, this.clock.now());
    this.lastFenceMono = this.clock.mono();
    const summary = describeFence(f);
    this.log(
      `fence.${f.ok ? "done" : "failed"}`,
      { outcome: f.outcome, summary, commands: f.commands },
      f.ok ? "info" : "error",
    );
    if (f.ok) {
      this.fenceAlert = null;
      return f;
    }
    const firstFailure = this.fenceAlert === null;
    this.fenceAlert = clip(`fencing the master failed: ${summary}`, 2000);
    if (f.outcome === "held" && firstFailure) {
      const held: LastAction = {
        kind: "failover",
        at: f.at,
        ok: false,
        reason: clip(`${decision.reason}; ${summary}`, 2000),
        fence: f,
      };
      // A slave with no known role (state file lost) keeps it so: the record stays in memory.
      if (this.role === "standby") await this.persist("standby", held);
      else this.lastAction = held;
    }
    return f;
  }

  private async persist(role: "active" | "standby", lastAction: LastAction): Promise<void> {
    const since = this.role === role && this.since !== null ? this.since : this.clock.now();
    await writeState(this.cfg.stateDir, { v: 1, role, since, lastAction, reconcilePending: this.reconcilePending });
    this.role = role;
    this.since = since;
    this.lastAction = lastAction;
  }

  /** After a successful failback reconciliation: replication may resume. */
  async reconciled(): Promise<void> {
    await this.load();
    if (this.role !== "standby" || !this.reconcilePending) return;
    this.reconcilePending = false;
    await this.persist(
      "standby",
      this.lastAction ?? { kind: "failback", at: this.clock.now(), ok: true, reason: "reconciled" },
    );
  }

  /** Re-asserts the role every `enforceEveryMs`: dead services on an active slave come back, live ones on a standby go. */
  private async enforceRole(decision: Decision): Promise<TickResult> {
    const role = this.role;
    const outcome = await this.underLock("enforce", 0, async () => enforce(role, this.cfg.services));
    this.lastEnforceMono = this.clock.mono();
    if (outcome === "busy") return { decision, role, did: "skipped-busy", ok: false };
    this.noteAnswering(outcome);
    if (outcome.action === "none") return { decision, role, did: "nothing", ok: outcome.ok };
    this.log(
      "enforce",
      { role, found: outcome.found, action: outcome.action, ok: outcome.ok, reason: outcome.reason },
      outcome.ok ? "warn" : "error",
    );
    this.lastAction = { kind: "enforce", at: this.clock.now(), ok: outcome.ok, reason: outcome.reason };
    await this.persist(role as "active" | "standby", this.lastAction);
    return { decision, role, did: "enforce", ok: outcome.ok };
  }

  /**
   * A telephony that runs but does not answer is alerted on after two passes in a row (one lost
   * datagram is not an outage), and cleared on the first answer. Not restarted: a restart loop
   * on the only node carrying calls could make things worse; a human decides.
   */
  private noteAnswering(outcome: EnforceReport): void {
    const silent = outcome.role === "active" && outcome.answering?.ok === false;
    this.silentPasses = silent ? this.silentPasses + 1 : 0;
    if (this.silentPasses >= 2 && !this.telephonyAlert) {
      this.telephonyAlert = `active slave's telephony not answering: ${outcome.reason}`;
      this.log("telephony.failing", { reason: outcome.reason }, "error");
    } else if (!silent && this.telephonyAlert) {
      this.telephonyAlert = null;
      this.log("telephony.recovered", { role: outcome.role });
    }
  }

  private async underLock<T>(purpose: string, waitMs: number, fn: () => Promise<T>): Promise<T | "busy"> {
    let lock;
    try {
      lock = await acquireLock(actionLockPath(this.cfg.stateDir), { purpose, waitMs });
    } catch (err) {
      if (err instanceof LockBusyError) {
        this.log("lock.busy", { purpose, detail: err.message }, "warn");
        return "busy";
      }
      throw err;
    }
    try {
      // The lock file must still name us right before acting (see Lock.stillHeld).
      if (!(await lock.stillHeld())) {
        this.log("lock.lost", { purpose, path: lock.path }, "error");
        return "busy";
      }
      return await fn();
    } finally {
      await lock.release();
    }
  }
}

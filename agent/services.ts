import { spawn } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import type { Role } from "../protocol/report.js";
import type { Command, ReadyCheck, RetryPolicy, ServicesConfig } from "./config.js";
import { runLanProbe } from "./lan/probe.js";

/**
 * The slave's telephony services: ordered start/stop lists (what xivo-manage-slave-services did),
 * each command a real child process with a timeout, failures retried with exponential backoff,
 * and the outcome verified by the status commands.
 */

export interface CommandResult {
  argv: string[];
  ok: boolean;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  /** Killed because its caller was aborted (RunOptions.signal). */
  aborted?: boolean;
  /** Set when the command could not be started at all (e.g. ENOENT). */
  spawnError: string | null;
  durationMs: number;
  /** The last few KB of stdout+stderr, for reports. */
  output: string;
}

export interface StepReport {
  argv: string[];
  ok: boolean;
  attempts: CommandResult[];
}

export type ServiceState = "running" | "stopped" | "partial" | "unknown";

export interface StatusReport {
  state: ServiceState;
  checks: CommandResult[];
}

export interface ReadyReport {
  ok: boolean;
  probe: string;
  /** From the end of the start commands and their status check to the first answer (or to giving up). */
  afterMs: number;
  /** What the last attempt saw. */
  detail: string;
}

export interface TransitionReport {
  kind: "start" | "stop";
  /** Every step succeeded, the status commands confirm the expected state, and (on start) the ready check answered. */
  ok: boolean;
  steps: StepReport[];
  status: StatusReport;
  ready: ReadyReport | null;
}

export interface EnforceReport {
  role: Role;
  found: ServiceState;
  action: "start" | "stop" | "none";
  ok: boolean;
  reason: string;
  transition: TransitionReport | null;
  /** On an active slave whose services run: one ready probe (null without `services.ready`). */
  answering?: ReadyReport | null;
}

export interface RunOptions {
  /** After a timeout, SIGTERM the command's process group, then SIGKILL it after this grace. */
  killGraceMs?: number;
  /** Called after every attempt, e.g. to log it. */
  onAttempt?: (r: CommandResult, attempt: number) => void;
  /** Aborting kills the command's process group at once (SIGTERM, SIGKILL half a second later). */
  signal?: AbortSignal | undefined;
}

const OUTPUT_TAIL = 4096;

function childEnv(): NodeJS.ProcessEnv {
  // The agent's secrets (worker token, database passwords) are its own, not the services'.
  const env = { ...process.env };
  for (const name of Object.keys(env)) if (/^XIVO_HA_.*(PASSWORD|TOKEN)$/.test(name)) delete env[name];
  return env;
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}

/** Runs one command (no shell) in its own process group, so a timeout kills its children too. */
export function runCommand(cmd: Command, opts: RunOptions = {}): Promise<CommandResult> {
  const started = performance.now();
  const [file, ...args] = cmd.argv as [string, ...string[]];
  return new Promise((resolve) => {
    let output = "";
    let timedOut = false;
    let killing = false;
    let killTimer: NodeJS.Timeout | undefined;
    let settled = false;
    let aborted = false;
    const child = spawn(file, args, { detached: true, stdio: ["ignore", "pipe", "pipe"], env: childEnv() });
    const collect = (d: Buffer) => (output = (output + d.toString()).slice(-OUTPUT_TAIL));
    child.stdout.on("data", collect);
    child.stderr.on("data", collect);
    const kill = (graceMs: number) => {
      if (killing || settled || child.pid === undefined) return;
      killing = true;
      killGroup(child.pid, "SIGTERM");
      killTimer = setTimeout(() => killGroup(child.pid!, "SIGKILL"), graceMs);
    };
    const timer = setTimeout(() => {
      timedOut = true;
      kill(opts.killGraceMs ?? 2_000);
    }, cmd.timeoutMs);
    const onAbort = () => {
      aborted = true;
      clearTimeout(timer);
      kill(Math.min(opts.killGraceMs ?? 500, 500));
    };
    const finish = (exitCode: number | null, signal: NodeJS.Signals | null, spawnError: string | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(killTimer);
      opts.signal?.removeEventListener("abort", onAbort);
      child.stdout.destroy();
      child.stderr.destroy();
      resolve({
        argv: cmd.argv,
        ok: exitCode === 0 && !killing,
        exitCode,
        signal,
        timedOut,
        aborted,
        spawnError,
        durationMs: Math.round(performance.now() - started),
        output,
      });
    };
    child.once("error", (e) => finish(null, null, e.message));
    if (opts.signal?.aborted) onAbort();
    else opts.signal?.addEventListener("abort", onAbort, { once: true });
    child.once("exit", (code, signal) => {
      // Whatever it left in its group dies with it when it was killed.
      if (killing) killGroup(child.pid!, "SIGKILL");
      // Let the pipes drain, but not forever: a daemon the command forked may hold them open.
      child.once("close", () => finish(code, signal, null));
      setTimeout(() => finish(code, signal, null), 250).unref();
    });
  });
}

export function backoffMs(policy: RetryPolicy, failedAttempts: number): number {
  return Math.min(policy.maxBackoffMs, policy.backoffMs * 2 ** (failedAttempts - 1));
}

export async function runWithRetry(cmd: Command, policy: RetryPolicy, opts: RunOptions = {}): Promise<StepReport> {
  const attempts: CommandResult[] = [];
  for (let n = 1; ; n++) {
    const r = await runCommand(cmd, opts);
    attempts.push(r);
    opts.onAttempt?.(r, n);
    if (r.ok || n > policy.retries) return { argv: cmd.argv, ok: r.ok, attempts };
    await sleep(backoffMs(policy, n));
  }
}

/** Exit 0 = running, other exit = stopped; a status command that hangs or cannot run = unknown. */
export async function checkStatus(cfg: ServicesConfig, opts: RunOptions = {}): Promise<StatusReport> {
  const checks: CommandResult[] = [];
  for (const cmd of cfg.status) checks.push(await runCommand(cmd, opts));
  const verdicts = checks.map((c) =>
    c.timedOut || c.spawnError || c.exitCode === null ? "unknown" : c.ok ? "running" : "stopped",
  );
  const state: ServiceState = verdicts.includes("unknown")
    ? "unknown"
    : verdicts.every((v) => v === "running")
      ? "running"
      : verdicts.every((v) => v === "stopped")
        ? "stopped"
        : "partial";
  return { state, checks };
}

/**
 * Runs every step in order even after one fails: a half-stopped PBX is worse than a best effort,
 * and the status check afterwards tells whether the result holds.
 */
async function transition(kind: "start" | "stop", cfg: ServicesConfig, opts: RunOptions): Promise<TransitionReport> {
  const steps: StepReport[] = [];
  for (const cmd of cfg[kind]) steps.push(await runWithRetry(cmd, cfg.retry, opts));
  const status = await checkStatus(cfg, opts);
  const expected: ServiceState = kind === "start" ? "running" : "stopped";
  const started = steps.every((s) => s.ok) && status.state === expected;
  const ready = kind === "start" && started && cfg.ready ? await waitReady(cfg.ready) : null;
  return { kind, ok: started && (ready?.ok ?? true), steps, status, ready };
}

/** Probes the slave's own service until it answers or `withinMs` has passed. */
export async function waitReady(check: ReadyCheck): Promise<ReadyReport> {
  const t0 = performance.now();
  const elapsed = () => Math.round(performance.now() - t0);
  for (;;) {
    const r = await runLanProbe(check.probe, "127.0.0.1");
    if (r.ok || elapsed() + check.everyMs > check.withinMs) {
      return { ok: r.ok, probe: check.probe.name, afterMs: elapsed(), detail: r.detail };
    }
    await sleep(check.everyMs);
  }
}

export const startServices = (cfg: ServicesConfig, opts: RunOptions = {}) => transition("start", cfg, opts);
export const stopServices = (cfg: ServicesConfig, opts: RunOptions = {}) => transition("stop", cfg, opts);

/** Makes the services match the role: nothing runs on a standby, everything runs on an active slave. */
export async function enforce(role: Role, cfg: ServicesConfig, opts: RunOptions = {}): Promise<EnforceReport> {
  if (role === "unknown") {
    return {
      role,
      found: "unknown",
      action: "none",
      ok: false,
      reason: "role unknown: not touching services",
      transition: null,
    };
  }
  const { state: found } = await checkStatus(cfg, opts);
  if (found === "unknown") {
    return {
      role,
      found,
      action: "none",
      ok: false,
      reason: "service status unknown (a status command failed to run)",
      transition: null,
    };
  }
  const wanted: ServiceState = role === "active" ? "running" : "stopped";
  if (found === wanted) {
    // Running is not serving: a hung Asterisk keeps its pid. Ask once; the keeper decides when to alert.
    const answering = role === "active" && cfg.ready ? await waitReady({ ...cfg.ready, withinMs: 1 }) : null;
    if (answering && !answering.ok) {
      const reason = `services running, but ${answering.probe} not answering (${answering.detail})`;
      return { role, found, action: "none", ok: false, reason, transition: null, answering };
    }
    return {
      role,
      found,
      action: "none",
      ok: true,
      reason: `services ${found}, as a ${role} slave's should be`,
      transition: null,
      answering,
    };
  }
  const t = role === "active" ? await startServices(cfg, opts) : await stopServices(cfg, opts);
  const reason =
    role === "active"
      ? `services found ${found} on the active slave: started again`
      : `services found ${found} on a standby slave: stopped`;
  return {
    role,
    found,
    action: t.kind,
    ok: t.ok,
    reason: t.ok ? reason : `${reason}, but ${describeFailure(t)}`,
    transition: t,
  };
}

export function describeFailure(t: TransitionReport): string {
  const failed = t.steps.filter((s) => !s.ok).map((s) => `\`${s.argv.join(" ")}\` failed ${s.attempts.length}x`);
  if (t.status.state !== (t.kind === "start" ? "running" : "stopped")) failed.push(`status is ${t.status.state}`);
  if (t.ready && !t.ready.ok)
    failed.push(`${t.ready.probe} not answering after ${t.ready.afterMs} ms (${t.ready.detail})`);
  return failed.join("; ") || "ok";
}

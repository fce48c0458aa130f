import { z } from "zod";
import { EpochMs } from "./time.js";
import { MasterState } from "./verdict.js";

/** The slave's role. `unknown` only before the agent has read its state file. */
export const Role = z.enum(["standby", "active", "unknown"]);
export type Role = z.infer<typeof Role>;

const Text = z.string().max(2000);

/** One fence command's outcome. */
export const FenceCommandResult = z.object({
  /** Its position and program ("#1 ssh"), never its arguments: they may hold a secret (an IPMI password). */
  command: z.string().max(200),
  ok: z.boolean(),
  exitCode: z.number().int().nullable(),
  timedOut: z.boolean(),
  /** Set when it could not be started at all (e.g. ENOENT). */
  spawnError: z.string().max(200).nullable(),
  durationMs: z.number().nonnegative(),
  /** The end of its stdout+stderr (short: a report, whole, stays far below the worker's 64 KiB). */
  output: z.string().max(300),
});
export type FenceCommandResult = z.infer<typeof FenceCommandResult>;

/**
 * The fencing of a failing master before the slave takes over (agent/fence.ts): every configured
 * command's outcome, and what the agent then did (fenced; failed and held as standby; failed
 * and proceeded as configured).
 */
export const FenceResult = z.object({
  at: EpochMs,
  ok: z.boolean(),
  outcome: z.enum(["fenced", "held", "proceeded"]),
  /** Why the master was fenced (degraded, or down with fence.onDown). */
  why: Text,
  durationMs: z.number().nonnegative(),
  commands: z.array(FenceCommandResult).max(16),
});
export type FenceResult = z.infer<typeof FenceResult>;

/** One line for a reason, a log or a notification: what fencing did, per failed command. */
export function describeFence(f: FenceResult): string {
  const secs = `${(f.durationMs / 1000).toFixed(1)} s`;
  if (f.ok) return `master fenced (${f.why}): ${f.commands.length} command(s) ok in ${secs}`;
  const failed = f.commands
    .filter((c) => !c.ok)
    .map(
      (c) =>
        `${c.command} ${c.timedOut ? `timed out after ${c.durationMs} ms` : c.spawnError ? `could not start (${c.spawnError})` : `exited ${c.exitCode ?? "by a signal"}`}`,
    )
    .join("; ");
  const then =
    f.outcome === "held"
      ? "holding as standby, services not started"
      : "proceeding as configured (fence.onFailure: proceed)";
  return `fencing the master FAILED (${f.why}): ${failed}; ${then}`;
}

/** What the agent on the slave tells the worker every loop. */
export const AgentReport = z.object({
  role: Role,
  mode: z.enum(["auto", "manual"]),
  /** Agent clock, epoch ms: shown, never used for decisions. */
  at: EpochMs,
  lastAction: z
    .object({
      kind: z.enum(["failover", "failback", "enforce", "hold", "none"]),
      at: EpochMs,
      ok: z.boolean(),
      reason: Text,
      /** Written before the services move: not a failure (yet), whatever `ok` says. */
      inProgress: z.boolean().optional(),
      /** The fencing of the master this failover ran first, if any (absent from older agents). */
      fence: FenceResult.optional(),
    })
    .nullable(),
  lan: z
    .object({
      state: MasterState,
      probes: z
        .array(z.object({ name: z.string().max(100), ok: z.boolean(), detail: Text, rttMs: z.number().nullable() }))
        .max(32),
    })
    .nullable(),
  /** The last verdict seq the agent accepted. */
  verdictSeq: z.number().int().nonnegative().nullable(),
  alerts: z.array(Text).max(20).default([]),
  counters: z.record(z.string().max(100), z.number()).default({}),
  agentVersion: z.string().max(50).optional(),
  /** The last master → slave database replication run, once there has been one. */
  replication: z
    .object({
      at: EpochMs,
      ok: z.boolean(),
      durationMs: z.number().nonnegative(),
      rows: z.number().int().nonnegative(),
      bytes: z.number().int().nonnegative(),
      tablesCopied: z.number().int().nonnegative(),
      tablesSkipped: z.number().int().nonnegative(),
      error: Text.nullable(),
    })
    .nullable()
    .optional(),
});
export type AgentReport = z.infer<typeof AgentReport>;

import { z } from "zod";
import { EpochMs } from "./time.js";
import { MasterState } from "./verdict.js";

/** The slave's role. `unknown` only before the agent has read its state file. */
export const Role = z.enum(["standby", "active", "unknown"]);
export type Role = z.infer<typeof Role>;

const Text = z.string().max(2000);

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

import { basename } from "node:path";
import { z } from "zod";
import { clip } from "../protocol/encoding.js";
import type { FenceCommandResult, FenceResult } from "../protocol/report.js";
import type { MasterState } from "../protocol/verdict.js";
import { runCommand } from "./services.js";

/**
 * Fencing a failing master before the slave starts its telephony (STONITH): a `degraded` master
 * still answers, and may still take calls and registrations on the same trunks and phones as the
 * slave about to start. The admin's commands (e.g. `ssh master systemctl stop asterisk`, an IPMI
 * or PDU power-off) run in order, each a real process group with a timeout, never through a shell
 * unless the admin wrote `["sh", "-c", …]`. They come from the config file only.
 */
export const FenceConfig = z.strictObject({
  /** argv arrays, run in order; every one must succeed for the master to count as fenced. */
  commands: z
    .array(z.array(z.string().min(1)).min(1).max(64))
    .min(1)
    .max(16),
  /** Per command; past it the command's whole process group is killed. */
  timeoutMs: z.number().int().min(100).max(600_000).default(30_000),
  /**
   * Fencing failed: `hold` (the default) keeps the slave standby and retries, since a master not
   * known to be fenced may still answer the same phones and trunks (split brain), which is worse
   * than an outage a human ends; `proceed` starts the services anyway, with an alert.
   */
  onFailure: z.enum(["hold", "proceed"]).default("hold"),
  /** Fence a `down` master too (nothing answers: it cannot take calls, so off by default). */
  onDown: z.boolean().default(false),
  /** While holding, fencing is retried at most this often. */
  retryEveryMs: z.number().int().min(1000).max(3_600_000).default(30_000),
});
export type FenceConfig = z.infer<typeof FenceConfig>;

const OUTPUT_TAIL = 300;

/**
 * Why this failover must fence first, or null when it need not: a degraded master (seen so by
 * the edge or the LAN) always, a down one only with `onDown`; a planned switchover never (the
 * admin is taking the master down on purpose).
 */
export function fenceReason(
  cfg: FenceConfig | null | undefined,
  i: { row: string; external: MasterState | null; lan: MasterState },
): string | null {
  if (!cfg || i.row === "planned-switchover") return null;
  if (i.external === "degraded" || i.lan === "degraded")
    return "the master is degraded: it answers, its telephony fails";
  if (cfg.onDown) return "the master is down (fence.onDown)";
  return null;
}

/** Runs every fence command in order (all of them, even after a failure: more fencing is never less safe). */
export async function runFence(cfg: FenceConfig, why: string, now = Date.now()): Promise<FenceResult> {
  const t0 = performance.now();
  const commands: FenceCommandResult[] = [];
  for (const [n, argv] of cfg.commands.entries()) {
    const r = await runCommand({ argv, timeoutMs: cfg.timeoutMs });
    commands.push({
      command: `#${n + 1} ${basename(argv[0]!)}`,
      ok: r.ok,
      exitCode: r.exitCode,
      timedOut: r.timedOut,
      spawnError: r.spawnError && clip(r.spawnError, 200),
      durationMs: r.durationMs,
      output: r.output.slice(-OUTPUT_TAIL),
    });
  }
  const ok = commands.every((c) => c.ok);
  return {
    at: now,
    ok,
    outcome: ok ? "fenced" : cfg.onFailure === "hold" ? "held" : "proceeded",
    why,
    durationMs: Math.round(performance.now() - t0),
    commands,
  };
}

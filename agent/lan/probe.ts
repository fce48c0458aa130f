import { z } from "zod";
import { ProbeResult } from "../../protocol/verdict.js";
import type { LanProbe } from "./config.js";
import { TimeoutError, describe, withTimeout } from "./common.js";
import { probePostgres } from "./postgres.js";
import { probeSip } from "./sip.js";
import { probeTcp } from "./tcp.js";

/**
 * The agent's probe result: the edge's ProbeResult, with the one kind only the LAN can see.
 * (protocol/verdict.ts stays the edge's vocabulary; a PostgreSQL login is not a "tcp" probe.)
 */
export const LanProbeResult = ProbeResult.extend({ kind: z.enum(["sip", "tcp", "postgres"]) });
export type LanProbeResult = z.infer<typeof LanProbeResult>;

/**
 * Runs one LAN probe against the master (or the probe's own `host`). Always resolves: ok with
 * what it saw, or failed with a short reason; rttMs is null when nothing answered in time.
 */
export async function runLanProbe(p: LanProbe, masterHost: string): Promise<LanProbeResult> {
  const host = p.host ?? masterHost;
  const base = { name: p.name, kind: p.kind, critical: p.critical };
  const started = performance.now();
  const elapsed = () => Math.round((performance.now() - started) * 10) / 10;
  try {
    const detail = await withTimeout(p.timeoutMs, (ctx) => {
      switch (p.kind) {
        case "sip":
          return probeSip(p, host, ctx);
        case "tcp":
          return probeTcp(p, host, ctx);
        case "postgres":
          return probePostgres(p, host, ctx, p.timeoutMs);
      }
    });
    return { ...base, ok: true, detail, rttMs: elapsed() };
  } catch (err) {
    return { ...base, ok: false, detail: describe(err), rttMs: err instanceof TimeoutError ? null : elapsed() };
  }
}

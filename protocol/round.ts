import type { ProbeResult, RoundClass } from "./verdict.js";

/**
 * What one round says about the master, before hysteresis:
 * - up: every critical probe answered (a failing non-critical probe is noted, not fatal);
 * - degraded: the host answers something, but a critical probe fails — a crashed or hung
 *   Asterisk on a live box, which XiVO's ping never saw;
 * - down: nothing answers at all.
 */
/** Only what a probe found matters here, not its kind: the agent's LAN probes include a PostgreSQL login. */
type Finding = Pick<ProbeResult, "name" | "ok" | "critical" | "detail">;

export function classifyRound(results: readonly Finding[]): { class: RoundClass; reason: string } {
  const failed = results.filter((r) => !r.ok);
  const answered = results.length - failed.length;
  const list = (rs: readonly Finding[]) => rs.map((r) => `${r.name}: ${r.detail}`).join("; ");
  if (failed.length === 0) return { class: "up", reason: `all ${results.length} probes answered` };
  if (answered === 0) return { class: "down", reason: `nothing answers (${list(failed)})` };
  const critical = failed.filter((r) => r.critical);
  if (critical.length > 0)
    return { class: "degraded", reason: `host answers but critical probes fail (${list(critical)})` };
  return { class: "up", reason: `critical probes answered; non-critical failing (${list(failed)})` };
}

/**
 * One answer to "will failover work?": a named check, its outcome, what was seen, and the fix
 * in a few words. `info` is for what is shown but never decides (the clock offset).
 */
export type Outcome = "ok" | "warning" | "failed" | "info";

export interface CheckResult {
  name: string;
  outcome: Outcome;
  detail: string;
  fix?: string;
}

export const ok = (name: string, detail: string): CheckResult => ({ name, outcome: "ok", detail });
export const info = (name: string, detail: string): CheckResult => ({ name, outcome: "info", detail });
export const warning = (name: string, detail: string, fix: string): CheckResult => ({
  name,
  outcome: "warning",
  detail,
  fix,
});
export const failed = (name: string, detail: string, fix: string): CheckResult => ({
  name,
  outcome: "failed",
  detail,
  fix,
});

export const anyFailed = (results: CheckResult[]) => results.some((r) => r.outcome === "failed");

const MARK: Record<Outcome, string> = { ok: "ok     ", warning: "WARNING", failed: "FAILED ", info: "info   " };

export function doctorLines(results: CheckResult[]): string[] {
  const lines = results.map((r) => `${MARK[r.outcome]} ${r.name}: ${r.detail}${r.fix ? ` → ${r.fix}` : ""}`);
  const count = (o: Outcome) => results.filter((r) => r.outcome === o).length;
  lines.push(`${count("failed")} failed, ${count("warning")} warning(s), ${count("ok")} ok`);
  return lines;
}

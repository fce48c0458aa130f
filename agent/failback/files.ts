import { runCommand, type CommandResult } from "../services.js";
import type { FileSyncHook } from "./config.js";

/**
 * The file-sync hooks: what the slave wrote on disk while active (voicemail, recordings) goes
 * back to the master through commands the operator configures (typically `rsync -a`). Each runs
 * as a child process with its own timeout; every one runs, and every outcome is reported. They
 * run under the action lock: an abort (the verdict left "up") kills the one running at once.
 */

export interface FileResult {
  name: string;
  ok: boolean;
  detail: string;
}

export async function runFileSync(
  hooks: FileSyncHook[],
  opts: { log: (event: string, fields: Record<string, unknown>) => void; signal?: AbortSignal | undefined },
): Promise<FileResult[]> {
  const results: FileResult[] = [];
  for (const hook of hooks) {
    if (opts.signal?.aborted) {
      results.push({ name: hook.name, ok: false, detail: "not run: aborted" });
      continue;
    }
    const r = await runCommand({ argv: hook.argv, timeoutMs: hook.timeoutMs }, { signal: opts.signal });
    const result = { name: hook.name, ok: r.ok, detail: describe(r, hook.timeoutMs) };
    opts.log("failback.file", { ...result, durationMs: r.durationMs });
    results.push(result);
  }
  return results;
}

export function describe(r: CommandResult, timeoutMs: number): string {
  const tail = r.output.trim().split("\n").slice(-3).join(" | ").slice(-500);
  const out = tail ? `: ${tail}` : "";
  if (r.spawnError) return `cannot start ${r.argv[0]}: ${r.spawnError}`;
  if (r.aborted) return `aborted after ${r.durationMs} ms (killed)${out}`;
  if (r.timedOut) return `timed out after ${timeoutMs} ms (killed)${out}`;
  if (r.ok) return `exit 0 in ${r.durationMs} ms`;
  return r.signal ? `killed by ${r.signal}${out}` : `exit ${r.exitCode}${out}`;
}

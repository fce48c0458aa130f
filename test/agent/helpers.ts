import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach } from "vitest";
import { offlineKeeper } from "../../agent/keeper.js";
import { silentLogger } from "../../agent/log.js";
import { pidAlive } from "../../agent/proc.js";

export const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

export async function tempDir(prefix = "xivo-ha-test-"): Promise<{ path: string; remove: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

/**
 * A fresh directory per test for fake services (their pid files, call logs); after each test
 * every daemon, hung command or grandchild they left is killed, then the directory removed.
 */
export function useServiceDir(): { readonly path: string } {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  beforeEach(async () => (dir = await tempDir()));
  afterEach(async () => {
    await killServices(dir.path);
    await dir.remove();
  });
  return {
    get path() {
      return dir.path;
    },
  };
}

/** A TypeScript fixture run the way the agent runs: Node with the tsx loader. */
export function spawnTs(script: string, args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  return spawn(process.execPath, ["--import", "tsx", fixture(script), ...args], {
    stdio: ["pipe", "pipe", "pipe"],
    env: { ...process.env, ...env },
  });
}

/** Resolves with the first stdout line matching `pattern`; rejects if the child exits first. */
export function waitForLine(child: ChildProcess, pattern: RegExp, timeoutMs = 20_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = "";
    let err = "";
    const timer = setTimeout(() => done(new Error(`timed out waiting for ${pattern}; stderr: ${err}`)), timeoutMs);
    const onData = (d: Buffer) => {
      buf += d.toString();
      const line = buf.split("\n").find((l) => pattern.test(l));
      if (line !== undefined) done(null, line);
    };
    const onErr = (d: Buffer) => (err += d.toString());
    const onExit = (code: number | null) => done(new Error(`child exited (${code}) before ${pattern}; stderr: ${err}`));
    function done(e: Error | null, line?: string) {
      clearTimeout(timer);
      child.stdout!.off("data", onData);
      child.stderr!.off("data", onErr);
      child.off("exit", onExit);
      if (e) reject(e);
      else resolve(line!);
    }
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onErr);
    child.on("exit", onExit);
  });
}

export function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  }
  return new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
}

/** Kills a child if it still runs and waits for it, so no test leaves a process behind. */
export async function reap(child: ChildProcess): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  await exited(child);
}

/** Kills every process a test's stand-in services left (each writes `<name>.pid` in `dir`). */
export async function killServices(dir: string): Promise<void> {
  for (const f of await readdir(dir).catch(() => [] as string[])) {
    if (!f.endsWith(".pid")) continue;
    const pid = Number(await readFile(join(dir, f), "utf8").catch(() => "0"));
    if (pid && pidAlive(pid)) process.kill(pid, "SIGKILL");
  }
}

/** A keeper outside the daemon over `stateDir`, with no services to drive: for the tests of what it persists. */
export function idleKeeper(stateDir: string) {
  return offlineKeeper(
    {
      mode: "auto",
      requireLanConfirmation: true,
      failbackHoldDownMs: 60_000,
      noVerdictAlertMs: 60_000,
      stateDir,
      lockWaitMs: 0,
      services: { start: [], stop: [], status: [], retry: { retries: 0, backoffMs: 1, maxBackoffMs: 1 } },
    },
    silentLogger,
  );
}

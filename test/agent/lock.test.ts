import { spawn } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { acquireLock, holderAlive, LockBusyError, type LockHolder } from "../../agent/lock.js";
import { bootId, processStartTicks } from "../../agent/proc.js";
import { exited, reap, spawnTs, tempDir, waitForLine } from "./helpers.js";

let dir: { path: string; remove: () => Promise<void> };
let lockPath: string;
const children: ReturnType<typeof spawnTs>[] = [];

beforeEach(async () => {
  dir = await tempDir();
  lockPath = join(dir.path, "agent.lock");
});
afterEach(async () => {
  await Promise.all(children.splice(0).map(reap));
  await dir.remove();
});

function holder(purpose = "test-holder", waitMs = 0) {
  const c = spawnTs("hold-lock.ts", [lockPath, purpose, String(waitMs)]);
  children.push(c);
  return c;
}

/** The pid of a process that has just exited. */
async function deadPid(): Promise<number> {
  const c = spawn(process.execPath, ["-e", "0"]);
  await exited(c);
  return c.pid!;
}

const record = (h: Partial<LockHolder>): string =>
  JSON.stringify({ pid: 1, startTicks: null, bootId: bootId(), purpose: "old", since: 0, ...h });

describe("agent lock", () => {
  it("is exclusive: a second taker fails at once, naming the holder's pid and purpose", async () => {
    const child = holder("run");
    const pid = Number((await waitForLine(child, /^held/)).split(" ")[1]);
    const err = await acquireLock(lockPath, { purpose: "failover", waitMs: 0 }).catch((e) => e);
    expect(err).toBeInstanceOf(LockBusyError);
    expect(err.message).toContain(`held by pid ${pid}`);
    expect(err.message).toContain("(run,");
    expect(err.message).toContain(lockPath);
    expect(err.holder.pid).toBe(pid);
  });

  it("waits up to the timeout, then fails", async () => {
    const child = holder();
    await waitForLine(child, /^held/);
    const t0 = performance.now();
    await expect(acquireLock(lockPath, { purpose: "x", waitMs: 300, pollMs: 20 })).rejects.toThrow(
      /gave up after waiting 300 ms/,
    );
    expect(performance.now() - t0).toBeGreaterThanOrEqual(290);
  });

  it("a waiter gets the lock once the holder releases it", async () => {
    const child = holder();
    await waitForLine(child, /^held/);
    const waiting = acquireLock(lockPath, { purpose: "manual", waitMs: 20_000, pollMs: 20 });
    child.stdin!.write("release\n");
    const lock = await waiting;
    expect(lock.holder.pid).toBe(process.pid);
    expect(await lock.stillHeld()).toBe(true);
    await lock.release();
  });

  it("blocks another process while held here, and frees it on release", async () => {
    const lock = await acquireLock(lockPath, { purpose: "run", waitMs: 0 });
    const busy = holder("manual", 0);
    expect(await waitForLine(busy, /^busy/)).toContain(`held by pid ${process.pid} (run,`);
    expect((await exited(busy)).code).toBe(3);
    await lock.release();
    await waitForLine(holder("manual", 0), /^held/);
  });

  it("takes over a lock whose holder was SIGKILLed", async () => {
    const child = holder();
    await waitForLine(child, /^held/);
    child.kill("SIGKILL");
    await exited(child);
    const lock = await acquireLock(lockPath, { purpose: "run", waitMs: 0 });
    expect(JSON.parse(await readFile(lockPath, "utf8")).pid).toBe(process.pid);
    await lock.release();
  });

  it("takes over a lock naming a pid that no longer exists", async () => {
    await writeFile(lockPath, record({ pid: await deadPid() }));
    const lock = await acquireLock(lockPath, { purpose: "run", waitMs: 0 });
    expect(await lock.stillHeld()).toBe(true);
    await lock.release();
  });

  it("takes over a lock whose pid was reused by another process, or recorded before a reboot", async () => {
    expect(
      holderAlive({
        pid: process.pid,
        startTicks: processStartTicks(process.pid),
        bootId: bootId(),
        purpose: "",
        since: 0,
      }),
    ).toBe(true);
    await writeFile(lockPath, record({ pid: process.pid, startTicks: "1" }));
    await (await acquireLock(lockPath, { purpose: "run", waitMs: 0 })).release();
    await writeFile(lockPath, record({ pid: process.pid, bootId: "another-boot" }));
    await (await acquireLock(lockPath, { purpose: "run", waitMs: 0 })).release();
  });

  it("takes over an unreadable lock file", async () => {
    await writeFile(lockPath, "garbage");
    await (await acquireLock(lockPath, { purpose: "run", waitMs: 0 })).release();
  });

  it("release leaves alone a lock that is no longer ours", async () => {
    const lock = await acquireLock(lockPath, { purpose: "run", waitMs: 0 });
    const other = record({ pid: process.pid, purpose: "someone else" });
    await writeFile(lockPath, other);
    expect(await lock.stillHeld()).toBe(false);
    await lock.release();
    expect(await readFile(lockPath, "utf8")).toBe(other);
  });

  it("never lets two processes in at once, even racing to take over a dead holder's lock", async () => {
    await writeFile(lockPath, record({ pid: await deadPid() }));
    const log = join(dir.path, "critical.log");
    await writeFile(log, "");
    const racers = Array.from({ length: 4 }, () => {
      const c = spawnTs("lock-critical.ts", [lockPath, log, "5"]);
      children.push(c);
      return c;
    });
    const results = await Promise.all(racers.map(exited));
    expect(results.every((r) => r.code === 0)).toBe(true);
    const lines = (await readFile(log, "utf8")).trim().split("\n");
    expect(lines).toHaveLength(4 * 5 * 2);
    for (let i = 0; i < lines.length; i += 2) {
      const [enter, leave] = [lines[i]!.split(" "), lines[i + 1]!.split(" ")];
      expect([enter[0], leave[0]]).toEqual(["enter", "leave"]);
      expect(leave[1]).toBe(enter[1]);
    }
  });
});

describe("agent lock, taken over from crashed holders again and again", () => {
  it("never lets two processes act at once", async () => {
    const dead = await deadPid();
    await writeFile(lockPath, record({ pid: dead }));
    const log = join(dir.path, "critical.log");
    await writeFile(log, "");
    const racers = Array.from({ length: 6 }, () => {
      const c = spawnTs("lock-crash-race.ts", [lockPath, log, "40", String(dead)]);
      children.push(c);
      return c;
    });
    const results = await Promise.all(racers.map(exited));
    expect(results.map((r) => r.code)).toEqual(racers.map(() => 0));
    const lines = (await readFile(log, "utf8")).trim().split("\n");
    let inside: string | null = null;
    for (const line of lines) {
      const [what, pid] = line.split(" ");
      if (what === "enter") {
        expect(inside, `${pid} entered while ${inside} was inside`).toBeNull();
        inside = pid!;
      } else {
        expect(pid).toBe(inside);
        inside = null;
      }
    }
  }, 120_000);
});

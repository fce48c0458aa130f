import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { parseFailbackConfig } from "../../../agent/failback/config.js";
import { actionLockPath } from "../../../agent/keeper.js";
import { acquireLock } from "../../../agent/lock.js";
import { silentLogger } from "../../../agent/log.js";
import { StandbySync } from "../../../agent/standby-sync.js";
import { writeState } from "../../../agent/state.js";
import { until } from "../../support/until.js";
import { idleKeeper, tempDir } from "../helpers.js";

/**
 * A file-sync hook runs under the action lock (a standby sync pass's): when the verdict leaves
 * "up" the pass is cancelled, and the hook must die with it at once, not at its own timeout,
 * or the failover waits behind an rsync to a dead master.
 */
let dir: { path: string; remove: () => Promise<void> };
const pids: number[] = [];
beforeEach(async () => (dir = await tempDir("xivo-ha-files-abort-")));
afterEach(async () => {
  for (const pid of pids.splice(0)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone
    }
  }
  await dir.remove();
});

describe("a file-sync hook when the standby sync is cancelled", () => {
  it("is killed with its whole process group within about a second, and the action lock is free", async () => {
    const stateDir = join(dir.path, "state");
    await writeState(stateDir, {
      v: 1,
      role: "standby",
      since: 1,
      lastAction: null,
      lastSeq: null,
      reconcilePending: true,
    });
    const keeper = idleKeeper(stateDir);
    const pidFile = join(dir.path, "pids");
    // Like an rsync over ssh to a master that just died: a child and a grandchild, both stuck.
    const script = `const c = require("child_process").spawn("sleep", ["300"], { stdio: "ignore" });
      require("fs").writeFileSync(${JSON.stringify(pidFile)}, process.pid + " " + c.pid); setInterval(() => {}, 1000);`;
    // Nothing listens on port 9: the row copy-back fails at once and the hooks run anyway.
    const failback = parseFailbackConfig(
      {
        master: { host: "127.0.0.1", port: 9 },
        slave: { host: "127.0.0.1", port: 9 },
        origin: "test-slave",
        fileSync: [{ name: "voicemail", argv: [process.execPath, "-e", script] }],
      },
      {},
    );
    const sync = new StandbySync({
      keeper,
      stateDir,
      replication: null,
      failback,
      masterUp: () => true,
      log: silentLogger,
    });
    const pass = sync.run();
    const [hook, grandchild] = await until(
      "the hook running",
      async () => {
        const text = await readFile(pidFile, "utf8").catch(() => "");
        return text.includes(" ") ? text.split(" ").map(Number) : null;
      },
      { timeoutMs: 20_000 },
    );
    pids.push(hook!, grandchild!);

    const t0 = performance.now();
    sync.cancel();
    expect(await pass).toBe("reconcile-failed");
    const elapsed = performance.now() - t0;
    expect(elapsed).toBeLessThan(1500);
    expect(await alive(hook!)).toBe(false);
    expect(await alive(grandchild!)).toBe(false);
    expect(sync.lastReconcile?.files).toEqual([
      { name: "voicemail", ok: false, detail: expect.stringMatching(/^aborted/) },
    ]);
    const lock = await acquireLock(actionLockPath(stateDir), { purpose: "failover", waitMs: 0 });
    await lock.release();
  }, 30_000);
});

/** Running, as opposed to gone or a zombie nobody reaped yet. */
async function alive(pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    return !/^\d+ \(.*\) Z/.test(stat);
  } catch {
    return false;
  }
}

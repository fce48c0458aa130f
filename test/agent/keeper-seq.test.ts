import { spawn } from "node:child_process";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { readState, statePath, writeState } from "../../agent/state.js";
import { exited, idleKeeper, tempDir } from "./helpers.js";

/**
 * The verdict client persists every new seq from outside the action lock, while a manual
 * command (another process, under the lock) may change the role: the seq must never bring an
 * older role, or a cleared reconcilePending, back.
 */
let dir: { path: string; remove: () => Promise<void> };
beforeEach(async () => (dir = await tempDir("xivo-ha-keeper-seq-")));
afterEach(() => dir.remove());

describe("persisting the last seq", () => {
  it("never undoes a role another process wrote meanwhile", async () => {
    await writeState(dir.path, {
      v: 1,
      role: "standby",
      since: 1,
      lastAction: null,
      lastSeq: 1,
      reconcilePending: false,
    });
    const keeper = idleKeeper(dir.path);
    await keeper.load();
    // `manage-slave-services start` in another process: an atomic replace of role.json.
    const file = statePath(dir.path);
    const active = JSON.stringify({
      v: 1,
      role: "active",
      since: 2,
      lastAction: null,
      lastSeq: 1,
      reconcilePending: true,
    });
    const manual = spawn(process.execPath, [
      "-e",
      `const fs = require("fs"); setTimeout(() => { fs.writeFileSync(${JSON.stringify(`${file}.manual`)}, ${JSON.stringify(active)}); fs.renameSync(${JSON.stringify(`${file}.manual`)}, ${JSON.stringify(file)}); }, 300);`,
    ]);
    const done = exited(manual);
    let seq = 1;
    let finished = false;
    void done.then(() => (finished = true));
    while (!finished) await keeper.persistSeq(++seq);
    for (let i = 0; i < 20; i++) await keeper.persistSeq(++seq);

    const st = await readState(dir.path);
    expect(st.ok && st.state).toMatchObject({ role: "active", reconcilePending: true });
    // And the seq itself survives a restart.
    const again = idleKeeper(dir.path);
    await again.load();
    expect(again.lastSeq).toBe(seq);
  });
});

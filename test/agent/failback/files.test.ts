import { mkdir, readFile, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FileSyncHook } from "../../../agent/failback/config.js";
import { runFileSync } from "../../../agent/failback/files.js";
import { tempDir } from "../helpers.js";

let dir: { path: string; remove: () => Promise<void> };
const silent = { log: () => undefined };
const hook = (name: string, argv: string[], timeoutMs?: number) => FileSyncHook.parse({ name, argv, timeoutMs });

beforeEach(async () => {
  dir = await tempDir("xivo-ha-failback-files-");
});
afterEach(async () => {
  await dir.remove();
});

describe("file-sync hooks", () => {
  it("a real copy of the slave's voicemail spool reaches the master's", async () => {
    // The slave's spool: a message left during the failover.
    const src = join(dir.path, "slave/voicemail/default/1001/INBOX");
    await mkdir(src, { recursive: true });
    await writeFile(join(src, "msg0000.txt"), "[message]\ncallerid=Alice <1002>\n");
    await writeFile(join(src, "msg0000.wav"), Buffer.from([0x52, 0x49, 0x46, 0x46, 0, 1, 2]));
    const dst = join(dir.path, "master/voicemail");
    await mkdir(dst, { recursive: true });

    const events: unknown[] = [];
    const [r] = await runFileSync([hook("voicemail", ["cp", "-r", `${join(dir.path, "slave/voicemail")}/.`, dst])], {
      log: (e, f) => events.push([e, f.name, f.ok]),
    });

    expect(r).toMatchObject({ name: "voicemail", ok: true });
    expect(r!.detail).toMatch(/^exit 0 in \d+ ms$/);
    expect(await readdir(join(dst, "default/1001/INBOX"))).toEqual(["msg0000.txt", "msg0000.wav"]);
    expect(await readFile(join(dst, "default/1001/INBOX/msg0000.txt"), "utf8")).toContain("Alice");
    expect(events).toEqual([["failback.file", "voicemail", true]]);
  });

  it("reports a failing hook with its exit code and output, and still runs the next one", async () => {
    const marker = join(dir.path, "second-ran");
    const results = await runFileSync(
      [hook("recordings", ["cp", "-r", join(dir.path, "no-such-dir"), dir.path]), hook("after", ["touch", marker])],
      silent,
    );
    expect(results[0]).toMatchObject({ name: "recordings", ok: false });
    expect(results[0]!.detail).toMatch(/^exit 1: .*no-such-dir.*No such file/);
    expect(results[1]).toMatchObject({ name: "after", ok: true });
    await expect(readFile(marker)).resolves.toBeDefined();
  });

  it("kills a hanging hook at its timeout, with the children it started", async () => {
    const pidFile = join(dir.path, "pid");
    // A hook that starts a grandchild and hangs, like an rsync stuck on a dead link.
    // A shell, not node: it starts in milliseconds even on a loaded machine, well within the timeout.
    const script = `sleep 300 & echo $! > "$1"; wait`;
    const [r] = await runFileSync([hook("stuck", ["sh", "-c", script, "sh", pidFile], 1000)], silent);
    expect(r).toMatchObject({ name: "stuck", ok: false });
    expect(r!.detail).toMatch(/^timed out after 1000 ms \(killed\)/);
    const grandchild = Number(await readFile(pidFile, "utf8"));
    expect(await alive(grandchild)).toBe(false); // killed with its group
  });

  it("names a hook that cannot start, and runs none once aborted", async () => {
    const [r] = await runFileSync([hook("missing", ["/nonexistent/rsync", "-a"])], silent);
    expect(r).toMatchObject({ ok: false, detail: "cannot start /nonexistent/rsync: spawn /nonexistent/rsync ENOENT" });

    const stop = new AbortController();
    stop.abort();
    const marker = join(dir.path, "ran");
    expect(await runFileSync([hook("x", ["touch", marker])], { ...silent, signal: stop.signal })).toEqual([
      { name: "x", ok: false, detail: "not run: aborted" },
    ]);
    await expect(readFile(marker)).rejects.toThrow();
  });
});

/** Running, as opposed to gone or a zombie nobody reaped yet (pid 1 in a container may not). */
async function alive(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => null);
  return stat !== null && !/^\d+ \(.*\) Z/.test(stat);
}

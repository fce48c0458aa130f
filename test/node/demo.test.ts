import { execFile } from "node:child_process";
import { readdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { freePort } from "../../scripts/edge.js";

/**
 * `npm start -- --scenario master-crash`, as a user runs it: the whole pair comes up, the master
 * crashes, the slave takes over and answers SIP, the master returns, the slave hands back after
 * the hold-down with the calls it took copied back, the signed notifications of both arrive at a
 * local receiver that checks them, and everything it started is gone after.
 */
const run = promisify(execFile);

describe("npm start", () => {
  it("runs the master-crash scenario end to end and cleans up after itself", async () => {
    const before = new Set(await demoDirs());
    const port = await freePort();
    const { stdout } = await run(
      process.execPath,
      ["--import", "tsx", "scripts/dev.ts", "--scenario", "master-crash", "--port", String(port)],
      {
        cwd: new URL("../..", import.meta.url).pathname,
        timeout: 240_000,
        env: { ...process.env, CI: "true" },
      },
    );
    expect(stdout).toMatch(/✔ failover complete in [\d.]+ s: the slave answers SIP/);
    expect(stdout).toMatch(/copy-back to the master: call_log \+3/);
    expect(stdout).toMatch(/✔ failback complete in [\d.]+ s/);
    // Complete means standby and replicating again: a pass after the copy-back, none cut short.
    const after = stdout.slice(stdout.indexOf("copy-back to the master"));
    expect(after.indexOf("agent    replication: ")).toBeGreaterThan(-1);
    expect(after.indexOf("agent    replication: ")).toBeLessThan(after.indexOf("✔ failback complete"));
    expect(stdout).not.toMatch(/FAILED/);
    expect(stdout).toMatch(/edge {5}verdict up → down/);
    // The notifications of the failover and of the failback, signed, checked on arrival.
    expect(stdout).toMatch(/notify {3}failover\.done {2}signature verified, attempt 1/);
    expect(stdout).toMatch(/notify {3}failback\.done {2}signature verified, attempt 1/);
    expect(stdout).not.toMatch(/SIGNATURE FAILED/);
    expect(stdout).not.toMatch(/once issue/);
    expect((await demoDirs()).filter((d) => !before.has(d))).toEqual([]);
    // Nothing left listening where the worker was.
    await expect(fetch(`http://127.0.0.1:${port}/v1/ping`)).rejects.toThrow();
  }, 300_000);
});

async function demoDirs(): Promise<string[]> {
  return (await readdir(tmpdir())).filter((d) => d.startsWith("xivo-ha-demo-"));
}

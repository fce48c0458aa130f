// Fencing a failing master before the slave takes over: real fence commands (child processes
// with their own children), and the keeper pass that runs them before starting real services.
import { readFile, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { parseConfig } from "../../agent/config.js";
import { FenceConfig, fenceReason, runFence } from "../../agent/fence.js";
import { pidAlive } from "../../agent/proc.js";
import { readState, writeState } from "../../agent/state.js";
import { describeFence } from "../../protocol/report.js";
import { useServiceDir } from "./helpers.js";
import { keeperIn } from "./keeper-harness.js";

const dir = useServiceDir();
const node = (code: string) => [process.execPath, "-e", code];
/** Appends a line to fence.log, then exits 0, or 1 while `<dir>/fence-fails` exists. */
const recorder = () =>
  node(
    `const fs = require("fs"); fs.appendFileSync(${JSON.stringify(join(dir.path, "fence.log"))}, "fence\\n");` +
      `console.log("stopping asterisk on the master"); process.exit(fs.existsSync(${JSON.stringify(join(dir.path, "fence-fails"))}) ? 1 : 0)`,
  );
const fenceRuns = async () =>
  (await readFile(join(dir.path, "fence.log"), "utf8").catch(() => "")).split("\n").filter(Boolean).length;
const servicesRunning = async () => {
  const pid = Number(await readFile(join(dir.path, "telephony.pid"), "utf8").catch(() => "0"));
  return pid > 0 && pidAlive(pid);
};
const fence = (over: Record<string, unknown> = {}) => FenceConfig.parse({ commands: [recorder()], ...over });

async function waitDead(pid: number): Promise<boolean> {
  for (const end = performance.now() + 10_000; performance.now() < end; await sleep(20))
    if (!pidAlive(pid)) return true;
  return false;
}

describe("fence config", () => {
  it("defaults to hold, 30 s per command, no fencing of a down master", () => {
    expect(FenceConfig.parse({ commands: [["true"]] })).toEqual({
      commands: [["true"]],
      timeoutMs: 30_000,
      onFailure: "hold",
      onDown: false,
      retryEveryMs: 30_000,
    });
  });

  it("names the field that is wrong, in the agent's config", () => {
    const base = {
      clusterId: "c1",
      worker: { url: "https://w.example", token: "t", publicKeys: [{ kty: "OKP", crv: "Ed25519", x: "A".repeat(43) }] },
      master: { host: "10.0.0.10" },
      services: { preset: "xivo" },
    };
    expect(parseConfig(base, {}, "x.json").fence).toBeUndefined();
    const bad = (fence: unknown) => {
      try {
        parseConfig({ ...base, fence }, {}, "x.json");
      } catch (e) {
        return (e as Error).message;
      }
      return "accepted";
    };
    expect(bad({ commands: [] })).toMatch(/fence\.commands: /);
    expect(bad({ commands: ["ssh master systemctl stop asterisk"] })).toMatch(/fence\.commands\[0\]: /);
    expect(bad({ commands: [["ssh"]], onFailure: "ignore" })).toMatch(/fence\.onFailure: /);
    expect(bad({ commands: [["ssh"]], shell: true })).toMatch(/fence: .*shell/);
    expect(parseConfig({ ...base, fence: { commands: [["ssh", "master"]] } }, {}, "x.json").fence?.onFailure).toBe(
      "hold",
    );
  });
});

describe("fenceReason", () => {
  const cfg = FenceConfig.parse({ commands: [["true"]] });
  it("fences a degraded master, seen so by the edge or the LAN", () => {
    expect(fenceReason(cfg, { row: "failover", external: "degraded", lan: "down" })).toMatch(/degraded/);
    expect(fenceReason(cfg, { row: "failover", external: "down", lan: "degraded" })).toMatch(/degraded/);
    expect(fenceReason(cfg, { row: "failover-edge-only", external: "degraded", lan: "unknown" })).toMatch(/degraded/);
  });
  it("leaves a down master alone unless onDown, and never fences a planned switchover or without config", () => {
    expect(fenceReason(cfg, { row: "failover", external: "down", lan: "down" })).toBeNull();
    expect(fenceReason(fence({ onDown: true }), { row: "failover", external: "down", lan: "down" })).toMatch(/onDown/);
    expect(fenceReason(cfg, { row: "planned-switchover", external: "degraded", lan: "degraded" })).toBeNull();
    expect(fenceReason(undefined, { row: "failover", external: "degraded", lan: "degraded" })).toBeNull();
  });
});

describe("runFence", () => {
  it("runs every command in order and reports each: exit code, duration, the end of its output", async () => {
    const f = await runFence(FenceConfig.parse({ commands: [recorder(), recorder()] }), "the master is degraded", 42);
    expect(f).toMatchObject({ at: 42, ok: true, outcome: "fenced", why: "the master is degraded" });
    expect(f.commands.map((c) => [c.command, c.ok, c.exitCode, c.timedOut])).toEqual([
      ["#1 node", true, 0, false],
      ["#2 node", true, 0, false],
    ]);
    expect(f.commands[0]!.output).toContain("stopping asterisk on the master");
    expect(await fenceRuns()).toBe(2);
    expect(describeFence(f)).toMatch(/^master fenced \(the master is degraded\): 2 command\(s\) ok in \d+\.\d s$/);
  });

  it("reports a failing command, runs the rest anyway, and says hold or proceed", async () => {
    const failing = node("console.error('x'.repeat(5000) + 'permission denied'); process.exit(3)");
    const held = await runFence(FenceConfig.parse({ commands: [failing, recorder()] }), "degraded");
    expect(held).toMatchObject({ ok: false, outcome: "held" });
    expect(held.commands.map((c) => [c.ok, c.exitCode])).toEqual([
      [false, 3],
      [true, 0],
    ]);
    expect(held.commands[0]!.output.length).toBe(300);
    expect(held.commands[0]!.output.endsWith("permission denied\n")).toBe(true);
    expect(describeFence(held)).toBe(
      "fencing the master FAILED (degraded): #1 node exited 3; holding as standby, services not started",
    );
    const missing = await runFence(
      FenceConfig.parse({ commands: [["/nonexistent/ipmitool", "chassis", "power", "off"]], onFailure: "proceed" }),
      "degraded",
    );
    expect(missing).toMatchObject({ ok: false, outcome: "proceeded" });
    expect(missing.commands[0]).toMatchObject({ command: "#1 ipmitool", exitCode: null });
    expect(missing.commands[0]!.spawnError).toMatch(/ENOENT/);
    expect(describeFence(missing)).toMatch(/#1 ipmitool could not start .*proceeding as configured/);
  });

  it("kills a command that hangs past its timeout, with the children it started", async () => {
    const pidFile = join(dir.path, "grandchild.pid");
    const hang = node(
      `const c = require("child_process").spawn("sleep", ["60"]); require("fs").writeFileSync(${JSON.stringify(pidFile)}, String(c.pid)); setInterval(() => {}, 1000)`,
    );
    const f = await runFence(FenceConfig.parse({ commands: [hang], timeoutMs: 1500 }), "degraded");
    expect(f.commands[0]).toMatchObject({ ok: false, timedOut: true });
    expect(f.commands[0]!.durationMs).toBeGreaterThanOrEqual(1400);
    expect(describeFence(f)).toMatch(/#1 node timed out after \d+ ms/);
    const grandchild = Number(await readFile(pidFile, "utf8"));
    expect(await waitDead(grandchild)).toBe(true);
  }, 20_000);
});

describe("keeper: fencing before failover", () => {
  const standby = () => writeState(dir.path, { v: 1, role: "standby", since: 1, lastAction: null });

  it("fences a degraded master, then starts the services; the fence is in lastAction and role.json", async () => {
    await standby();
    const { k, s } = keeperIn(dir.path, { fence: fence() });
    s.edge("degraded");
    s.setLan("degraded");
    const r = await k.tick();
    expect(r).toMatchObject({ did: "failover", ok: true, role: "active" });
    expect(await fenceRuns()).toBe(1);
    expect(await servicesRunning()).toBe(true);
    expect(k.lastAction).toMatchObject({ kind: "failover", ok: true, fence: { ok: true, outcome: "fenced" } });
    expect(k.lastAction!.reason).toMatch(/fail over; master fenced \(the master is degraded/);
    expect(k.fenceAlert).toBeNull();
    const saved = await readState(dir.path);
    expect(saved.ok && saved.state.lastAction?.fence?.commands[0]?.output).toContain("stopping asterisk");
  });

  it("hold: a failed fence keeps the slave standby with an alert, retries at a bounded rate, then fails over", async () => {
    await standby();
    await writeFile(join(dir.path, "fence-fails"), "");
    const { k, s, clock } = keeperIn(dir.path, { fence: fence({ retryEveryMs: 30_000 }) });
    s.edge("degraded");
    s.setLan("degraded");
    const r = await k.tick();
    expect(r).toMatchObject({ did: "fence", ok: false, role: "standby" });
    expect(await servicesRunning()).toBe(false);
    expect(k.fenceAlert).toMatch(/^fencing the master failed: fencing the master FAILED .*#1 node exited 1; holding/);
    expect(k.lastAction).toMatchObject({ kind: "failover", ok: false, fence: { outcome: "held" } });
    const recorded = k.lastAction;
    const saved = await readState(dir.path);
    expect(saved.ok && saved.state).toMatchObject({ role: "standby", lastAction: { kind: "failover", ok: false } });

    // Passes within the retry interval do not run the fence again.
    clock.advance(10_000);
    expect(await k.tick()).toMatchObject({ did: "nothing", ok: false, role: "standby" });
    expect(await fenceRuns()).toBe(1);
    // The next attempt fails again: the alert stays, the recorded failover is not renewed (one notification).
    clock.advance(20_000);
    expect(await k.tick()).toMatchObject({ did: "fence", ok: false });
    expect(await fenceRuns()).toBe(2);
    expect(k.lastAction).toEqual(recorded);
    // The admin fixes the fence: the next attempt succeeds and the slave takes over.
    await unlink(join(dir.path, "fence-fails"));
    clock.advance(30_000);
    expect(await k.tick()).toMatchObject({ did: "failover", ok: true, role: "active" });
    expect(await fenceRuns()).toBe(3);
    expect(await servicesRunning()).toBe(true);
    expect(k.fenceAlert).toBeNull();
  });

  it("hold: the alert ends when the master comes back", async () => {
    await standby();
    await writeFile(join(dir.path, "fence-fails"), "");
    const { k, s } = keeperIn(dir.path, { fence: fence() });
    s.edge("degraded");
    s.setLan("degraded");
    expect(await k.tick()).toMatchObject({ did: "fence" });
    expect(k.fenceAlert).not.toBeNull();
    s.edge("up", 120_000);
    s.setLan("up");
    await k.tick();
    expect(k.fenceAlert).toBeNull();
    expect(await servicesRunning()).toBe(false);
  });

  it("proceed: a failed fence still starts the services, with the alert and the failure in lastAction", async () => {
    await standby();
    await writeFile(join(dir.path, "fence-fails"), "");
    const { k, s } = keeperIn(dir.path, { fence: fence({ onFailure: "proceed" }) });
    s.edge("degraded");
    s.setLan("degraded");
    expect(await k.tick()).toMatchObject({ did: "failover", ok: true, role: "active" });
    expect(await servicesRunning()).toBe(true);
    expect(k.fenceAlert).toMatch(/proceeding as configured/);
    expect(k.lastAction).toMatchObject({ kind: "failover", ok: true, fence: { ok: false, outcome: "proceeded" } });
    expect(k.lastAction!.reason).toMatch(/fencing the master FAILED/);
    // Still active, the master still down: the alert stays until the slave is standby again.
    await k.tick();
    expect(k.fenceAlert).not.toBeNull();
  });

  it("a down master is not fenced without onDown, and is with it", async () => {
    await standby();
    const { k, s } = keeperIn(dir.path, { fence: fence() });
    s.edge("down");
    s.setLan("down");
    expect(await k.tick()).toMatchObject({ did: "failover", ok: true });
    expect(await fenceRuns()).toBe(0);
    expect(k.lastAction?.fence).toBeUndefined();

    await standby();
    const other = keeperIn(dir.path, { fence: fence({ onDown: true }) });
    other.s.edge("down");
    other.s.setLan("down");
    expect(await other.k.tick()).toMatchObject({ did: "failover", ok: true });
    expect(await fenceRuns()).toBe(1);
    expect(other.k.lastAction?.fence).toMatchObject({ ok: true, why: "the master is down (fence.onDown)" });
  });
});

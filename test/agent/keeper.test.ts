import { readFile } from "node:fs/promises";
import net from "node:net";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { KeeperConfig } from "../../agent/keeper.js";
import { acquireLock } from "../../agent/lock.js";
import type { Logger } from "../../agent/log.js";
import { pidAlive } from "../../agent/proc.js";
import { readSeq, readState, writeState } from "../../agent/state.js";
import { useServiceDir } from "./helpers.js";
import { fakeServices, keeperIn } from "./keeper-harness.js";

/**
 * The keeper pass with real service processes (fake-service.mjs stands in for asterisk) and a
 * real state file. The two signals are plain inputs here: the verdict client and the LAN
 * monitor have their own tests against real sockets.
 */
const dir = useServiceDir();
const services = () => fakeServices(dir.path);
const running = async () => {
  try {
    return pidAlive(Number(await readFile(join(dir.path, "telephony.pid"), "utf8")));
  } catch {
    return false;
  }
};
const calls = async () =>
  (await readFile(join(dir.path, "calls.log"), "utf8").catch(() => "")).trim().split("\n").filter(Boolean);

const keeper = (extra: Partial<KeeperConfig> = {}, log?: Logger) => keeperIn(dir.path, extra, log);

describe("keeper pass", () => {
  it("at boot, does nothing at all until a fresh verdict arrives — not even enforcement", async () => {
    await writeState(dir.path, { v: 1, role: "standby", since: 1, lastAction: null, lastSeq: null });
    const { k, s } = keeper();
    s.setLan("down");
    const r = await k.tick();
    expect(r).toMatchObject({ did: "nothing", decision: { row: "boot-no-verdict", action: "hold" } });
    expect(await calls()).toEqual([]);
  });

  it("fails over when edge and LAN agree the master is down: role written, services started", async () => {
    await writeState(dir.path, { v: 1, role: "standby", since: 1, lastAction: null, lastSeq: 7 });
    const { k, s } = keeper();
    s.edge("down");
    s.setLan("down");
    const r = await k.tick();
    expect(r).toMatchObject({ did: "failover", ok: true, role: "active", decision: { row: "failover" } });
    expect(await running()).toBe(true);
    const st = await readState(dir.path);
    expect(st.ok && st.state).toMatchObject({
      role: "active",
      lastAction: { kind: "failover", ok: true, reason: expect.stringContaining("fail over") },
    });
    // An older agent's floor in role.json moves to seq.json, which owns it; role writes drop it.
    expect(st.ok && st.state).not.toHaveProperty("lastSeq");
    expect(await readSeq(dir.path)).toMatchObject({ lastSeq: 7 });
  });

  it("does not fail over on an edge-only outage; alerts instead", async () => {
    await writeState(dir.path, { v: 1, role: "standby", since: 1, lastAction: null, lastSeq: null });
    const { k, s } = keeper();
    s.edge("down");
    s.setLan("up");
    const r = await k.tick();
    expect(r.decision).toMatchObject({ row: "master-wan-outage", alert: "master unreachable from the internet only" });
    expect(await running()).toBe(false);
  });

  it("fails back only after the hold-down, measured on the worker's clock plus time held", async () => {
    await writeState(dir.path, { v: 1, role: "active", since: 1, lastAction: null, lastSeq: null });
    const { k, s, clock } = keeper({ failbackHoldDownMs: 60_000 });
    s.setLan("up");
    s.edge("up", 50_000); // up for 50 s on the worker's clock
    expect((await k.tick()).decision.row).toBe("failback-hold-down");
    clock.advance(9_000);
    expect((await k.tick()).decision.row).toBe("failback-hold-down");
    clock.advance(1_000);
    const r = await k.tick();
    expect(r).toMatchObject({ did: "failback", ok: true, role: "standby" });
    expect(await running()).toBe(false);
  });

  it("planned maintenance: switches over at the window's start, on the worker's clock, stays active through it, fails back after it", async () => {
    await writeState(dir.path, { v: 1, role: "standby", since: 1, lastAction: null, lastSeq: null });
    const { k, s, clock } = keeper({ failbackHoldDownMs: 60_000 });
    s.setLan("up");
    // A scheduled window, 5 s after this verdict was issued, 30 s long; the master is up throughout.
    s.edge("up", 3_600_000, { from: 5_000, to: 35_000, reason: "kernel upgrade" });
    expect((await k.tick()).decision.row).toBe("standby-steady");
    clock.advance(5_000); // no new verdict: the window begins on the worker's clock all the same
    const r = await k.tick();
    expect(r).toMatchObject({
      did: "failover",
      ok: true,
      role: "active",
      decision: { row: "planned-switchover", reason: "planned switchover: kernel upgrade" },
    });
    expect(await running()).toBe(true);
    expect(k.lastAction).toMatchObject({ kind: "failover", ok: true, reason: "planned switchover: kernel upgrade" });
    clock.advance(29_999);
    expect((await k.tick()).decision.row).toBe("planned-stay-active");
    expect(await running()).toBe(true);
    clock.advance(1); // the window is over: the ordinary failback rules (the master has been up long enough)
    expect(await k.tick()).toMatchObject({ did: "failback", role: "standby", decision: { row: "failback" } });
    expect(await running()).toBe(false);
  });

  it("silence means hold: a stale verdict moves nothing, whatever the LAN says", async () => {
    await writeState(dir.path, { v: 1, role: "standby", since: 1, lastAction: null, lastSeq: null });
    const { k, s } = keeper();
    s.edge("up");
    await k.tick(); // booted
    s.stale();
    s.setLan("down");
    const r = await k.tick();
    expect(r.decision).toMatchObject({ row: "no-verdict", action: "hold" });
    expect(await running()).toBe(false);
  });

  it("re-enforces the role: a dead service on an active slave is started, a live one on a standby stopped", async () => {
    await writeState(dir.path, { v: 1, role: "active", since: 1, lastAction: null, lastSeq: null });
    const { k, s } = keeper();
    s.edge("down");
    s.setLan("down");
    const r = await k.tick();
    expect(r).toMatchObject({ did: "enforce", ok: true });
    expect(await running()).toBe(true);
    expect(k.lastAction).toMatchObject({ kind: "enforce", reason: expect.stringContaining("started again") });

    await writeState(dir.path, { v: 1, role: "standby", since: 1, lastAction: null, lastSeq: null });
    s.edge("up");
    s.setLan("up");
    expect(await k.tick()).toMatchObject({ did: "enforce", ok: true });
    expect(await running()).toBe(false);
  });

  it("alerts when the active slave's telephony runs but stops answering (two passes in a row), clears on the next answer", async () => {
    // The ready check aims at a TCP listener this test opens and closes: the "SIP stack".
    const stack = net.createServer((c) => c.destroy());
    await new Promise<void>((r) => stack.listen(0, "127.0.0.1", r));
    const port = (stack.address() as net.AddressInfo).port;
    const logs: string[] = [];
    const ready = {
      probe: { kind: "tcp" as const, name: "slave-sip", critical: false, port, timeoutMs: 300 },
      withinMs: 2_000,
      everyMs: 50,
    };
    await writeState(dir.path, { v: 1, role: "active", since: 1, lastAction: null, lastSeq: null });
    const { k, s } = keeper({ services: { ...services(), ready } }, (event) => void logs.push(event));
    s.edge("down");
    s.setLan("down");
    expect(await k.tick()).toMatchObject({ did: "enforce", ok: true }); // started, and it answered
    expect(await k.tick()).toMatchObject({ did: "nothing", ok: true });
    expect(k.telephonyAlert).toBeNull();

    await new Promise((r) => stack.close(r)); // hung or crashed stack, process still running
    expect(await k.tick()).toMatchObject({ did: "nothing", ok: false });
    expect(k.telephonyAlert).toBeNull(); // one miss is not an outage
    await k.tick();
    expect(k.telephonyAlert).toMatch(
      /^active slave's telephony not answering: services running, but slave-sip not answering/,
    );
    expect(logs.filter((e) => e === "telephony.failing")).toHaveLength(1);
    expect(await running()).toBe(true); // alerted, not restarted
    expect((await calls()).filter((c) => c.startsWith("start"))).toHaveLength(1);

    await new Promise<void>((r) => stack.listen(port, "127.0.0.1", r));
    await k.tick();
    expect(k.telephonyAlert).toBeNull();
    expect(logs).toContain("telephony.recovered");
    await new Promise((r) => stack.close(r));
  });

  it("an interrupted failover leaves its intent on disk; the next agent reconciles the services", async () => {
    // What a kill -9 between "role written" and "services started" leaves behind:
    await writeState(dir.path, {
      v: 1,
      role: "active",
      since: 1,
      lastAction: { kind: "failover", at: 1, ok: false, reason: "x (in progress)" },
      lastSeq: null,
    });
    const { k, s } = keeper();
    s.setLan("down");
    expect((await k.tick()).did).toBe("nothing"); // booting: waits for a verdict first
    s.edge("down");
    expect(await k.tick()).toMatchObject({ did: "enforce", role: "active", ok: true });
    expect(await running()).toBe(true);
  });

  it("skips a transition while another process holds the action lock, then acts once it is free", async () => {
    await writeState(dir.path, { v: 1, role: "standby", since: 1, lastAction: null, lastSeq: null });
    const { k, s } = keeper({ lockWaitMs: 0 });
    s.edge("down");
    s.setLan("down");
    const other = await acquireLock(join(dir.path, "action.lock"), {
      purpose: "manage-slave-services stop",
      waitMs: 0,
    });
    expect((await k.tick()).did).toBe("skipped-busy");
    expect(await running()).toBe(false);
    await other.release();
    expect((await k.tick()).did).toBe("failover");
  });

  it("a missing state file converges to standby when the master is up (first install)", async () => {
    const { k, s } = keeper();
    s.edge("up", 3_600_000);
    s.setLan("up");
    const r = await k.tick();
    expect(r).toMatchObject({ did: "failback", role: "standby" });
    const st = await readState(dir.path);
    expect(st.ok && st.state.role).toBe("standby");
  });

  it("manual mode reports and alerts but never acts", async () => {
    await writeState(dir.path, { v: 1, role: "standby", since: 1, lastAction: null, lastSeq: null });
    const { k, s } = keeper({ mode: "manual" });
    s.edge("down");
    s.setLan("down");
    const r = await k.tick();
    expect(r.decision).toMatchObject({ row: "manual-would-failover", action: "hold" });
    expect(await running()).toBe(false);
  });
});

// LanMonitor: rounds of real LAN probes against loopback targets, through the shared hysteresis.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LanConfig } from "../../../agent/lan/config.js";
import { LanMonitor } from "../../../agent/lan/monitor.js";
import { startPostgres } from "../../support/postgres.js";
import { createTarget, type Target } from "../../support/target-client.js";
import { startTargetControl, type TargetControl } from "../../support/targets.js";

const HOST = "127.0.0.1";

let control: TargetControl;
let sipUdp: Target;
let sipTcp: Target;
let web: Target;
beforeAll(async () => {
  control = await startTargetControl();
  [sipUdp, sipTcp, web] = await Promise.all([
    createTarget(control.port, "sip-udp"),
    createTarget(control.port, "sip-tcp"),
    createTarget(control.port, "tcp"),
  ]);
});
afterAll(async () => {
  await control.close();
});

/** Like DEFAULT_LAN, on the targets' ports: SIP over UDP is the critical one. */
function config(): LanConfig {
  return LanConfig.parse({
    fall: 3,
    rise: 2,
    probes: [
      { kind: "sip", name: "sip-udp", transport: "udp", port: sipUdp.port, timeoutMs: 5000 },
      { kind: "sip", name: "sip-tcp", transport: "tcp", port: sipTcp.port, critical: false, timeoutMs: 5000 },
      { kind: "tcp", name: "web", port: web.port, timeoutMs: 5000 },
    ],
  });
}

async function setAll(mode: "ok" | "closed"): Promise<void> {
  await Promise.all([sipUdp.set(mode), sipTcp.set(mode), web.set(mode)]);
}

describe("LanMonitor", () => {
  it("follows fall 3 / rise 2 exactly through real probes", async () => {
    await setAll("ok");
    const lan = new LanMonitor(config(), HOST, 1000);
    expect(lan.view).toMatchObject({ state: "unknown", rounds: 0, probes: [], lastRound: null, at: 1000 });
    let t = 1000;
    const round = async () => (await lan.round((t += 5000))).state;

    // Startup: unknown until `rise` good rounds.
    expect(await round()).toBe("unknown");
    expect(lan.view.lastRound).toEqual({ class: "up", reason: "all 3 probes answered" });
    expect(await round()).toBe("up");
    expect(lan.view).toMatchObject({ rounds: 2, since: t, at: t });
    expect(lan.view.reason).toMatch(/^up after 2 consecutive good rounds \(rise 2\)/);
    expect(lan.view.probes.map((p) => [p.name, p.kind, p.ok])).toEqual([
      ["sip-udp", "sip", true],
      ["sip-tcp", "sip", true],
      ["web", "tcp", true],
    ]);
    const upSince = t;

    // One lost round changes nothing, and the streak starts over after it.
    await sipUdp.set("closed");
    expect(await round()).toBe("up");
    expect(lan.view.lastRound?.class).toBe("degraded");
    await sipUdp.set("ok");
    expect(await round()).toBe("up");

    // Asterisk dead on a live host: degraded after exactly `fall` rounds.
    await sipUdp.set("closed");
    expect(await round()).toBe("up");
    expect(await round()).toBe("up");
    expect(lan.view.since).toBe(upSince);
    expect(await round()).toBe("degraded");
    expect(lan.view.since).toBe(t);
    expect(lan.view.reason).toContain(`sip-udp: port unreachable: nothing listens on UDP port ${sipUdp.port}`);
    const failed = lan.view.probes.find((p) => p.name === "sip-udp")!;
    expect(failed).toMatchObject({ ok: false, critical: true });

    // Nothing answers at all: down after `fall` rounds of it.
    await setAll("closed");
    expect(await round()).toBe("degraded");
    expect(await round()).toBe("degraded");
    expect(await round()).toBe("down");
    expect(lan.view.reason).toMatch(/^down after .*nothing answers/);

    // Back: `rise` good rounds, not one.
    await setAll("ok");
    expect(await round()).toBe("down");
    expect(await round()).toBe("up");
    expect(lan.view.rounds).toBe(12);
  });

  it("a failing non-critical probe keeps the master up", async () => {
    await setAll("ok");
    await web.set("closed");
    const lan = new LanMonitor({ ...config(), fall: 1, rise: 1 }, HOST);
    const view = await lan.round();
    expect(view.state).toBe("up");
    expect(view.lastRound?.reason).toBe("critical probes answered; non-critical failing (web: connection refused)");
    await web.set("ok");
  });

  it("shares a round in progress instead of probing twice", async () => {
    await setAll("ok");
    const lan = new LanMonitor(config(), HOST);
    const before = (await sipUdp.info()).connections;
    const [a, b] = await Promise.all([lan.round(), lan.round()]);
    expect(a).toBe(b);
    expect(a.rounds).toBe(1);
    expect((await sipUdp.info()).connections - before).toBe(1);
    expect((await lan.round()).rounds).toBe(2);
  });

  it("reports a PostgreSQL login as its own kind", async () => {
    await setAll("ok");
    const pg = await startPostgres({ database: "asterisk", user: "asterisk", password: "monitor-pw" });
    try {
      const cfg = LanConfig.parse({
        fall: 1,
        rise: 1,
        probes: [
          { kind: "sip", name: "sip", port: sipUdp.port },
          { kind: "postgres", name: "db", port: pg.port, password: "monitor-pw" },
        ],
      });
      const view = await new LanMonitor(cfg, HOST).round();
      expect(view.state).toBe("up");
      expect(view.probes[1]).toMatchObject({ name: "db", kind: "postgres", ok: true, critical: false });
      expect(JSON.stringify(view)).not.toContain("monitor-pw");
    } finally {
      await pg.stop();
    }
  });
});

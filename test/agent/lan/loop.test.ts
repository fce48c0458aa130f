// LanLoop: the LAN rounds' own beat, with real probes of loopback targets: confirmation rounds
// come at confirmIntervalMs after a disagreeing round, the normal interval otherwise.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LanConfig } from "../../../agent/lan/config.js";
import { LanLoop } from "../../../agent/lan/loop.js";
import { LanMonitor, type LanView, nextLanDelayMs } from "../../../agent/lan/monitor.js";
import { createTarget, type Target } from "../../support/target-client.js";
import { startTargetControl, type TargetControl } from "../../support/targets.js";

const HOST = "127.0.0.1";

let control: TargetControl;
let sipUdp: Target;
let web: Target;
beforeAll(async () => {
  control = await startTargetControl();
  [sipUdp, web] = await Promise.all([createTarget(control.port, "sip-udp"), createTarget(control.port, "tcp")]);
});
afterAll(async () => {
  await control.close();
});

const view = (state: LanView["state"], last: LanView["state"] | null): LanView => ({
  state,
  reason: "",
  at: 0,
  since: 0,
  probes: [],
  rounds: last ? 1 : 0,
  lastRound: last === null || last === "unknown" ? null : { class: last, reason: "" },
});

describe("nextLanDelayMs", () => {
  const cfg = { intervalMs: 5000, confirmIntervalMs: 1000 };
  it("keeps the normal beat while rounds agree with the view", () => {
    expect(nextLanDelayMs(cfg, view("up", "up"))).toBe(5000);
    expect(nextLanDelayMs(cfg, view("down", "down"))).toBe(5000);
    expect(nextLanDelayMs(cfg, view("degraded", "degraded"))).toBe(5000);
  });
  it("confirms soon after a disagreeing round, and while the view has no opinion", () => {
    expect(nextLanDelayMs(cfg, view("up", "down"))).toBe(1000);
    expect(nextLanDelayMs(cfg, view("up", "degraded"))).toBe(1000);
    expect(nextLanDelayMs(cfg, view("down", "up"))).toBe(1000);
    expect(nextLanDelayMs(cfg, view("degraded", "down"))).toBe(1000);
    expect(nextLanDelayMs(cfg, view("unknown", "up"))).toBe(1000);
    expect(nextLanDelayMs(cfg, view("unknown", null))).toBe(1000);
  });
});

describe("LanLoop", () => {
  it("sees a master that stops answering down after `fall` rounds spaced by confirmIntervalMs, not intervalMs", async () => {
    await Promise.all([sipUdp.set("ok"), web.set("ok")]);
    const cfg = LanConfig.parse({
      intervalMs: 2500,
      confirmIntervalMs: 150,
      fall: 3,
      rise: 2,
      probes: [
        { kind: "sip", name: "sip-udp", transport: "udp", port: sipUdp.port, timeoutMs: 1000 },
        { kind: "tcp", name: "web", port: web.port, timeoutMs: 1000 },
      ],
    });
    const lan = new LanMonitor(cfg, HOST);
    const rounds: { t: number; cls: string; state: string }[] = [];
    const loop = new LanLoop(lan, cfg, (_before, v) =>
      rounds.push({ t: performance.now(), cls: v.lastRound!.class, state: v.state }),
    );
    const waitFor = async (what: string, ok: () => boolean, ms = 15_000) => {
      const end = performance.now() + ms;
      while (!ok()) {
        if (performance.now() > end) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(rounds)}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    try {
      loop.start();
      // Startup: `rise` rounds, the second a confirmation (the view had no opinion).
      await waitFor("up", () => lan.view.state === "up");
      expect(rounds.map((r) => r.state)).toEqual(["unknown", "up"]);
      expect(rounds[1]!.t - rounds[0]!.t).toBeLessThan(1500);
      // An agreeing round: the normal beat.
      await waitFor("a third round", () => rounds.length >= 3);
      expect(rounds[2]!.t - rounds[1]!.t).toBeGreaterThanOrEqual(2400);

      await Promise.all([sipUdp.set("closed"), web.set("closed")]);
      const firstBad = rounds.length;
      await waitFor("down", () => lan.view.state === "down");
      const bad = rounds.slice(firstBad);
      expect(bad.map((r) => [r.cls, r.state])).toEqual([
        ["down", "up"],
        ["down", "up"],
        ["down", "down"],
      ]);
      // Confirmations: 150 ms plus the round itself (closed ports answer at once), far below 2.5 s.
      for (let i = 1; i < bad.length; i++) expect(bad[i]!.t - bad[i - 1]!.t).toBeLessThan(1200);

      // Down and agreeing: back to the normal beat.
      const n = rounds.length;
      await waitFor("the round after down", () => rounds.length > n);
      expect(rounds[n]!.t - rounds[n - 1]!.t).toBeGreaterThanOrEqual(2400);
      expect(rounds[n]!.state).toBe("down");
    } finally {
      loop.stop();
    }
  }, 30_000);

  it("runs a round at once when asked, shares one in flight, and restarts the beat after it", async () => {
    await Promise.all([sipUdp.set("ok"), web.set("ok")]);
    const cfg = LanConfig.parse({
      intervalMs: 60_000,
      confirmIntervalMs: 60_000,
      probes: [{ kind: "tcp", name: "web", port: web.port, timeoutMs: 1000 }],
    });
    const lan = new LanMonitor(cfg, HOST);
    let count = 0;
    const loop = new LanLoop(lan, cfg, () => void count++);
    try {
      await Promise.all([loop.now(), loop.now()]);
      expect(count).toBe(1);
      await loop.now();
      expect(count).toBe(2);
      loop.stop();
      await loop.now();
      expect(count).toBe(2);
    } finally {
      loop.stop();
    }
  });
});

import { describe, expect, it } from "vitest";
import { agentEvents, quiet, role, servicePid, startAgent, until, usePairs, type Pair } from "../support/pair.js";

/**
 * Faults injected into the running pair (the cases about what is failing where): the
 * worker under wrangler dev, the agent as its own process, a loopback master. Edge interval 2 s,
 * fall 2; LAN every 0.5 s, fall 2.
 */
const { pair } = usePairs();

async function settled(p: Pair) {
  startAgent(p);
  await until("standby", async () => (await role(p)) === "standby", p);
}
const alerts = (p: Pair) =>
  agentEvents(p, "decision")
    .map((d) => d.alert)
    .filter(Boolean);

describe("faults: where the master fails", () => {
  it("1. master host dead: failover within fall × interval plus margin", async () => {
    const p = await pair();
    await settled(p);
    const t0 = Date.now();
    for (const t of p.master) await t.set("closed");
    await until("failover", async () => (await role(p)) === "active" && (await servicePid(p.dir)), p);
    // Detection needs 2 rounds of 2 s; delivery, decision and the start command come on top.
    expect(Date.now() - t0).toBeLessThan(2 * 2000 + 2000 + 10_000);
  });

  it("2. master reachable on the LAN but not from the edge: no failover, alert", async () => {
    const p = await pair({ separate: true });
    await settled(p);
    for (const t of p.edge) await t.set("closed");
    await until("the WAN alert", async () => alerts(p).includes("master unreachable from the internet only"), p);
    await quiet(3000);
    expect(await role(p)).toBe("standby");
    expect(await servicePid(p.dir)).toBeNull();
  });

  it("3. the slave's LAN view fails while the edge sees the master up: no failover, alert", async () => {
    const p = await pair({ separate: true });
    await settled(p);
    for (const t of p.lan) await t.set("closed");
    await until("the LAN alert", async () => alerts(p).includes("slave's LAN view of the master is failing"), p);
    await quiet(3000);
    expect(await role(p)).toBe("standby");
    expect(await servicePid(p.dir)).toBeNull();
  });

  it("4. telephony crashed on a live master (SIP gone, HTTP up): degraded → failover", async () => {
    const p = await pair();
    await settled(p);
    for (const t of p.master.filter((t) => t.kind !== "http")) await t.set("closed");
    await until("failover", async () => (await role(p)) === "active" && (await servicePid(p.dir)), p);
    expect(p.output()).toMatch(/"event":"verdict.accepted"[^\n]*"state":"degraded"/);
  });

  it("5. telephony hung (SIP accepts, never answers): failover", async () => {
    const p = await pair();
    await settled(p);
    for (const t of p.master.filter((t) => t.kind !== "http")) await t.set("silent");
    await until("failover", async () => (await role(p)) === "active" && (await servicePid(p.dir)), p);
  });

  it("7. a flapping master (down and up every 1.5 s for 20 s): no oscillation", async () => {
    const p = await pair();
    await settled(p);
    let switches = 0;
    let last = await role(p);
    const deadline = Date.now() + 20_000;
    for (let down = true; Date.now() < deadline; down = !down) {
      for (const t of p.master) await t.set(down ? "closed" : "ok");
      await quiet(1500);
      const now = await role(p);
      if (now !== last) switches++;
      last = now;
    }
    for (const t of p.master) await t.set("ok");
    // At most one failover and one failback; with fall 2 against a 1.5 s flap, none at all.
    expect(switches).toBeLessThanOrEqual(2);
  });
});

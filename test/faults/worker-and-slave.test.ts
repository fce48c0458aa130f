import { describe, expect, it } from "vitest";
import { AGENT_TOKEN, role, servicePid, startAgent, until, usePairs } from "../support/pair.js";
import { startRelay } from "../support/relay.js";

/**
 * Faults of the links and of the slave itself, injected into the running pair: the worker
 * unreachable from the agent (a relay on the agent → worker link, closed), and the slave
 * rebooting while active (the agent restarted with its services still running).
 */
const { lab, pair } = usePairs();

describe("faults: the worker and the slave", () => {
  it("6. worker unreachable from the agent, master dead too: the agent holds, alerts, does nothing", async () => {
    const relay = await startRelay(Number(new URL(lab().edge.url).port));
    try {
      const p = await pair({
        extra: {
          worker: { url: `http://127.0.0.1:${relay.port}`, token: AGENT_TOKEN, publicKeys: [lab().secrets.publicJwk], pollIntervalMs: 1000, maxVerdictAgeMs: 4000 },
        },
      });
      startAgent(p);
      await until("standby", async () => (await role(p)) === "standby", p);
      await relay.close(); // the agent's link to the worker is gone
      for (const t of p.master) await t.set("closed"); // and the LAN sees the master dead
      await until("the no-verdict alert", async () => /"alert":"no fresh verdict from the worker"/.test(p.output()), p);
      expect(await role(p)).toBe("standby");
      expect(await servicePid(p.dir)).toBeNull();
    } finally {
      await relay.close().catch(() => {});
    }
  });

  it("9. slave reboot while active: the restarted agent waits for a fresh verdict, then keeps the role; releases it once the master is back", async () => {
    const p = await pair();
    const first = startAgent(p);
    await until("standby", async () => (await role(p)) === "standby", p);
    for (const t of p.master) await t.set("closed");
    await until("failover", async () => (await role(p)) === "active" && (await servicePid(p.dir)), p);
    const before = await servicePid(p.dir);
    // The reboot: the agent goes, the telephony it started stays up (as after a crash of the agent alone).
    first.kill("SIGKILL");
    await new Promise((r) => first.once("exit", r));
    startAgent(p);
    // Whether or not a pass ran before the first verdict came in ("boot-no-verdict"), the first
    // decision on a verdict keeps the role, and nothing touches the running services.
    await until("a decision on a fresh verdict", async () => /"row":"active-master-down"/.test(p.output()), p);
    expect(p.output()).not.toMatch(/"event":"(failover|failback)\.start"|"event":"enforce"/);
    expect(await servicePid(p.dir)).toBe(before); // kept, not restarted
    for (const t of p.master) await t.set("ok");
    await until("failback", async () => (await role(p)) === "standby" && !(await servicePid(p.dir)), p);
  });
});

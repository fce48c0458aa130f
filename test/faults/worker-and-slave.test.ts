import { readFile, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { freePort } from "../../scripts/edge.js";
import { AGENT_TOKEN, role, servicePid, startAgent, until, usePairs } from "../support/pair.js";
import { startRelay } from "../support/relay.js";

/**
 * Faults of the links and of the slave itself, injected into the running pair: the worker
 * unreachable from the agent (a relay on the agent → worker link, closed), the slave rebooting
 * while active (the agent restarted with its services still running), and the slave's own
 * telephony hanging while it carries the calls.
 */
const { lab, pair } = usePairs();

describe("faults: the worker and the slave", () => {
  it("6. worker unreachable from the agent, master dead too: the agent holds, alerts, does nothing", async () => {
    const relay = await startRelay(Number(new URL(lab().edge.url).port));
    try {
      const p = await pair({
        extra: {
          worker: {
            url: `http://127.0.0.1:${relay.port}`,
            token: AGENT_TOKEN,
            publicKeys: [lab().secrets.publicJwk],
            pollIntervalMs: 1000,
            maxVerdictAgeMs: 4000,
          },
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

  it("the active slave's telephony hangs (runs, stops answering SIP): alerted to the worker, not restarted; cleared when it answers", async () => {
    // The demo's stand-in Asterisk answers SIP OPTIONS over UDP, so `services.ready` has something to ask.
    const TELEPHONY = fileURLToPath(new URL("../../scripts/demo/telephony.mjs", import.meta.url));
    const port = await freePort();
    const p = await pair();
    const svc = (verb: string) => ({
      argv: [process.execPath, TELEPHONY, verb, p.dir, String(port)],
      timeoutMs: 10_000,
    });
    const config = JSON.parse(await readFile(p.configPath, "utf8"));
    config.services = {
      ...config.services,
      start: [svc("start")],
      stop: [svc("stop")],
      status: [svc("status")],
      ready: { probe: { kind: "sip", name: "slave-sip", transport: "udp", port, timeoutMs: 300 }, withinMs: 10_000 },
    };
    await writeFile(p.configPath, JSON.stringify(config));
    startAgent(p);
    await until("standby", async () => (await role(p)) === "standby", p);
    for (const t of p.master) await t.set("closed");
    await until(
      "failover",
      async () =>
        (await role(p)) === "active" && /"event":"failover.done"[^\n]*"readyProbe":"slave-sip"/.test(p.output()),
      p,
    );
    const pid = (await servicePid(p.dir))!;
    const history = async () => {
      const res = await fetch(`${lab().edge.url}/v1/clusters/${p.id}/events?limit=500`, {
        headers: { authorization: `Bearer ${AGENT_TOKEN}` },
      });
      return ((await res.json()) as { events: { type: string; reason: string }[] }).events;
    };
    process.kill(pid, "SIGSTOP");
    try {
      const failing = await until(
        "telephony.failing at the worker",
        async () => (await history()).find((e) => e.type === "telephony.failing") ?? null,
        p,
      );
      expect(failing.reason).toMatch(
        /^active slave's telephony not answering: services running, but slave-sip not answering/,
      );
      expect(await servicePid(p.dir)).toBe(pid); // not restarted behind the operator's back
      expect(await role(p)).toBe("active");
    } finally {
      process.kill(pid, "SIGCONT");
    }
    await until(
      "telephony.recovered at the worker",
      async () => (await history()).some((e) => e.type === "telephony.recovered"),
      p,
    );
  });
});

import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { readState } from "../../agent/state.js";
import { freePort } from "../../scripts/edge.js";
import {
  kamailioMissing,
  kamailioServices,
  SLAVE_HOST,
  sipOptionsUdp,
  startKamailio,
  stopKamailio,
} from "../support/kamailio.js";
import { agentEvents, AGENT_TOKEN, role, startAgent, stop, until, usePairs, type Pair } from "../support/pair.js";
import { createTarget } from "../support/target-client.js";

/**
 * Interop with a real SIP server (issue 6): Debian's Kamailio, configured to answer OPTIONS, is
 * (a) the master's SIP service, probed by the worker over TCP and by the agent over UDP, and
 * (b) the telephony the agent starts and stops on the slave (127.0.0.2 here, a second loopback
 * address). A failover is complete only when the slave's Kamailio answers OPTIONS: the agent's
 * `services.ready` check, and this test's own OPTIONS request.
 */
const missing = kamailioMissing();
const { lab, cleanups } = usePairs();

interface ClusterView {
  verdict: { lastRound: { probes: { name: string; ok: boolean; detail: string }[] } | null } | null;
  agent: { report: { lan: { probes: { name: string; ok: boolean; detail: string }[] } } } | null;
}

describe.skipIf(missing)(`interop with Kamailio${missing ? ` (skipped: ${missing})` : ""}`, () => {
  it("the edge (TCP) and the LAN (UDP) probe a real Kamailio master; the slave's Kamailio answers before failover counts as done", async () => {
    const dir = await mkdtemp(join(tmpdir(), "xivo-ha-kamailio-"));
    const masterPort = await freePort();
    const slavePort = await freePort();
    const master = await startKamailio(join(dir, "master"), "127.0.0.1", masterPort);
    cleanups.push(async () => {
      await master.stop().catch(() => {});
      await master.crash().catch(() => {});
      await stopKamailio(join(dir, "slave"), SLAVE_HOST, slavePort);
      await rm(dir, { recursive: true, force: true });
    });
    expect(await sipOptionsUdp(SLAVE_HOST, slavePort)).toBeNull(); // nothing on the slave yet

    // The master's web interface stays a stand-in: the point is SIP.
    const web = await createTarget(lab().control.port, "http");
    const id = `kamailio-${crypto.randomUUID().slice(0, 8)}`;
    const put = await lab().admin("PUT", `/v1/clusters/${id}`, {
      master: { host: "127.0.0.1" },
      probes: [
        { kind: "http", name: "web", scheme: "http", port: web.port, timeoutMs: 1000 },
        { kind: "sip", name: "sip", transport: "tcp", port: masterPort, timeoutMs: 1000 },
      ],
      intervalSec: 2,
      fall: 2,
      rise: 1,
      agentToken: AGENT_TOKEN,
    });
    expect(put.status).toBe(201);

    const configPath = join(dir, "agent.json");
    await writeFile(
      configPath,
      JSON.stringify({
        clusterId: id,
        worker: {
          url: lab().edge.url,
          token: AGENT_TOKEN,
          publicKeys: [lab().secrets.publicJwk],
          pollIntervalMs: 1000,
          maxVerdictAgeMs: 10_000,
        },
        master: { host: "127.0.0.1" },
        failbackHoldDownMs: 3000,
        stateDir: join(dir, "state"),
        services: {
          ...kamailioServices(join(dir, "slave"), SLAVE_HOST, slavePort, { timeoutMs: 1000, withinMs: 20_000 }),
          retry: { retries: 1, backoffMs: 200, maxBackoffMs: 200 },
        },
        lan: {
          probes: [{ kind: "sip", name: "sip-udp", transport: "udp", port: masterPort, timeoutMs: 1000 }],
          intervalMs: 500,
          fall: 2,
          rise: 1,
        },
        http: { host: "127.0.0.1", port: 0 },
        loop: { intervalMs: 200, enforceEveryMs: 1000, reportEveryMs: 1000 },
      }),
    );
    const p: Pair = { id, dir, configPath, master: [], edge: [], lan: [], output: () => "" };
    cleanups.push(async () => p.agent && (await stop(p.agent)));
    startAgent(p);
    await until("standby", async () => (await role(p)) === "standby", p);

    // Both sides heard Kamailio itself answer: the edge over TCP, the agent over UDP.
    const view = await until(
      "the edge's and the agent's probes of Kamailio",
      async () => {
        const v = (await (await lab().admin("GET", `/v1/clusters/${id}`)).json()) as ClusterView;
        return v.verdict?.lastRound && v.agent ? v : null;
      },
      p,
    );
    expect(view.verdict!.lastRound!.probes.find((x) => x.name === "sip")).toMatchObject({
      ok: true,
      detail: "SIP/2.0 200 OK",
    });
    expect(view.agent!.report.lan.probes.find((x) => x.name === "sip-udp")).toMatchObject({ ok: true });
    expect(view.agent!.report.lan.probes.find((x) => x.name === "sip-udp")!.detail).toMatch(/200 OK/);
    expect(await sipOptionsUdp(SLAVE_HOST, slavePort)).toBeNull();

    // The master's Kamailio dies (HTTP still up): the edge says degraded, the LAN confirms, the
    // agent starts the slave's Kamailio and declares the failover done once it answers.
    await master.crash();
    const done = await until("failover done", async () => agentEvents(p, "failover.done")[0] ?? null, p);
    expect(done).toMatchObject({ role: "active", readyProbe: "slave-sip", readyAfterMs: expect.any(Number) });
    expect(await sipOptionsUdp(SLAVE_HOST, slavePort)).toBe(200);
    const state = await readState(join(dir, "state"));
    expect(state.ok && state.state.lastAction).toMatchObject({ kind: "failover", ok: true });
    expect(p.output()).toMatch(/"event":"verdict.accepted"[^\n]*"state":"degraded"/);

    // The master's Kamailio comes back: failback stops the slave's.
    await startKamailio(join(dir, "master"), "127.0.0.1", masterPort);
    await until(
      "failback",
      async () => (await role(p)) === "standby" && (await sipOptionsUdp(SLAVE_HOST, slavePort, 500)) === null,
      p,
    );
    expect(await readFile(join(dir, "slave", "kamailio.log"), "utf8")).toMatch(/Thank you for flying kamailio/); // stopped cleanly, not killed
  });
});

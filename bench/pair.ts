import { type ChildProcess, spawn } from "node:child_process";
import { mkdir, open, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { readState } from "../agent/state.js";
import type { EdgeLab } from "../test/support/edge-lab.js";
import { kamailioServices, SLAVE_HOST, sipOptionsUdp, stopKamailio } from "../test/support/kamailio.js";
import { until } from "../test/support/until.js";

/**
 * The benches' HA pair on loopback: one cluster on the lab's worker, and the agent's esbuild
 * bundle (what a slave runs) whose services start and stop a Kamailio on 127.0.0.2. Used by
 * bench:failover and bench:false-alarms.
 */

export interface PairOptions {
  lab: EdgeLab;
  /** The agent bundle (scripts/build-agent.ts). */
  bundle: string;
  /** This pair's own directory (agent config, state, log, the slave's Kamailio). */
  dir: string;
  clusterId: string;
  token: string;
  /** The master's Kamailio port on 127.0.0.1, which the agent probes over UDP on the LAN. */
  masterPort: number;
  slavePort: number;
  /** The cluster's config as PUT, less master and agentToken (probes, interval, fall, rise, ...). */
  edge: Record<string, unknown>;
  /** The agent's `lan` config, less its probes. */
  lan: Record<string, unknown> & { timeoutMs: number };
  holdDownMs: number;
}

/** A config field the running worker or agent does not know yet (a strict schema refused it). */
export class UnsupportedSetting extends Error {}

export interface Pair {
  role(): Promise<string | null>;
  /** When the agent decided a failover (its log), this machine's clock, ascending. */
  failoverDecisions(): Promise<number[]>;
  /** When the verdict turned down (the worker's history), worker clock, ascending. */
  verdictDowns(): Promise<number[]>;
  slaveAnswers(): Promise<boolean>;
  stop(): Promise<void>;
}

export async function startPair(o: PairOptions): Promise<Pair> {
  const put = await o.lab.admin("PUT", `/v1/clusters/${o.clusterId}`, {
    master: { host: "127.0.0.1" },
    ...o.edge,
    agentToken: o.token,
  });
  if (!put.ok) {
    const text = await put.text();
    if (put.status === 400 && /unrecognized|unknown/i.test(text))
      throw new UnsupportedSetting(`the worker refuses the cluster config (not merged yet?): ${text}`);
    throw new Error(`configuring cluster ${o.clusterId}: HTTP ${put.status} ${text}`);
  }
  const slaveDir = join(o.dir, "slave");
  const { timeoutMs, ...lan } = o.lan;
  const config = {
    clusterId: o.clusterId,
    worker: {
      url: o.lab.edge.url,
      token: o.token,
      publicKeys: [o.lab.secrets.publicJwk],
      push: true,
      pollIntervalMs: 5000,
      maxVerdictAgeMs: 30_000,
    },
    master: { host: "127.0.0.1" },
    failbackHoldDownMs: o.holdDownMs,
    stateDir: join(o.dir, "state"),
    services: kamailioServices(slaveDir, SLAVE_HOST, o.slavePort, { timeoutMs: 500, withinMs: 30_000, everyMs: 50 }),
    lan: { probes: [{ kind: "sip", name: "sip-udp", transport: "udp", port: o.masterPort, timeoutMs }], ...lan },
    http: { host: "127.0.0.1", port: 0 },
  };
  await mkdir(o.dir, { recursive: true });
  const configPath = join(o.dir, "agent.json");
  await writeFile(configPath, JSON.stringify(config));
  const logPath = join(o.dir, "agent.log");
  const errPath = join(o.dir, "agent.err");
  const log = await open(logPath, "a");
  const err = await open(errPath, "a");
  const agent: ChildProcess = spawn(process.execPath, [o.bundle, "run", "--config", configPath], {
    stdio: ["ignore", log.fd, err.fd],
  });
  agent.once("exit", () => void Promise.all([log.close(), err.close()]));

  const stateDir = join(o.dir, "state");
  const pair: Pair = {
    async role() {
      const s = await readState(stateDir);
      return s.ok ? s.state.role : null;
    },
    async failoverDecisions() {
      return (await readFile(logPath, "utf8"))
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { ts: string; event: string; action?: string })
        .filter((e) => e.event === "decision" && e.action === "failover")
        .map((e) => Date.parse(e.ts));
    },
    async verdictDowns() {
      const downs: number[] = [];
      for (let since = 0; ; ) {
        const res = await fetch(`${o.lab.edge.url}/v1/clusters/${o.clusterId}/events?since=${since}&limit=500`, {
          headers: { authorization: `Bearer ${o.token}` },
        });
        if (!res.ok) throw new Error(`reading the worker's history: HTTP ${res.status} ${await res.text()}`);
        const page = (await res.json()) as {
          events: { id: number; type: string; at: number; data: { to?: string } }[];
        };
        for (const e of page.events) if (e.type === "verdict.changed" && e.data.to === "down") downs.push(e.at);
        if (page.events.length < 500) return downs.sort((a, b) => a - b);
        since = page.events.at(-1)!.id;
      }
    },
    slaveAnswers: async () => (await sipOptionsUdp(SLAVE_HOST, o.slavePort, 200)) === 200,
    async stop() {
      if (agent.exitCode === null) {
        agent.kill("SIGTERM");
        await new Promise((r) => agent.once("exit", r));
      }
      await stopKamailio(slaveDir, SLAVE_HOST, o.slavePort).catch(() => {});
    },
  };

  // First install: the agent settles as standby once the master has been seen up.
  try {
    await until(
      "standby",
      async () => {
        if (agent.exitCode !== null) {
          const text = (await readFile(errPath, "utf8")).trim();
          const msg = `the agent exited (${agent.exitCode}): ${text.slice(0, 1000)}`;
          throw /unrecognized|unknown/i.test(text) ? new UnsupportedSetting(msg) : new Error(msg);
        }
        return (await pair.role()) === "standby";
      },
      { timeoutMs: 120_000 },
    );
  } catch (e) {
    await pair.stop();
    throw e;
  }
  return pair;
}

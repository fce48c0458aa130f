import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, expect } from "vitest";
import { pidAlive } from "../../agent/proc.js";
import { readState } from "../../agent/state.js";
import { startEdgeLab, type EdgeLab } from "./edge-lab.js";
import { createTarget, type Target } from "./target-client.js";
import { until as waitUntil } from "./until.js";

/**
 * The pair for real, for the cross-process tests: the worker under wrangler dev probing a
 * master stand-in on loopback (HTTP and SIP over TCP and UDP), and the agent as its own process
 * (the `xivo-ha-agent` bin) with service commands that start and stop a real stand-in for
 * Asterisk. `usePairs()` registers the lab's setup and each test's cleanup.
 */
const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const BIN = join(ROOT, "bin", "xivo-ha-agent.mjs");
const FAKE = join(ROOT, "test", "agent", "fixtures", "fake-service.mjs");
/**
 * The agent as started by `startAgent`: the bin under this Node, or, when the environment names
 * them, a bundle under another Node (test/node/node-versions.test.ts runs the pair test so).
 */
const AGENT = process.env.XIVO_HA_TEST_AGENT_NODE
  ? [process.env.XIVO_HA_TEST_AGENT_NODE, process.env.XIVO_HA_TEST_AGENT_BUNDLE ?? BIN]
  : [process.execPath, BIN];
export const AGENT_TOKEN = "agent-token-ha-pair-0123456789abcdef01";

export interface Pair {
  id: string;
  dir: string;
  configPath: string;
  /** Every listener of the master stand-in. */
  master: Target[];
  /** What the edge probes and what the slave probes; the same listeners unless `separate`. */
  edge: Target[];
  lan: Target[];
  agent?: ChildProcess;
  output: () => string;
}

export interface PairOptions {
  push?: boolean;
  publicKeys?: unknown[];
  extra?: Record<string, unknown>;
  /** Give the edge listeners of its own, so the internet and the LAN can fail apart. */
  separate?: boolean;
}

export function usePairs() {
  let lab: EdgeLab;
  const cleanups: (() => Promise<void>)[] = [];
  beforeAll(async () => (lab = await startEdgeLab()), 90_000);
  afterAll(() => lab?.stop());
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function pair(opts: PairOptions = {}): Promise<Pair> {
    const id = `pair-${crypto.randomUUID().slice(0, 8)}`;
    const dir = await mkdtemp(join(tmpdir(), "xivo-ha-pair-"));
    const make = (kind: "http" | "sip-tcp" | "sip-udp") => createTarget(lab.control.port, kind);
    const [web, sipTcp, sipUdp] = await Promise.all([make("http"), make("sip-tcp"), make("sip-udp")]);
    const [edgeWeb, edgeSip] = opts.separate ? await Promise.all([make("http"), make("sip-tcp")]) : [web, sipTcp];
    const put = await lab.admin("PUT", `/v1/clusters/${id}`, {
      master: { host: "127.0.0.1" },
      probes: [
        { kind: "http", name: "web", scheme: "http", port: edgeWeb.port, timeoutMs: 1000 },
        { kind: "sip", name: "sip", port: edgeSip.port, timeoutMs: 1000 },
      ],
      intervalSec: 2,
      fall: 2,
      rise: 1,
      agentToken: AGENT_TOKEN,
    });
    expect(put.status).toBe(201);
    const fake = (verb: string) => ({ argv: [process.execPath, FAKE, verb, dir], timeoutMs: 15_000 });
    const config = {
      clusterId: id,
      worker: {
        url: lab.edge.url,
        token: AGENT_TOKEN,
        publicKeys: opts.publicKeys ?? [lab.secrets.publicJwk],
        pollIntervalMs: 1000,
        maxVerdictAgeMs: 10_000,
        push: opts.push ?? true,
      },
      master: { host: "127.0.0.1" },
      failbackHoldDownMs: 3000,
      noVerdictAlertMs: 5000,
      stateDir: join(dir, "state"),
      services: {
        start: [fake("start")],
        stop: [fake("stop")],
        status: [fake("status")],
        retry: { retries: 1, backoffMs: 200, maxBackoffMs: 200 },
      },
      lan: {
        probes: [
          { kind: "sip", name: "sip-udp", transport: "udp", port: sipUdp.port, timeoutMs: 1000 },
          { kind: "sip", name: "sip-tcp", transport: "tcp", port: sipTcp.port, timeoutMs: 1000 },
          { kind: "tcp", name: "web", port: web.port, timeoutMs: 1000 },
        ],
        intervalMs: 500,
        fall: 2,
        rise: 1,
      },
      http: { host: "127.0.0.1", port: 0 },
      loop: { intervalMs: 200, enforceEveryMs: 1000, reportEveryMs: 5000 },
      ...opts.extra,
    };
    const configPath = join(dir, "agent.json");
    await writeFile(configPath, JSON.stringify(config, null, 2));
    const lanTargets = [web, sipTcp, sipUdp];
    const edgeTargets = opts.separate ? [edgeWeb, edgeSip] : [web, sipTcp];
    const p: Pair = {
      id,
      dir,
      configPath,
      master: [...new Set([...lanTargets, ...edgeTargets])],
      edge: edgeTargets,
      lan: lanTargets,
      output: () => "",
    };
    cleanups.push(async () => {
      if (p.agent) await stop(p.agent);
      await killService(dir);
      await rm(dir, { recursive: true, force: true });
    });
    return p;
  }

  return { lab: () => lab, pair, cleanups };
}

/** `env` adds to (or overrides) the inherited environment, e.g. LD_PRELOAD for a skewed clock. */
export function startAgent(p: Pair, args: string[] = ["run"], env?: NodeJS.ProcessEnv): ChildProcess {
  const child = spawn(AGENT[0]!, [...AGENT.slice(1), ...args, "--config", p.configPath], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...env },
  });
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (out += d));
  p.agent = child;
  p.output = () => out;
  return child;
}

export async function stop(child: ChildProcess) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const done = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  const t = setTimeout(() => child.kill("SIGKILL"), 5000);
  await done;
  clearTimeout(t);
}

export async function servicePid(dir: string): Promise<number | null> {
  try {
    const pid = Number(await readFile(join(dir, "telephony.pid"), "utf8"));
    return pid && pidAlive(pid) ? pid : null;
  } catch {
    return null;
  }
}

async function killService(dir: string) {
  const pid = await servicePid(dir);
  if (pid) process.kill(pid, "SIGKILL");
}

/** `until` with the agent's recent output in the error, for a failing pair test to explain itself. */
export const until = <T>(what: string, fn: () => Promise<T | null | false>, p: Pair, timeoutMs = 45_000): Promise<T> =>
  waitUntil(what, fn, { timeoutMs, everyMs: 200, detail: () => `agent output:\n${p.output().slice(-3000)}` });

/** The agent's JSON log lines of one event, parsed; `from` skips what was logged before a mark. */
/** Lets the pair run `ms` with nothing injected: for the faults where nothing must happen. */
export const quiet = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export const agentEvents = (p: Pair, event: string, from = 0) =>
  p
    .output()
    .slice(from)
    .split("\n")
    .slice(0, -1) // the last piece may be a line still being written
    .filter((l) => l.includes(`"event":"${event}"`))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

export const role = async (p: Pair) => {
  const s = await readState(join(p.dir, "state"));
  return s.ok ? s.state.role : "unknown";
};

export const BIN_PATH = BIN;

import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, mkdtemp, open, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildAgent } from "../scripts/build-agent.js";
import { startEdgeLab } from "../test/support/edge-lab.js";
import { createTarget } from "../test/support/target-client.js";
import { until } from "../test/support/until.js";
import { pct, sleep } from "./stats.js";

/**
 * npm run bench:agent — how fast a verdict change reaches the slave's services, push against
 * poll side by side (two agents, two clusters, the same master stand-in, the same run), and
 * what the daemon costs when nothing happens (RSS and CPU over 60 s).
 *
 * Latency = the time the first start command ran (it stamps the clock) minus the time the
 * worker completed the round that changed the verdict (from the worker's history). Both clocks
 * are this machine's. The agents run with requireLanConfirmation off and a 1 ms hold-down so
 * that only delivery and decision are measured, not the LAN hysteresis.
 */
const ROOT = fileURLToPath(new URL("..", import.meta.url));
const SOURCE_BIN = join(ROOT, "bin", "xivo-ha-agent.mjs");
const FAKE = join(ROOT, "test", "agent", "fixtures", "fake-service.mjs");
const TRANSITIONS = Number(process.env.BENCH_TRANSITIONS ?? 50);
const IDLE_SECONDS = Number(process.env.BENCH_IDLE_SECONDS ?? 60);
const TOKEN = "bench-agent-token-0123456789abcdef0123";

const lab = await startEdgeLab();
const { edge, control, secrets } = lab;
const work = await mkdtemp(join(tmpdir(), "xivo-ha-bench-agent-"));
const agents: ChildProcess[] = [];
// What a slave runs: the bundle (the systemd unit's ExecStart), built fresh for this run.
const BUNDLE = await buildAgent(join(work, "xivo-ha-agent.mjs"));

interface Lane {
  name: string;
  id: string;
  dir: string;
  starts: () => Promise<number[]>;
  stops: () => Promise<number>;
}

async function lane(name: string, push: boolean, sipPort: number, bin = BUNDLE): Promise<Lane> {
  const id = `bench-${name}`;
  const dir = join(work, name);
  const res = await fetch(`${edge.url}/v1/clusters/${id}`, {
    method: "PUT",
    headers: { authorization: `Bearer ${secrets.adminToken}`, "content-type": "application/json" },
    body: JSON.stringify({
      master: { host: "127.0.0.1" },
      probes: [{ kind: "sip", name: "sip", port: sipPort, timeoutMs: 1000 }],
      intervalSec: 2,
      fall: 1,
      rise: 1,
      agentToken: TOKEN,
    }),
  });
  if (!res.ok) throw new Error(`configure ${id}: HTTP ${res.status}`);
  const startLog = join(dir, "starts.log");
  const stopLog = join(dir, "stops.log");
  const stamp = (file: string) => ({ argv: ["sh", "-c", `date +%s%3N >> ${file}`], timeoutMs: 5000 });
  const fake = (verb: string) => ({ argv: [process.execPath, FAKE, verb, dir], timeoutMs: 15_000 });
  const config = {
    clusterId: id,
    worker: {
      url: edge.url,
      token: TOKEN,
      publicKeys: [secrets.publicJwk],
      push,
      pollIntervalMs: 5000,
      maxVerdictAgeMs: 30_000,
    },
    master: { host: "127.0.0.1" },
    requireLanConfirmation: false,
    failbackHoldDownMs: 1,
    stateDir: join(dir, "state"),
    services: {
      start: [stamp(startLog), fake("start")],
      stop: [fake("stop"), stamp(stopLog)],
      status: [fake("status")],
    },
    lan: { probes: [{ kind: "tcp", name: "sip", port: sipPort, timeoutMs: 1000 }] },
    http: { host: "127.0.0.1", port: 0 },
    loop: { intervalMs: 1000, enforceEveryMs: 600_000, reportEveryMs: 15_000 },
  };
  await spawnAgent(dir, config, bin);
  const lines = async (f: string) =>
    (await readFile(f, "utf8").catch(() => "")).trim().split("\n").filter(Boolean).map(Number);
  return { name, id, dir, starts: () => lines(startLog), stops: async () => (await lines(stopLog)).length };
}

async function spawnAgent(dir: string, config: unknown, bin: string): Promise<ChildProcess> {
  await mkdir(dir, { recursive: true });
  const path = join(dir, "agent.json");
  await writeFile(path, JSON.stringify(config));
  // The agent's JSON log goes to <dir>/agent.log, for a look when a run misbehaves.
  const log = await open(join(dir, "agent.log"), "a");
  const child = spawn(process.execPath, [bin, "run", "--config", path], { stdio: ["ignore", log.fd, "inherit"] });
  child.once("exit", () => void log.close());
  agents.push(child);
  return child;
}

async function downChanges(id: string): Promise<number[]> {
  const res = await fetch(`${edge.url}/v1/clusters/${id}/events?limit=500`, {
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  const page = (await res.json()) as { events: { type: string; at: number; data: { to?: string } }[] };
  return page.events.filter((e) => e.type === "verdict.changed" && e.data.to === "down").map((e) => e.at);
}

/** Resident memory and CPU ticks (utime + stime) of a process, from /proc. */
async function rssAndCpu(pid: number) {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const stat = (await readFile(`/proc/${pid}/stat`, "utf8")).split(") ")[1]!.split(" ");
  return { rssKb: Number(/VmRSS:\s+(\d+)/.exec(status)![1]), ticks: Number(stat[11]) + Number(stat[12]) };
}

try {
  const sip = await createTarget(control.port, "sip-tcp");
  const lanes = await Promise.all([lane("push", true, sip.port), lane("poll", false, sip.port)]);
  // Settle: both agents standby (first install converges to standby while the master is up).
  await sleep(6000);
  // The first-install failback already stopped (and stamped) once: count from here.
  const baseStops = await Promise.all(lanes.map((l) => l.stops()));
  console.log(`\n${TRANSITIONS} failovers per channel, worker interval 2 s (fall 1, rise 1), agent poll interval 5 s`);
  for (let i = 1; i <= TRANSITIONS; i++) {
    await sip.set("closed");
    await until(`failover ${i}`, async () =>
      (await Promise.all(lanes.map(async (l) => (await l.starts()).length >= i))).every(Boolean),
    );
    await sip.set("ok");
    await until(`failback ${i}`, async () =>
      (await Promise.all(lanes.map(async (l, n) => (await l.stops()) >= baseStops[n]! + i))).every(Boolean),
    );
    if (i % 10 === 0) process.stdout.write(`  ${i} done\n`);
  }
  console.log("\nchannel   transitions   p50 ms   p90 ms   p99 ms   max ms   (verdict change → first start command)");
  const results: Record<string, number> = {};
  for (const l of lanes) {
    const changes = await downChanges(l.id);
    const starts = await l.starts();
    const lat = starts.slice(0, TRANSITIONS).map((s, i) => s - changes[i]!);
    results[l.name] = pct(lat, 99);
    console.log(
      `${l.name.padEnd(9)} ${String(lat.length).padStart(11)} ${[50, 90, 99].map((p) => String(pct(lat, p)).padStart(8)).join(" ")} ${String(Math.max(...lat)).padStart(8)}`,
    );
  }
  console.log(`push p99 ${results.push} ms (goal <= 500 ms: ${results.push! <= 500 ? "met" : "NOT met"})`);

  // Idle: two daemons side by side, standby, master up, nothing to do but verdicts, LAN rounds
  // and reports: the bundle a slave runs, and the same code under the TypeScript loader.
  for (const a of agents.splice(0)) a.kill("SIGTERM");
  await sleep(1500);
  const idle = {
    bundle: await lane("idle-bundle", true, sip.port),
    "tsx (bin/)": await lane("idle-tsx", true, sip.port, SOURCE_BIN),
  };
  const pids = agents.map((a) => a.pid!);
  await sleep(10_000); // past start-up
  const hz = 100; // USER_HZ on Linux
  const first = await Promise.all(pids.map(rssAndCpu));
  const samples: number[][] = first.map((f) => [f.rssKb]);
  for (let s = 0; s < IDLE_SECONDS; s += 5) {
    await sleep(5000);
    (await Promise.all(pids.map(rssAndCpu))).forEach((r, i) => samples[i]!.push(r.rssKb));
  }
  const last = await Promise.all(pids.map(rssAndCpu));
  console.log(`\nidle daemon over ${IDLE_SECONDS} s (push, worker every 2 s, LAN every 5 s)`);
  console.log("form          RSS max MB   RSS median MB   CPU % of one core");
  Object.keys(idle).forEach((form, i) => {
    const cpu = ((last[i]!.ticks - first[i]!.ticks) / hz / IDLE_SECONDS) * 100;
    const max = Math.max(...samples[i]!) / 1024;
    console.log(
      `${form.padEnd(13)} ${max.toFixed(1).padStart(10)} ${(pct(samples[i]!, 50) / 1024).toFixed(1).padStart(15)} ${cpu.toFixed(2).padStart(19)}`,
    );
    if (form === "bundle") console.log(`              idle RSS goal <= 80 MB: ${max <= 80 ? "met" : "NOT met"}`);
  });
} finally {
  for (const a of agents) a.kill("SIGTERM");
  await sleep(1000);
  await lab.stop();
  if (process.env.BENCH_KEEP) console.log(`kept ${work}`);
  else await rm(work, { recursive: true, force: true });
}

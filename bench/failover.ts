import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, open, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { readState } from "../agent/state.js";
import { buildAgent } from "../scripts/build-agent.js";
import { freePort } from "../scripts/edge.js";
import { startEdgeLab } from "../test/support/edge-lab.js";
import {
  KAMAILIO_SERVICE,
  kamailioInstalled,
  sipOptionsUdp,
  startKamailio,
  type Kamailio,
} from "../test/support/kamailio.js";
import { createTarget } from "../test/support/target-client.js";
import { until } from "../test/support/until.js";
import { median, pct, sleep } from "./stats.js";

/**
 * npm run bench:failover — the whole pair on loopback, the master killed and brought back over
 * and over: how long until the slave answers SIP, split into its parts, next to the floor that
 * the settings allow and to XiVO's own loop on the same kills.
 *
 *   master     Kamailio on 127.0.0.1 (SIP over UDP and TCP) + an HTTP stand-in for the web UI
 *   worker     wrangler dev, interval 5 s, fall 3, rise 2, probing HTTP and SIP over TCP
 *   agent      the esbuild bundle (what a slave runs), push, LAN SIP over UDP every 1 s (fall 2)
 *   slave      Kamailio on 127.0.0.2, started and stopped by the agent's service commands
 *
 * Per failover: kill = this process kills every master listener at once (Kamailio SIGKILL'd);
 * verdict = the worker round that turned the verdict down (worker history); decision = the
 * agent's log line deciding the failover; answering = this process's first 200 to an OPTIONS
 * sent every 50 ms to the slave. All clocks are this machine's.
 */
const CYCLES = Number(process.env.BENCH_CYCLES ?? 10);
const INTERVAL_S = 5;
const FALL = 3;
const RISE = 2;
const HOLD_DOWN_MS = 5000;
const TOKEN = "bench-failover-token-0123456789abcdef0";
const SLAVE_HOST = "127.0.0.2";
const run = promisify(execFile);

async function ensureKamailio(): Promise<void> {
  if (kamailioInstalled()) return;
  if (process.getuid?.() !== 0)
    throw new Error("bench:failover needs Debian's kamailio: apt-get install -y kamailio (as root)");
  console.log("installing kamailio (Debian) …");
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  await run("apt-get", ["update", "-qq"], { env, maxBuffer: 64 << 20 });
  await run("apt-get", ["install", "-y", "-qq", "--no-install-recommends", "kamailio"], { env, maxBuffer: 64 << 20 });
}

/** From `start` to the first answer, for the service alone: the "start time" of the floor. */
async function startTime(dir: string, port: number): Promise<number> {
  const args = [dir, SLAVE_HOST, String(port)];
  const t0 = Date.now();
  await run(KAMAILIO_SERVICE, ["start", ...args]);
  await until("Kamailio answering", async () => (await sipOptionsUdp(SLAVE_HOST, port, 200)) === 200, {
    timeoutMs: 30_000,
    everyMs: 10,
  });
  const ms = Date.now() - t0;
  await run(KAMAILIO_SERVICE, ["stop", ...args]);
  return ms;
}

/**
 * XiVO's loop on the same fault, by arithmetic: cron starts xivo-check-master-status at the next
 * whole minute (a kill lands at a uniformly random point of it: quantile q waits q × 60 s);
 * `ping -c 3 -i 10` to a dead host sends at 0, 10 and 20 s, then waits iputils' 10 s linger for
 * a reply that never comes (30 s); then xivo-manage-slave-services starts the services.
 */
const xivoLoop = (q: number, start: number) => q * 60_000 + 30_000 + start;

await ensureKamailio();
const lab = await startEdgeLab();
const work = await mkdtemp(join(tmpdir(), "xivo-ha-bench-failover-"));
let agent: ChildProcess | undefined;
let master: Kamailio | undefined;
const slaveDir = join(work, "slave");
const slavePort = await freePort();
try {
  const bundle = await buildAgent(join(work, "xivo-ha-agent.mjs"));
  const starts: number[] = [];
  for (let i = 0; i < 5; i++) starts.push(await startTime(join(work, "start-time"), await freePort()));
  const start = median(starts);

  const masterPort = await freePort();
  master = await startKamailio(join(work, "master"), "127.0.0.1", masterPort);
  const web = await createTarget(lab.control.port, "http");
  const id = "bench-failover";
  const put = await lab.admin("PUT", `/v1/clusters/${id}`, {
    master: { host: "127.0.0.1" },
    probes: [
      { kind: "http", name: "web", scheme: "http", port: web.port, timeoutMs: 2000 },
      { kind: "sip", name: "sip", port: masterPort, timeoutMs: 2000 },
    ],
    intervalSec: INTERVAL_S,
    fall: FALL,
    rise: RISE,
    agentToken: TOKEN,
  });
  if (!put.ok) throw new Error(`configuring the cluster: HTTP ${put.status} ${await put.text()}`);

  const service = (verb: string) => ({
    argv: [KAMAILIO_SERVICE, verb, slaveDir, SLAVE_HOST, String(slavePort)],
    timeoutMs: 15_000,
  });
  const config = {
    clusterId: id,
    worker: {
      url: lab.edge.url,
      token: TOKEN,
      publicKeys: [lab.secrets.publicJwk],
      push: true,
      pollIntervalMs: 5000,
      maxVerdictAgeMs: 30_000,
    },
    master: { host: "127.0.0.1" },
    failbackHoldDownMs: HOLD_DOWN_MS,
    stateDir: join(work, "state"),
    services: {
      start: [service("start")],
      stop: [service("stop")],
      status: [service("status")],
      ready: {
        probe: { kind: "sip", name: "slave-sip", transport: "udp", host: SLAVE_HOST, port: slavePort, timeoutMs: 500 },
        withinMs: 30_000,
        everyMs: 50,
      },
    },
    lan: {
      probes: [{ kind: "sip", name: "sip-udp", transport: "udp", port: masterPort, timeoutMs: 1000 }],
      intervalMs: 1000,
      fall: 2,
      rise: 2,
    },
    http: { host: "127.0.0.1", port: 0 },
  };
  await writeFile(join(work, "agent.json"), JSON.stringify(config));
  const logPath = join(work, "agent.log");
  const log = await open(logPath, "a");
  agent = spawn(process.execPath, [bundle, "run", "--config", join(work, "agent.json")], {
    stdio: ["ignore", log.fd, "inherit"],
  });
  agent.once("exit", () => void log.close());
  const agentEvents = async () =>
    (await readFile(logPath, "utf8"))
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { ts: string; event: string; action?: string; role?: string });
  const role = async () => {
    const s = await readState(join(work, "state"));
    return s.ok ? s.state.role : null;
  };
  const verdictDowns = async () => {
    const res = await fetch(`${lab.edge.url}/v1/clusters/${id}/events?limit=500`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    if (!res.ok) throw new Error(`reading the worker's history: HTTP ${res.status} ${await res.text()}`);
    const page = (await res.json()) as { events: { type: string; at: number; data: { to?: string } }[] };
    return page.events
      .filter((e) => e.type === "verdict.changed" && e.data.to === "down")
      .map((e) => e.at)
      .sort((a, b) => a - b);
  };

  // First install: the agent settles as standby once the master has been seen up.
  await until("standby", async () => (await role()) === "standby", { timeoutMs: 120_000 });
  console.log(
    `\n${CYCLES} failovers and failbacks: worker interval ${INTERVAL_S} s, fall ${FALL}, rise ${RISE}, push; ` +
      `agent LAN SIP/UDP every 1 s (fall 2), hold-down ${HOLD_DOWN_MS / 1000} s; master and slave: ${(await run("kamailio", ["-v"], { env: { PATH: `${process.env.PATH}:/usr/sbin` } })).stdout.split("\n")[0]}`,
  );

  const rows: { detection: number; delivery: number; action: number; total: number }[] = [];
  const failbacks: number[] = [];
  for (let i = 1; i <= CYCLES; i++) {
    // A kill lands anywhere in the worker's round: a random phase, not one the loop happens to favour.
    await sleep(Math.random() * INTERVAL_S * 1000);
    const decisionsBefore = (await agentEvents()).filter(
      (e) => e.event === "decision" && e.action === "failover",
    ).length;
    const kill = Date.now();
    await Promise.all([master.crash(), web.set("closed")]);
    const answering = await until(
      `failover ${i}`,
      async () => ((await sipOptionsUdp(SLAVE_HOST, slavePort, 200)) === 200 ? Date.now() : null),
      { timeoutMs: 120_000 },
    );
    const verdict = await until(
      "the verdict change",
      async () => (await verdictDowns()).find((t) => t >= kill - 1000) ?? null,
      { timeoutMs: 120_000 },
    );
    const decision = Date.parse(
      (
        await until(
          "the decision",
          async () =>
            (await agentEvents()).filter((e) => e.event === "decision" && e.action === "failover")[decisionsBefore] ??
            null,
          { timeoutMs: 120_000 },
        )
      ).ts,
    );
    rows.push({
      detection: verdict - kill,
      delivery: decision - verdict,
      action: answering - decision,
      total: answering - kill,
    });

    const back = Date.now();
    master = await startKamailio(join(work, "master"), "127.0.0.1", masterPort);
    await web.set("ok");
    await until(
      `failback ${i}`,
      async () => (await role()) === "standby" && (await sipOptionsUdp(SLAVE_HOST, slavePort, 200)) === null,
      { timeoutMs: 120_000, everyMs: 100 },
    );
    failbacks.push(Date.now() - back);
    const r = rows.at(-1)!;
    console.log(
      `  ${String(i).padStart(2)}  failover ${(r.total / 1000).toFixed(2)} s (detection ${(r.detection / 1000).toFixed(2)}, delivery ${r.delivery} ms, action ${r.action} ms)   failback ${(failbacks.at(-1)! / 1000).toFixed(1)} s`,
    );
  }

  const s = (ms: number) => (ms / 1000).toFixed(2).padStart(7);
  const line = (name: string, xs: number[], what: string) =>
    console.log(`${name.padEnd(12)}${s(median(xs))}${s(pct(xs, 90))}   ${what}`);
  console.log(`\nfailover    median    p90  (s)`);
  line(
    "detection",
    rows.map((r) => r.detection),
    "master killed → worker round that turns the verdict down",
  );
  line(
    "delivery",
    rows.map((r) => r.delivery),
    "verdict → the agent decides (push, signature, LAN confirmation)",
  );
  line(
    "action",
    rows.map((r) => r.action),
    "decision → the slave's Kamailio answers OPTIONS",
  );
  line(
    "total",
    rows.map((r) => r.total),
    "master killed → the slave answers",
  );
  const floor = FALL * INTERVAL_S * 1000 + start;
  const total = median(rows.map((r) => r.total));
  const xivo = xivoLoop(0.5, start);
  console.log(
    `floor       ${s(floor)}          fall × interval (${FALL} × ${INTERVAL_S} s) + start time (Kamailio start → first answer, median of ${starts.length}: ${start} ms)`,
  );
  console.log(
    `XiVO loop   ${s(xivo)}${s(xivoLoop(0.9, start))}   by arithmetic: wait for the cron minute + ping -c 3 -i 10 (30 s on a dead host) + start time`,
  );
  line(
    "failback",
    failbacks,
    `master back → the slave's Kamailio stopped (rise ${RISE} × ${INTERVAL_S} s, hold-down ${HOLD_DOWN_MS / 1000} s)`,
  );
  const goal = (ok: boolean) => (ok ? "met" : "NOT met");
  console.log(
    `\ngoals: total median ${s(total).trim()} s ≤ 20 s: ${goal(total <= 20_000)}; ` +
      `${(total / floor).toFixed(2)}× the floor ≤ 1.3×: ${goal(total <= 1.3 * floor)}; ` +
      `${(xivo / total).toFixed(1)}× faster than XiVO's loop ≥ 3×: ${goal(xivo >= 3 * total)}`,
  );
} finally {
  if (agent && agent.exitCode === null) {
    agent.kill("SIGTERM");
    await new Promise((r) => agent!.once("exit", r));
  }
  await master?.crash().catch(() => {});
  await run(KAMAILIO_SERVICE, ["stop", slaveDir, SLAVE_HOST, String(slavePort)]).catch(() => {});
  await lab.stop();
  await rm(work, { recursive: true, force: true });
}

import { readFile, writeFile } from "node:fs/promises";
import WebSocket from "ws";
import type { MeterSnapshot } from "../worker/cluster/meter-snapshot.js";
import { type EdgeLab, startEdgeLab } from "../test/support/edge-lab.js";
import { createTarget } from "../test/support/target-client.js";
import { renewal } from "../worker/lease.js";
import { sleep } from "./stats.js";

/**
 * npm run bench:cost — what one cluster costs on Cloudflare. The real worker under wrangler dev
 * (COST_METER on: the cluster objects count their SQLite rows, setAlarm calls, invocations and
 * WebSocket sends, read back through GET /v1/clusters/:id) probes three loopback targets, while a
 * scripted agent behaves as the real one does with push on: one WebSocket, a report every 15 s
 * (agent loop.reportEveryMs), a poll every 5 min (the worker-clock refresh in agent/intake/source.ts).
 * Each setting runs BENCH_COST_SEC seconds after a warm-up; the counts are scaled to an hour and
 * to a month (730 h) and priced at the Workers Paid rates below, as the cost of one more cluster
 * once the plan's included amounts are used up.
 *
 * BENCH_COST_ONLY=default|fast runs one setting. BENCH_COST_OUT=file writes the figures as JSON; BENCH_COST_TODAY=file prints them beside an
 * earlier run's (the code at ae952fb, run from a worktree of it).
 */

const SECONDS = Number(process.env.BENCH_COST_SEC ?? 150);
const HOURS_PER_MONTH = 730;
const REPORT_EVERY_MS = 15_000;
const POLL_EVERY_MS = 5 * 60_000;
/** The cron trigger of the code before leases called ensureAlarm on every cluster once a minute. */
const LEGACY_CRON_PER_HOUR = 60;
/** Duration is billed for 128 MB whatever the object uses. */
const GB = 0.125;
/** Worker CPU per request: not measurable under wrangler dev; the routes are a validation and one RPC. */
const CPU_MS_PER_REQUEST = 1;

/** Workers Paid, per unit beyond the included amounts (developers.cloudflare.com, read 2026-11-30). */
const PRICES = {
  doRequest: 0.15 / 1e6,
  doGbSecond: 12.5 / 1e6,
  rowRead: 0.001 / 1e6,
  rowWritten: 1.0 / 1e6,
  storedGbMonth: 0.2,
  workerRequest: 0.3 / 1e6,
  workerCpuMs: 0.02 / 1e6,
  /** Incoming WebSocket messages are billed 20 to one request. */
  wsIncomingPerRequest: 20,
};

const SETTINGS = [
  { name: "default", intervalSec: 10 },
  { name: "fast", intervalSec: 5 },
].filter((s) => !process.env.BENCH_COST_ONLY || s.name === process.env.BENCH_COST_ONLY);

const AGENT = "cost-agent-token-0123456789abcdef0123";

interface Window {
  setting: string;
  intervalSec: number;
  seconds: number;
  rounds: number;
  meter: MeterSnapshot;
  worker: { reports: number; polls: number; upgrades: number };
  wsReceived: number;
  dbBytes: number;
  /** Agent requests that failed (counted above all the same: they reached the worker). */
  failures: number;
  /** A window of the code before leases (BENCH_COST_TODAY), whose cron called every cluster each minute. */
  legacyCron?: boolean;
}

/**
 * Lease renewals per hour (each a registry request and one row written, worker/registry.ts),
 * from the loop's own rule (worker/lease.ts) over an hour of rounds at the setting's interval.
 */
function leaseRenewalsPerHour(intervalSec: number): number {
  let held: number | null = null;
  let renewals = 0;
  const hour = 3_600_000;
  // Two hours of rounds, the second counted: the first lease is given at creation.
  for (let at = 0; at < 2 * hour; at += intervalSec * 1000) {
    const lease = renewal(held, at + intervalSec * 1000, at);
    if (lease !== null) {
      held = lease;
      if (at >= hour) renewals++;
    }
  }
  return renewals;
}

const sum = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);

function minus(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
    const d = (a[k] ?? 0) - (b[k] ?? 0);
    if (d) out[k] = d;
  }
  return out;
}

function delta(after: MeterSnapshot, before: MeterSnapshot): MeterSnapshot {
  return {
    invocations: minus(after.invocations, before.invocations),
    rowsRead: minus(after.rowsRead, before.rowsRead),
    rowsWritten: minus(after.rowsWritten, before.rowsWritten),
    setAlarm: after.setAlarm - before.setAlarm,
    wsSent: after.wsSent - before.wsSent,
    alarmMs: after.alarmMs - before.alarmMs,
    dbBytes: after.dbBytes,
  };
}

interface Line {
  term: string;
  perHour: number;
  perMonth: number;
  dollars: number;
}

/** Term by term: counts per cluster-hour and month, dollars per cluster-month. */
function costLines(w: Window): Line[] {
  const h = 3600 / w.seconds;
  const line = (term: string, perWindow: number, unit: number): Line => ({
    term,
    perHour: perWindow * h,
    perMonth: perWindow * h * HOURS_PER_MONTH,
    dollars: perWindow * h * HOURS_PER_MONTH * unit,
  });
  const m = w.meter;
  const rpc = w.worker.reports + w.worker.polls;
  const workerRequests = rpc + w.worker.upgrades;
  const cronPerWindow = w.legacyCron ? (LEGACY_CRON_PER_HOUR * w.seconds) / 3600 : 0;
  const leasesPerWindow = w.legacyCron ? 0 : (leaseRenewalsPerHour(w.intervalSec) * w.seconds) / 3600;
  const wsIn = m.invocations.wsMessage ?? 0;
  const gbSeconds = (m.alarmMs / 1000) * GB;
  return [
    line("DO requests: alarms", m.invocations.alarm ?? 0, PRICES.doRequest),
    line("DO requests: RPC from routes (reports, polls)", rpc, PRICES.doRequest),
    line("DO requests: cron ensureAlarm (before leases)", cronPerWindow, PRICES.doRequest),
    line("DO requests: lease renewals (registry)", leasesPerWindow, PRICES.doRequest),
    line("SQLite rows written: lease renewals (registry)", leasesPerWindow, PRICES.rowWritten),
    line("DO requests: WebSocket upgrades", m.invocations.fetch ?? 0, PRICES.doRequest),
    line("DO requests: incoming WS messages / 20", wsIn / PRICES.wsIncomingPerRequest, PRICES.doRequest),
    line("DO duration, GB-s (alarm handler wall time)", gbSeconds, PRICES.doGbSecond),
    line("SQLite rows written (SQL)", sum(m.rowsWritten), PRICES.rowWritten),
    line("SQLite rows written (setAlarm)", m.setAlarm, PRICES.rowWritten),
    // Deletes are billed as rows written: every stored round is pruned once it is 48 h old.
    line("SQLite rows deleted later (rounds past 48 h)", m.rowsWritten["INSERT rounds"] ?? 0, PRICES.rowWritten),
    line("SQLite rows read", sum(m.rowsRead), PRICES.rowRead),
    line("Worker requests", workerRequests, PRICES.workerRequest),
    line(
      `Worker CPU ms (assumed ${CPU_MS_PER_REQUEST} ms/request)`,
      workerRequests * CPU_MS_PER_REQUEST,
      PRICES.workerCpuMs,
    ),
    {
      term: "Stored data, GB-month",
      perHour: 0,
      perMonth: w.dbBytes / 1e9,
      dollars: (w.dbBytes / 1e9) * PRICES.storedGbMonth,
    },
  ];
}

const total = (lines: Line[]) => lines.reduce((a, l) => a + l.dollars, 0);

function fmt(n: number, digits = 0): string {
  return n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

function print(w: Window, today: Window | null): void {
  const lines = costLines(w);
  const before = today ? costLines(today) : null;
  console.log(
    `\n${w.setting}: interval ${w.intervalSec} s, one vantage, ${w.rounds} rounds in ${fmt(w.seconds)} s, scaled to an hour and to 730 h`,
  );
  const head = `${"term".padEnd(48)} ${"per hour".padStart(10)} ${"per month".padStart(12)} ${"$ / month".padStart(10)}`;
  console.log(before ? `${head} ${"today $".padStart(10)}` : head);
  for (const [i, l] of lines.entries()) {
    const row = `${l.term.padEnd(48)} ${fmt(l.perHour, 1).padStart(10)} ${fmt(l.perMonth).padStart(12)} ${fmt(l.dollars, 4).padStart(10)}`;
    console.log(before ? `${row} ${fmt(before[i]!.dollars, 4).padStart(10)}` : row);
  }
  const t = `${"total, $ per cluster-month".padEnd(72)} ${fmt(total(lines), 3).padStart(10)}`;
  console.log(before ? `${t} ${fmt(total(before), 3).padStart(10)}` : t);
  const perRound = (n: number) => fmt(n / w.rounds, 2);
  console.log(`rows written per round by statement (setAlarm ${perRound(w.meter.setAlarm)}):`);
  for (const [k, v] of Object.entries(w.meter.rowsWritten).sort((a, b) => b[1] - a[1]))
    console.log(`  ${k.padEnd(24)} ${perRound(v)}`);
  console.log(
    `WebSocket messages sent ${fmt(w.meter.wsSent)}, received by the agent ${w.wsReceived}; DB ${fmt(w.dbBytes / 1024)} KiB; agent requests failed ${w.failures}`,
  );
}

async function measure(lab: EdgeLab, probes: unknown[], setting: (typeof SETTINGS)[number]): Promise<Window> {
  const id = `cost-${setting.name}`;
  const put = await lab.admin("PUT", `/v1/clusters/${id}`, {
    master: { host: "127.0.0.1" },
    probes,
    intervalSec: setting.intervalSec,
    agentToken: AGENT,
  });
  if (!put.ok) throw new Error(`configure ${id}: HTTP ${put.status} ${await put.text()}`);
  const auth = { authorization: `Bearer ${AGENT}` };
  const base = `${lab.edge.url}/v1/clusters/${id}`;
  const worker = { reports: 0, polls: 0, upgrades: 0 };
  let wsReceived = 0;
  let failures = 0;
  const ws = new WebSocket(`${base.replace(/^http/, "ws")}/push`, { headers: auth });
  worker.upgrades++;
  ws.on("message", () => wsReceived++);
  await new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  const report = async () => {
    worker.reports++;
    const res = await fetch(`${base}/report`, {
      method: "POST",
      headers: { ...auth, "content-type": "application/json" },
      body: JSON.stringify({
        role: "standby",
        mode: "auto",
        at: Date.now(),
        lastAction: null,
        lan: null,
        verdictSeq: null,
        counters: { pushAccepted: wsReceived }, // changes every time, as the real agent's do
      }),
    });
    if (res.status !== 202) throw new Error(`report: HTTP ${res.status}`);
  };
  const poll = async () => {
    worker.polls++;
    const res = await fetch(`${base}/verdict?nonce=cost-${crypto.randomUUID()}`, { headers: auth });
    if (res.status !== 200) throw new Error(`poll: HTTP ${res.status}`);
  };
  const view = async () => {
    const res = await lab.admin("GET", `/v1/clusters/${id}`);
    const v = (await res.json()) as { verdict: { seq: number }; meter?: MeterSnapshot };
    if (!v.meter) throw new Error("no meter in the cluster view: is COST_METER reaching the worker?");
    return { seq: v.verdict.seq, meter: v.meter, reports: worker.reports, polls: worker.polls };
  };
  await poll();
  await report();
  // A request the loaded machine fails now and then (wrangler dev answers 503) is counted, not fatal.
  const failed = (err: Error) => {
    failures++;
    console.error(`${setting.name}: ${err.message}`);
  };
  const timers = [
    setInterval(() => report().catch(failed), REPORT_EVERY_MS),
    setInterval(() => poll().catch(failed), POLL_EVERY_MS),
  ];
  try {
    await sleep(2 * setting.intervalSec * 1000); // warm-up: first rounds, first writes
    const start = await view();
    const t0 = Date.now();
    await sleep(SECONDS * 1000);
    const end = await view();
    const seconds = (Date.now() - t0) / 1000;
    return {
      setting: setting.name,
      intervalSec: setting.intervalSec,
      seconds,
      rounds: end.seq - start.seq,
      meter: delta(end.meter, start.meter),
      worker: { reports: end.reports - start.reports, polls: end.polls - start.polls, upgrades: 0 }, // the one upgrade was before
      wsReceived,
      dbBytes: end.meter.dbBytes,
      failures,
    };
  } finally {
    for (const t of timers) clearInterval(t);
    ws.close();
    await lab.admin("DELETE", `/v1/clusters/${id}`);
  }
}

const lab = await startEdgeLab({ vars: { COST_METER: "1" } });
try {
  const [web, pg, sip] = await Promise.all([
    createTarget(lab.control.port, "http"),
    createTarget(lab.control.port, "tcp"),
    createTarget(lab.control.port, "sip-tcp"),
  ]);
  const probes = [
    { kind: "http", name: "web", scheme: "http", port: web.port },
    { kind: "tcp", name: "pg", port: pg.port },
    { kind: "sip", name: "sip", port: sip.port },
  ];
  const today = process.env.BENCH_COST_TODAY
    ? (JSON.parse(await readFile(process.env.BENCH_COST_TODAY, "utf8")) as Window[]).map((w) => ({
        ...w,
        legacyCron: true,
      }))
    : null;
  const windows: Window[] = [];
  for (const setting of SETTINGS) {
    const w = await measure(lab, probes, setting);
    windows.push(w);
    print(w, today?.find((t) => t.setting === w.setting) ?? null);
  }
  if (process.env.BENCH_COST_OUT) await writeFile(process.env.BENCH_COST_OUT, `${JSON.stringify(windows, null, 2)}\n`);
  console.log(
    "\nPrices: Workers Paid, beyond the included amounts (per month: DO 1 M requests, 400 000 GB-s, 25 G rows read, 50 M rows written, 5 GB stored; Workers 10 M requests, 30 M CPU ms).",
  );
  console.log(
    "The WebSocket upgrade is paid once per connection (none in the window above); each extra vantage adds one DO request a round and its probes' wall time (README).",
  );
} finally {
  await lab.stop();
}

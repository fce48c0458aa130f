import http from "node:http";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { WebSocket } from "ws";
import { verifyEnvelope } from "../protocol/signing.js";
import { PushMessage } from "../protocol/push.js";
import { Verdict } from "../protocol/verdict.js";
import { Retries } from "../protocol/probe-fields.js";
import { buildAgent } from "../scripts/build-agent.js";
import { freePort } from "../scripts/edge.js";
import { type EdgeLab, startEdgeLab } from "../test/support/edge-lab.js";
import { type Kamailio, kamailioMissing, startKamailio } from "../test/support/kamailio.js";
import { type DropStyle, type LossyProxy, startLossyProxy } from "../test/support/lossy-proxy.js";
import { type Pair, UnsupportedSetting, startPair } from "./pair.js";
import { sleep } from "./stats.js";

/**
 * npm run bench:false-alarms — the master healthy (Kamailio on 127.0.0.1) behind a lossy path
 * (test/support/lossy-proxy.ts), probed by the real worker under wrangler dev with real sockets.
 *
 * Table (default): for each loss level and for retries 0 (the old single attempt) and the
 * default, one cluster per vantage, all running at once; every round's verdict is taken from the
 * signed push. Rounds run at the minimum interval (2 s) to get a few hundred of them quickly: a
 * round's outcome does not depend on the spacing, only the monthly figures do, and those are
 * derived for the recommended interval. Three vantages (quorum 2) are computed from three
 * independently probing clusters, round i of each voting together.
 *
 * Long run (`--long 30m`): one pair (worker + the agent bundle + a slave Kamailio) at 10 % loss
 * with the recommended settings, counting bad rounds, down verdicts, alerts and failovers.
 *
 * Options: --rounds N (300), --drop blackhole|reset (blackhole), --long <minutes>m, --loss 0.1
 */

const { values: args } = parseArgs({
  options: { rounds: { type: "string" }, drop: { type: "string" }, long: { type: "string" }, loss: { type: "string" } },
});
const ROUNDS = Number(args.rounds ?? 300);
const DROP = (args.drop ?? "blackhole") as DropStyle;
if (DROP !== "blackhole" && DROP !== "reset") throw new Error("--drop: blackhole or reset");
const LOSSES = [0, 0.05, 0.1, 0.2];
const DEFAULT_RETRIES = Retries.parse(undefined);
const TOKEN = "bench-false-alarms-token-0123456789abcdef";
/** The recommended settings, the ones the monthly figures are for. */
const REC = { intervalSec: 5, fall: 3, rise: 2, confirmIntervalSec: 1, timeoutMs: 1000, retries: DEFAULT_RETRIES };
const ROUNDS_PER_MONTH = (30 * 86_400) / REC.intervalSec;

/**
 * Expected false `down` verdicts a month: a down needs `fall` bad rounds in a row, and a run can
 * start after any good round, so E = R × (1 − q) × q^fall with R rounds a month at the normal
 * interval (confirmation rounds fall inside a run, so they add no starts) and q the probability
 * that a round is bad. Assumes rounds independent: true of random loss, not of a path that is
 * bad for minutes (that is an outage, and worth a verdict).
 */
const falseDownsPerMonth = (q: number, fall = REC.fall) => ROUNDS_PER_MONTH * (1 - q) * q ** fall;

/** A round is bad under a quorum of 2 of 3 independent vantages when at least two are bad. */
const quorumOf3 = (q: number) => 3 * q * q * (1 - q) + q ** 3;

interface RoundSeen {
  seq: number;
  bad: boolean;
  /** Attempts the probes made, and how many of them failed. */
  attempts: number;
  failedAttempts: number;
  state: string;
}

/** Every round of a cluster, from its signed push (each round pushes one verdict). */
function watchRounds(lab: EdgeLab, id: string, onRound: (r: RoundSeen) => void): () => void {
  const url = `${lab.edge.url.replace(/^http/, "ws")}/v1/clusters/${id}/push`;
  let closed = false;
  let ws: WebSocket | undefined;
  let lastSeq = -1;
  const connect = () => {
    ws = new WebSocket(url, { headers: { authorization: `Bearer ${TOKEN}` } });
    ws.on("message", async (data: Buffer) => {
      const msg = PushMessage.parse(JSON.parse(data.toString("utf8")));
      if (msg.type !== "verdict") return;
      const checked = await verifyEnvelope(msg.envelope, [lab.secrets.publicJwk]);
      if (!checked.ok) throw new Error(`a push that does not verify: ${checked.reason}`);
      const v = Verdict.parse(checked.payload);
      if (!v.lastRound || v.seq <= lastSeq) return; // the greeting repeats the last round
      lastSeq = v.seq;
      let attempts = 0;
      let failedAttempts = 0;
      for (const p of v.lastRound.probes) {
        const n = p.attempts ?? 1;
        attempts += n;
        failedAttempts += p.ok ? n - 1 : n;
      }
      onRound({ seq: v.seq, bad: v.lastRound.class !== "up", attempts, failedAttempts, state: v.state });
    });
    ws.on("error", () => undefined);
    ws.on("close", () => {
      if (!closed) setTimeout(connect, 500);
    });
  };
  connect();
  return () => {
    closed = true;
    ws?.close();
  };
}

const pctText = (x: number) => `${(x * 100).toFixed(x < 0.01 ? 2 : 1)} %`;
const monthText = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 0.01 ? x.toFixed(2) : x.toExponential(1));

async function startMaster(work: string): Promise<Kamailio> {
  const missing = kamailioMissing();
  if (missing) throw new Error(`bench:false-alarms needs Kamailio as the master: ${missing}`);
  return startKamailio(join(work, "master"), "127.0.0.1", await freePort());
}

async function table(lab: EdgeLab, master: Kamailio): Promise<void> {
  const retriesSet = [0, DEFAULT_RETRIES];
  interface Column {
    loss: number;
    retries: number;
    vantages: { id: string; proxy: LossyProxy; rounds: RoundSeen[] }[];
  }
  const columns: Column[] = [];
  let seed = 1;
  for (const loss of LOSSES)
    for (const retries of retriesSet) {
      const col: Column = { loss, retries, vantages: [] };
      for (let v = 0; v < 3; v++) {
        const id = `fa-${Math.round(loss * 100)}-r${retries}-v${v}`;
        const proxy = await startLossyProxy({
          target: { host: "127.0.0.1", port: master.port },
          loss,
          drop: DROP,
          seed: seed++,
        });
        const put = await lab.admin("PUT", `/v1/clusters/${id}`, {
          master: { host: "127.0.0.1" },
          probes: [{ kind: "sip", name: "sip", port: proxy.port, timeoutMs: REC.timeoutMs, retries }],
          intervalSec: 2,
          fall: REC.fall,
          rise: REC.rise,
          agentToken: TOKEN,
        });
        if (!put.ok) throw new Error(`configuring ${id}: HTTP ${put.status} ${await put.text()}`);
        col.vantages.push({ id, proxy, rounds: [] });
      }
      columns.push(col);
    }
  const stops = columns.flatMap((c) => c.vantages.map((v) => watchRounds(lab, v.id, (r) => v.rounds.push(r))));
  console.log(
    `\n${columns.length * 3} clusters probing Kamailio through lossy proxies (${DROP}), interval 2 s, ` +
      `SIP OPTIONS over TCP, timeout ${REC.timeoutMs} ms; waiting for ${ROUNDS} rounds each …`,
  );
  const t0 = Date.now();
  for (;;) {
    const least = Math.min(...columns.flatMap((c) => c.vantages.map((v) => v.rounds.length)));
    if (least >= ROUNDS) break;
    if (Date.now() - t0 > ROUNDS * 2000 * 3 + 120_000)
      throw new Error(`rounds too slow: ${least} after ${Date.now() - t0} ms`);
    await sleep(5000);
    process.stdout.write(`  ${least}/${ROUNDS} rounds\r`);
  }
  for (const stop of stops) stop();

  console.log(
    `\nFalse alarms: Kamailio healthy behind a lossy path (${DROP}), one critical SIP probe, ${ROUNDS} rounds per vantage.`,
  );
  console.log(
    `Expected false downs a month = R × (1 − q) × q^${REC.fall}, R = ${ROUNDS_PER_MONTH} rounds at ${REC.intervalSec} s, rounds independent.`,
  );
  console.log(
    "q measured = bad rounds / rounds; q model = f^attempts from the measured per-attempt failure rate f (finer than counting rare bad rounds).\n",
  );
  const head = [
    "loss",
    "retries",
    "attempt fail f",
    "1 vantage: bad rounds",
    "q model",
    "downs/month",
    "3 vantages q2: bad rounds",
    "q model",
    "downs/month",
    "down verdicts seen (1 v)",
  ];
  const rows: string[][] = [];
  for (const c of columns) {
    const rounds = c.vantages.map((v) => v.rounds.slice(0, ROUNDS));
    const one = rounds[0]!;
    const bad1 = one.filter((r) => r.bad).length;
    const all = rounds.flat();
    const f =
      all.reduce((a, r) => a + r.failedAttempts, 0) /
      Math.max(
        1,
        all.reduce((a, r) => a + r.attempts, 0),
      );
    const q1 = f ** (1 + c.retries);
    let bad3 = 0;
    for (let i = 0; i < ROUNDS; i++) if (rounds.filter((rs) => rs[i]!.bad).length >= 2) bad3++;
    const q3 = quorumOf3(q1);
    let downs = 0;
    for (let i = 1; i < one.length; i++) if (one[i]!.state === "down" && one[i - 1]!.state !== "down") downs++;
    rows.push([
      pctText(c.loss),
      String(c.retries),
      pctText(f),
      `${bad1}/${ROUNDS} (${pctText(bad1 / ROUNDS)})`,
      q1.toExponential(1),
      monthText(falseDownsPerMonth(q1)),
      `${bad3}/${ROUNDS} (${pctText(bad3 / ROUNDS)})`,
      q3.toExponential(1),
      monthText(falseDownsPerMonth(q3)),
      String(downs),
    ]);
  }
  printTable(head, rows);
  console.log(
    `\nproxies: ${columns
      .map(
        (c) =>
          `${pctText(c.loss)}: ${c.vantages.map((v) => `${v.proxy.stats().dropped}/${v.proxy.stats().accepted}`).join(" ")}`,
      )
      .join("; ")} (dropped/accepted connections)`,
  );
  await Promise.all(columns.flatMap((c) => c.vantages.map((v) => v.proxy.close())));
}

function printTable(head: string[], rows: string[][]): void {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
  console.log(line(head));
  console.log(`|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`);
  for (const r of rows) console.log(line(r));
}

/** A loopback Slack stand-in: keeps the text of the alert messages the worker sends. */
async function alertSink(): Promise<{ url: string; texts: string[]; close: () => Promise<void> }> {
  const texts: string[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      try {
        texts.push(
          String((JSON.parse(Buffer.concat(chunks).toString("utf8")) as { text?: unknown }).text).slice(0, 200),
        );
      } catch {
        texts.push("(not JSON)");
      }
      res.writeHead(200).end("ok");
    });
  });
  await new Promise<void>((r) => server.listen({ host: "127.0.0.1", port: 0 }, () => r()));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/slack`,
    texts,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

async function longRun(lab: EdgeLab, master: Kamailio, work: string, minutes: number): Promise<void> {
  const loss = Number(args.loss ?? 0.1);
  const proxy = await startLossyProxy({
    target: { host: "127.0.0.1", port: master.port },
    loss,
    drop: DROP,
    seed: 2026,
  });
  const sink = await alertSink();
  const bundle = await buildAgent(join(work, "xivo-ha-agent.mjs"));
  const edge = (fast: boolean) => ({
    probes: [{ kind: "sip", name: "sip", port: proxy.port, timeoutMs: REC.timeoutMs, retries: REC.retries }],
    intervalSec: REC.intervalSec,
    fall: REC.fall,
    rise: REC.rise,
    ...(fast ? { confirmIntervalSec: REC.confirmIntervalSec } : {}),
    notifications: [{ kind: "slack", name: "bench", url: sink.url }],
  });
  const lan = (fast: boolean) => ({
    timeoutMs: 1000,
    intervalMs: 5000,
    fall: 3,
    rise: 2,
    ...(fast ? { confirmIntervalMs: 1000 } : {}),
  });
  const base = {
    lab,
    bundle,
    dir: join(work, "pair"),
    clusterId: "fa-long",
    token: TOKEN,
    masterPort: master.port,
    slavePort: await freePort(),
    holdDownMs: 5000,
  };
  let pair: Pair;
  let note = "with confirmation rounds (edge 1 s, LAN 1 s)";
  try {
    pair = await startPair({ ...base, edge: edge(true), lan: lan(true) });
  } catch (err) {
    if (!(err instanceof UnsupportedSetting)) throw err;
    note = `WITHOUT confirmation rounds: ${err.message.slice(0, 300)}`;
    pair = await startPair({ ...base, edge: edge(false), lan: lan(false) });
  }
  const rounds: RoundSeen[] = [];
  const stop = watchRounds(lab, base.clusterId, (r) => rounds.push(r));
  // The pair's start (the first verdict's master.up) is not the run: wait for it, count after it.
  await sleep(10_000);
  const started = Date.now();
  const alertsBefore = sink.texts.length;
  console.log(
    `\nlong run: ${minutes} min at ${pctText(loss)} loss (${DROP}), interval ${REC.intervalSec} s, fall ${REC.fall}, ` +
      `timeout ${REC.timeoutMs} ms, retries ${REC.retries}, ${note}; the real agent (LAN SIP/UDP, not lossy)`,
  );
  const report = async (final: boolean) => {
    const failovers = (await pair.failoverDecisions()).length;
    const downs = (await pair.verdictDowns()).filter((at) => at >= started).length;
    const bad = rounds.filter((r) => r.bad).length;
    const attempts = rounds.reduce((a, r) => a + r.attempts, 0);
    const retried = rounds.filter((r) => r.attempts > 1).length;
    console.log(
      `${final ? "RESULT " : ""}${((Date.now() - started) / 60_000).toFixed(1)} min: ${rounds.length} rounds, ${bad} bad, ` +
        `${retried} needed a retry (${attempts} attempts), proxy dropped ${proxy.stats().dropped}/${proxy.stats().accepted}; ` +
        `down verdicts ${downs}, alert messages ${sink.texts.length - alertsBefore}, failovers ${failovers}, role ${await pair.role()}`,
    );
    return { downs, failovers };
  };
  try {
    while (Date.now() - started < minutes * 60_000) {
      await sleep(60_000);
      await report(false);
    }
    const r = await report(true);
    console.log(`alerts before the run: ${JSON.stringify(sink.texts.slice(0, alertsBefore))}`);
    console.log(`alerts during the run: ${JSON.stringify(sink.texts.slice(alertsBefore))}`);
    const ok = r.downs === 0 && r.failovers === 0;
    console.log(`goal (0 down verdicts, 0 failovers at ${pctText(loss)} loss): ${ok ? "met" : "NOT met"}`);
  } finally {
    stop();
    await pair.stop();
    await proxy.close();
    await sink.close();
  }
}

const work = await mkdtemp(join(tmpdir(), "xivo-ha-bench-false-alarms-"));
const lab = await startEdgeLab();
let master: Kamailio | undefined;
try {
  master = await startMaster(work);
  if (args.long !== undefined) {
    const m = /^(\d+)m?$/.exec(args.long);
    if (!m) throw new Error("--long: minutes, e.g. 30m");
    await longRun(lab, master, work, Number(m[1]));
  } else {
    await table(lab, master);
  }
} finally {
  await master?.crash().catch(() => {});
  await lab.stop();
  await rm(work, { recursive: true, force: true });
}
process.exit(0);

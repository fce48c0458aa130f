import { parseArgs } from "node:util";
import { startEdgeLab } from "../test/support/edge-lab.js";
import { createTarget } from "../test/support/target-client.js";
import { mapLimited } from "../worker/concurrency.js";
import { REGISTRY_SHARDS } from "../worker/lease.js";
import { pct, sleep } from "./stats.js";

/**
 * npm run bench:scale [-- --clusters 1000 --minutes 3 --subrequests 1000]
 *
 * The worker under the real `wrangler dev` with many clusters,
 * each probing one loopback TCP responder every 60 s. The bench triggers the cron itself through
 * wrangler's /cdn-cgi/handler/scheduled once a minute (wrangler dev does not run cron schedules on its own) and
 * reads the cron's one summary line per run from wrangler's output. It reports, each sweep over
 * every cluster's verdict: how many are fresh (age ≤ 2 intervals), the verdict GET's latency, and
 * the lag of rounds against their due time. Then it drops the alarm of 10 % of the clusters
 * through the route only this bench's config enables (TEST_ALARM_DROP) and times the cron
 * bringing every one of them back.
 */

const { values: flags } = parseArgs({
  options: {
    clusters: { type: "string", default: "1000" },
    minutes: { type: "string", default: "3" },
    // The cron's subrequest budget: 1000, a Paid plan's per-invocation figure (worker/index.ts: unset, 50).
    subrequests: { type: "string", default: "1000" },
  },
});
function positive(name: keyof typeof flags): number {
  const n = Number(flags[name]);
  if (!Number.isSafeInteger(n) || n < 1) {
    console.error(`--${name}: a positive whole number, not "${flags[name]}"`);
    process.exit(2);
  }
  return n;
}
const N = positive("clusters");
const MINUTES = positive("minutes");
const SUBREQUESTS = positive("subrequests");

const INTERVAL_SEC = 60;
const FRESH_MS = 2 * INTERVAL_SEC * 1000;
const CRON_EVERY_MS = 60_000;
const SWEEP_EVERY_MS = 30_000;
const CONCURRENCY = 8;
const DROP_SHARE = 0.1;
const RECOVERY_TIMEOUT_MS = 6 * 60_000;
const AGENT = "bench-agent-token-0123456789abcdef0123";

interface CronLine {
  checked: number;
  rearmed: number;
  carried: number;
  calls: number;
  ms: number;
}
const CRON_LINE = /cron: checked (\d+) overdue \(re-armed (\d+),.*\), carried (\d+), (\d+) calls, (\d+) ms/g;
const cronLines: CronLine[] = [];

const fmt = (xs: number[], digits = 0) =>
  xs.length ? `p50 ${pct(xs, 50).toFixed(digits)} / p99 ${pct(xs, 99).toFixed(digits)}` : "n/a";
const since = (t0: number) => `${((Date.now() - t0) / 1000).toFixed(0).padStart(4)} s`;

const lab = await startEdgeLab({
  vars: { TEST_ALARM_DROP: "enabled", CRON_SUBREQUESTS: String(SUBREQUESTS) },
  logLevel: "log",
  onOutput: (text) => {
    for (const m of text.matchAll(CRON_LINE)) {
      const [checked, rearmed, carried, calls, ms] = m.slice(1).map(Number) as [number, number, number, number, number];
      cronLines.push({ checked, rearmed, carried, calls, ms });
    }
  },
});
const { edge, admin } = lab;

/** What a sweep last saw of a cluster: its seq and when that round started. */
const seen = new Map<string, { seq: number; start: number }>();
const lags: number[] = [];
const verdictMs: number[] = [];

/** One verdict GET: its latency, freshness, and the lag of a round seen right after the one before. */
async function verdict(id: string): Promise<{ fresh: boolean; seq: number }> {
  const t0 = performance.now();
  const res = await fetch(`${edge.url}/v1/clusters/${id}/verdict`, { headers: { authorization: `Bearer ${AGENT}` } });
  const body = (await res.json()) as { payload?: string };
  verdictMs.push(performance.now() - t0);
  if (res.status !== 200 || !body.payload) throw new Error(`verdict of ${id}: HTTP ${res.status}`);
  const v = JSON.parse(body.payload) as {
    seq: number;
    ageMs: number | null;
    lastRound: { at: number; durationMs: number } | null;
  };
  if (v.lastRound) {
    const start = v.lastRound.at - v.lastRound.durationMs;
    const before = seen.get(id);
    if (before && v.seq === before.seq + 1) lags.push(start - (before.start + INTERVAL_SEC * 1000));
    seen.set(id, { seq: v.seq, start });
  }
  return { fresh: v.ageMs !== null && v.ageMs <= FRESH_MS, seq: v.seq };
}

/** A cron run through wrangler's /cdn-cgi/handler/scheduled, timed, with the summary line the worker logs. */
async function cron(): Promise<CronLine & { httpMs: number }> {
  const before = cronLines.length;
  const t0 = performance.now();
  const res = await fetch(`${edge.url}/cdn-cgi/handler/scheduled?cron=*+*+*+*+*`);
  const text = await res.text();
  if (!res.ok) throw new Error(`the cron trigger answered HTTP ${res.status}: ${text.slice(0, 200)}`);
  const httpMs = performance.now() - t0;
  for (let i = 0; i < 50 && cronLines.length === before; i++) await sleep(100);
  const line = cronLines[cronLines.length - 1];
  if (cronLines.length === before || !line)
    throw new Error("the cron's summary line did not show in wrangler's output");
  return { ...line, httpMs };
}

const ids = Array.from({ length: N }, (_, i) => `scale-${String(i).padStart(5, "0")}`);
try {
  const tcp = await createTarget(lab.control.port, "tcp");
  const config = {
    master: { host: "127.0.0.1" },
    probes: [{ kind: "tcp", name: "pg", port: tcp.port, timeoutMs: 2000 }],
    intervalSec: INTERVAL_SEC,
    agentToken: AGENT,
  };
  const t0 = Date.now();
  const putMs: number[] = [];
  let putRetries = 0;
  let lastRefusal = "";
  await mapLimited(ids, 16, async (id) => {
    const t = performance.now();
    // A refusal under load (503 from the runtime) is retried a few times, counted and shown.
    for (let attempt = 1; ; attempt++) {
      const res = await admin("PUT", `/v1/clusters/${id}`, config);
      const text = await res.text();
      if (res.status === 201 || res.status === 200) break;
      lastRefusal = `HTTP ${res.status} ${text.slice(0, 200)}`;
      if (attempt === 5) throw new Error(`PUT ${id}: ${lastRefusal}`);
      putRetries++;
      await sleep(1000 * attempt);
    }
    putMs.push(performance.now() - t);
  });
  if (putRetries) console.log(`registration: ${putRetries} PUTs retried; the last refusal: ${lastRefusal}`);
  console.log(`registered ${N} clusters in ${since(t0)} (16 at a time; PUT ${fmt(putMs)} ms)`);

  // The cron on its own clock, once a minute, whatever the sweeps are doing.
  const crons: (CronLine & { httpMs: number; at: number })[] = [];
  let cronOn = true;
  void (async () => {
    for (let next = Date.now() + CRON_EVERY_MS; cronOn; next += CRON_EVERY_MS) {
      await sleep(Math.max(0, next - Date.now()));
      if (!cronOn) break;
      const run = { ...(await cron()), at: Date.now() };
      crons.push(run);
      console.log(
        `${since(t0)}  cron: ${run.checked} overdue checked, ${run.rearmed} re-armed, ${run.carried} carried, ` +
          `${run.calls} calls, ${run.ms} ms in the worker (${run.httpMs.toFixed(0)} ms the trigger)`,
      );
    }
  })();
  /** `sweep` every `everyMs` (or back to back when one takes longer) until `until` holds. */
  async function loop(until: () => boolean, everyMs: number, sweep: () => Promise<void>) {
    while (!until()) {
      const started = Date.now();
      await sweep();
      await sleep(Math.max(0, started + everyMs - Date.now()));
    }
  }

  // Steady state: every cluster's verdict, every 30 s, for MINUTES.
  const steadyUntil = Date.now() + MINUTES * 60_000;
  const freshCounts: number[] = [];
  async function sweepAll() {
    const start = verdictMs.length;
    const t = performance.now();
    const got = await mapLimited(ids, CONCURRENCY, verdict);
    const fresh = got.filter((g) => g.fresh).length;
    freshCounts.push(fresh);
    const sweepMs = verdictMs.slice(start);
    console.log(
      `${since(t0)}  fresh ${fresh}/${N}; verdict GET ${fmt(sweepMs, 1)} ms; sweep ${((performance.now() - t) / 1000).toFixed(1)} s; round lag so far ${fmt(lags)} ms (${lags.length} rounds)`,
    );
  }
  await loop(() => Date.now() >= steadyUntil, SWEEP_EVERY_MS, sweepAll);
  const steadyCrons = [...crons];
  const steadyLags = [...lags];

  // Loss: 10 % lose their alarm, half a minute after a cron run (the cron's cycle midway).
  const steadyRuns = crons.length;
  const midway = () => crons.length > steadyRuns && Date.now() >= crons[crons.length - 1]!.at + CRON_EVERY_MS / 2;
  await loop(midway, 1_000, async () => {});
  const dropped = ids.filter((_, i) => i % Math.round(1 / DROP_SHARE) === 0);
  const seqAtDrop = new Map<string, number>();
  const dropAt = Date.now();
  await mapLimited(dropped, CONCURRENCY, async (id) => {
    const res = await admin("DELETE", `/v1/clusters/${id}/alarm`);
    if (res.status !== 204) throw new Error(`drop ${id}: HTTP ${res.status}`);
  });
  // A round in flight at the drop re-arms its alarm as it ends: that loop was not lost, and counts as back at once.
  const atDrop = await mapLimited(dropped, CONCURRENCY, verdict);
  dropped.forEach((id, i) => seqAtDrop.set(id, atDrop[i]!.seq));
  console.log(`${since(t0)}  dropped the alarm of ${dropped.length} clusters (in ${since(dropAt).trim()})`);
  const backAt = new Map<string, number>();
  const cronsBefore = crons.length;
  await loop(
    () => backAt.size === dropped.length || Date.now() - dropAt > RECOVERY_TIMEOUT_MS,
    5_000,
    async () => {
      const waiting = dropped.filter((id) => !backAt.has(id));
      const got = await mapLimited(waiting, CONCURRENCY, verdict);
      waiting.forEach((id, i) => {
        if (got[i]!.seq > seqAtDrop.get(id)!) backAt.set(id, Date.now());
      });
    },
  );
  cronOn = false;
  const recoveryCrons = crons.slice(cronsBefore);
  const backMs = [...backAt.values()].map((t) => t - dropAt);

  console.log(
    `\nscale bench: ${N} clusters, intervalSec ${INTERVAL_SEC}, one loopback TCP responder, wrangler dev on 127.0.0.1`,
  );
  console.log(
    `cron: triggered by the bench through wrangler's /cdn-cgi/handler/scheduled every ${CRON_EVERY_MS / 1000} s; budget CRON_SUBREQUESTS=${SUBREQUESTS}`,
  );
  console.log(`fresh verdicts (age <= ${FRESH_MS / 1000} s) per sweep: ${freshCounts.join(", ")} of ${N}`);
  console.log(`round lag vs due time (before the drop): ${fmt(steadyLags)} ms over ${steadyLags.length} rounds`);
  console.log(
    `verdict GET latency: ${fmt(verdictMs, 1)} ms over ${verdictMs.length} requests (concurrency ${CONCURRENCY})`,
  );
  console.log(
    `cron runs, steady: ${steadyCrons.map((c) => `${c.checked} checked/${c.calls} calls/${c.ms} ms`).join("; ") || "none"}`,
  );
  console.log(
    `cron runs, recovery: ${recoveryCrons.map((c) => `${c.checked} checked/${c.rearmed} re-armed/${c.carried} carried/${c.calls} calls/${c.ms} ms`).join("; ") || "none"}`,
  );
  const overBound = crons.filter((c) => c.calls > c.checked + 2 * REGISTRY_SHARDS);
  console.log(
    `calls per run <= checked + ${2 * REGISTRY_SHARDS} (a read and a write per shard): ${overBound.length ? `NOT met in ${overBound.length} runs` : "met in every run"}`,
  );
  const rearmed = recoveryCrons.reduce((n, c) => n + c.rearmed, 0);
  console.log(
    `lost loops: ${dropped.length} dropped, ${backAt.size} back (a round after the drop), ${rearmed} re-armed by the cron; ` +
      `back after ${fmt(backMs.map((ms) => ms / 1000))} s, the last at ${backMs.length ? (Math.max(...backMs) / 1000).toFixed(0) : "n/a"} s`,
  );
  const allFresh = freshCounts.length > 1 && freshCounts.slice(1).every((f) => f === N);
  const allBack = backAt.size === dropped.length && Math.max(...backMs) <= 120_000;
  console.log(
    `goal: all ${N} fresh: ${allFresh ? "met" : "NOT met"}; every lost loop back within 2 min: ${allBack ? "met" : "NOT met"}`,
  );
} finally {
  await lab.stop();
}
process.exit(0); // the cron's clock may be asleep until its next minute

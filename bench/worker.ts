import { startEdgeLab } from "../test/support/edge-lab.js";
import { createTarget } from "../test/support/target-client.js";

/**
 * npm run bench:worker — the signed verdict endpoint against a bare Hono route of the same
 * worker, under the real `wrangler dev` on loopback, interleaved in blocks so both see the same
 * machine; then the wall time of probe rounds against three local targets (HTTP, TCP, SIP).
 */
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 4000); // per endpoint
const CONCURRENCY = 8;
const BLOCK = 500;
const AGENT = "bench-agent-token-0123456789abcdef0123";

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function block(url: string, headers: Record<string, string>, n: number, lat: number[]): Promise<number> {
  let next = 0;
  const started = performance.now();
  const lane = async () => {
    while (next < n) {
      next++;
      const t0 = performance.now();
      const res = await fetch(url.replace("NONCE", `bench-${crypto.randomUUID()}`), { headers });
      await res.arrayBuffer();
      if (res.status !== 200) throw new Error(`${url}: HTTP ${res.status}`);
      lat.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, lane));
  return performance.now() - started;
}

const lab = await startEdgeLab();
const { edge, control, secrets } = lab;
try {
  const [web, pg, sip] = await Promise.all([
    createTarget(control.port, "http"),
    createTarget(control.port, "tcp"),
    createTarget(control.port, "sip-tcp"),
  ]);
  const configure = (intervalSec: number) =>
    fetch(`${edge.url}/v1/clusters/bench`, {
      method: "PUT",
      headers: { authorization: `Bearer ${secrets.adminToken}`, "content-type": "application/json" },
      body: JSON.stringify({
        master: { host: "127.0.0.1" },
        probes: [
          { kind: "http", name: "web", scheme: "http", port: web.port },
          { kind: "tcp", name: "pg", port: pg.port },
          { kind: "sip", name: "sip", port: sip.port },
        ],
        intervalSec,
        agentToken: AGENT,
      }),
    });
  // A one-hour interval: no round runs in the background while requests are measured.
  if (!(await configure(3600)).ok) throw new Error("could not configure the bench cluster");

  const endpoints = {
    bare: { url: `${edge.url}/v1/ping`, headers: {} as Record<string, string>, lat: [] as number[], ms: 0 },
    verdict: {
      url: `${edge.url}/v1/clusters/bench/verdict?nonce=NONCE`,
      headers: { authorization: `Bearer ${AGENT}` },
      lat: [] as number[],
      ms: 0,
    },
  };
  for (const e of Object.values(endpoints)) await block(e.url, e.headers, 300, []); // warm-up
  for (let done = 0; done < REQUESTS; done += BLOCK) {
    for (const e of Object.values(endpoints)) e.ms += await block(e.url, e.headers, BLOCK, e.lat);
  }

  const rows = Object.entries(endpoints).map(([name, e]) => {
    const sorted = [...e.lat].sort((a, b) => a - b);
    return {
      name,
      n: sorted.length,
      p50: percentile(sorted, 50),
      p99: percentile(sorted, 99),
      rps: (sorted.length / e.ms) * 1000,
    };
  });
  console.log(
    `\nworker endpoints under wrangler dev, 127.0.0.1, concurrency ${CONCURRENCY}, interleaved blocks of ${BLOCK}`,
  );
  console.log("endpoint                     requests   p50 ms   p99 ms     req/s");
  for (const r of rows) {
    console.log(
      `${r.name.padEnd(28)} ${String(r.n).padStart(8)} ${r.p50.toFixed(2).padStart(8)} ${r.p99.toFixed(2).padStart(8)} ${r.rps.toFixed(0).padStart(9)}`,
    );
  }
  const ratio = rows[1]!.rps / rows[0]!.rps;
  console.log(
    `verdict / bare throughput ratio: ${ratio.toFixed(2)} (goal >= 0.70: ${ratio >= 0.7 ? "met" : "NOT met"})`,
  );

  // Rounds: a 2 s interval, and the worker's own measure of each round's wall time.
  await configure(2);
  const durations = new Map<number, number>();
  const deadline = Date.now() + 40_000;
  while (durations.size < 10 && Date.now() < deadline) {
    const res = await fetch(`${edge.url}/v1/clusters/bench`, {
      headers: { authorization: `Bearer ${secrets.adminToken}` },
    });
    const view = (await res.json()) as {
      verdict: { seq: number; lastRound: { durationMs: number; class: string } | null };
    };
    if (view.verdict.lastRound) durations.set(view.verdict.seq, view.verdict.lastRound.durationMs);
    await new Promise((r) => setTimeout(r, 250));
  }
  const ds = [...durations.values()].sort((a, b) => a - b);
  console.log(
    `\nprobe round, 3 local targets (http, tcp, sip-tcp), ${ds.length} rounds: median ${percentile(ds, 50)} ms, max ${ds[ds.length - 1]} ms`,
  );
} finally {
  await lab.stop();
}

import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { REPORT_BURST, REPORT_EVERY_MS, ReportBucket } from "../../worker/cluster/report-rate.js";
import { AGENT_TOKEN, api, clusterConfig, events, uniqueId } from "./helpers.js";

const tcpProbe = { kind: "tcp", name: "pg", port: 1, timeoutMs: 200 };
const report = (role: "standby" | "active", n: number) => ({
  role,
  mode: "auto",
  at: n,
  lastAction: null,
  lan: null,
  verdictSeq: n,
});

describe("agent report rate", () => {
  it("a flood of changing reports is refused with 429 and Retry-After after the burst; the history stays bounded", async () => {
    const id = uniqueId("flood");
    expect((await api("PUT", `/v1/clusters/${id}`, { body: clusterConfig([tcpProbe]) })).status).toBe(201);
    const before = (await events(id)).length;
    const statuses: number[] = [];
    let refused: Response | null = null;
    for (let n = 0; n < REPORT_BURST + 40; n++) {
      const res = await SELF.fetch(`https://edge.test/v1/clusters/${id}/report`, {
        method: "POST",
        headers: { authorization: `Bearer ${AGENT_TOKEN}`, "content-type": "application/json" },
        body: JSON.stringify(report(n % 2 ? "active" : "standby", n)),
      });
      statuses.push(res.status);
      if (res.status === 429 && !refused) refused = res;
      else await res.arrayBuffer();
    }
    expect(statuses.slice(0, REPORT_BURST).every((s) => s === 202)).toBe(true);
    expect(refused).not.toBeNull();
    expect(Number(refused!.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(((await refused!.json()) as any).error.code).toBe("rate_limited");
    const accepted = statuses.filter((s) => s === 202).length;
    expect(accepted).toBeLessThan(REPORT_BURST + 40);
    // Each accepted flip is one agent.changed event (and possibly notification events): bounded by what was accepted.
    const added = (await events(id)).length - before;
    expect(added).toBeLessThanOrEqual(accepted * 3);
  });

  it("never refuses a well-behaved agent: a report every keeper pass (1 s) plus one per verdict, for an hour", () => {
    const bucket = new ReportBucket();
    let t = 1_000_000;
    let refused = 0;
    for (let s = 0; s < 3600; s++) {
      t += 1000;
      if (bucket.take(t) > 0) refused++;
      // A verdict every 2 s (the shortest interval) kicks another pass that reports a new seq.
      if (s % 2 === 0 && bucket.take(t + 10) > 0) refused++;
    }
    expect(refused).toBe(0);
  });

  it("a burst of a failover's reports passes; the wait after the burst is one refill", () => {
    const bucket = new ReportBucket();
    for (let i = 0; i < REPORT_BURST; i++) expect(bucket.take(5_000 + i)).toBe(0);
    const wait = bucket.take(5_000 + REPORT_BURST);
    expect(wait).toBeGreaterThan(0);
    expect(wait).toBeLessThanOrEqual(REPORT_EVERY_MS);
  });
});

// A flood of events (what a stolen agent token can cause): the outbox stays capped per channel,
// dropping its oldest pending rows with a history event, and the status page's and the uptime
// API's reads stay bounded whatever the history holds. Inside workerd, on a real cluster's
// Durable Object storage; the flood is written straight into it (through the API it would take
// minutes).
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { ClusterMonitor } from "../../worker/cluster.js";
import { MAX_PENDING_PER_CHANNEL, Outbox } from "../../worker/notify/outbox.js";
import { api, clusterConfig, stubOf, uniqueId } from "./helpers.js";

const DAY = 24 * 3_600_000;
const SECRET = `whsec_${btoa("0123456789abcdef0123456789abcdef")}`;

async function cluster() {
  const id = uniqueId("flood");
  const put = await api("PUT", `/v1/clusters/${id}`, { body: clusterConfig([{ kind: "tcp", name: "pg", port: 1 }]) });
  expect(put.status, put.text).toBe(201);
  return id;
}

/** What an agent.changed event of a fresh failover holds, with the largest texts a report may carry. */
const agentChanged = (i: number) =>
  JSON.stringify({
    role: "active",
    mode: "auto",
    lastAction: { kind: "failover", at: 1_000 + i, ok: true, reason: `failover ${i} `.padEnd(2000, "x") },
    alerts: Array.from({ length: 20 }, (_, a) => `alert ${a} `.padEnd(2000, "y")),
    lan: null,
  });

describe("a flood of events", () => {
  it("caps the outbox per channel: the oldest pending rows go, with a notify.dropped event naming them", async () => {
    const id = await cluster();
    const channels = [
      { kind: "webhook" as const, name: "ops", url: "http://127.0.0.1:9/hook", secrets: [SECRET] },
      {
        kind: "webhook" as const,
        name: "quiet",
        url: "http://127.0.0.1:9/other",
        secrets: [SECRET],
        events: ["master.down" as const],
      },
    ];
    const total = MAX_PENDING_PER_CHANNEL + 150;
    const out = await runInDurableObject(stubOf(id), (_o: ClusterMonitor, state) => {
      const sql = state.storage.sql;
      const recorded: { type: string; reason: string; data: Record<string, unknown> }[] = [];
      const outbox = new Outbox(sql, (type, _at, reason, data) => recorded.push({ type, reason, data }));
      for (let i = 1; i <= total; i++) {
        outbox.enqueue(
          id,
          { id: i, at: Date.now(), type: "failover.done", reason: `failover ${i}`, data: {} },
          channels,
          null,
        );
      }
      const count = (channel: string) =>
        sql
          .exec<{ n: number }>("SELECT count(*) AS n FROM outbox WHERE channel = ? AND status = 'pending'", channel)
          .one().n;
      return {
        pending: count("ops"),
        quiet: count("quiet"),
        oldest: sql.exec<{ id: number }>("SELECT MIN(event_id) AS id FROM outbox WHERE channel = 'ops'").one().id,
        newest: sql.exec<{ id: number }>("SELECT MAX(event_id) AS id FROM outbox WHERE channel = 'ops'").one().id,
        recorded,
      };
    });
    // Capped, and the oldest went: the newest notifications are the ones still queued.
    expect(out.pending).toBeLessThanOrEqual(MAX_PENDING_PER_CHANNEL);
    expect(out.pending).toBeGreaterThan(MAX_PENDING_PER_CHANNEL / 2);
    expect(out.newest).toBe(total);
    expect(out.oldest).toBe(total - out.pending + 1);
    expect(out.quiet).toBe(0);
    // Never silently: every dropped row is accounted for in the history, by channel and event ids.
    expect(out.recorded.length).toBeGreaterThan(0);
    expect(out.recorded.every((r) => r.type === "notify.dropped" && r.data.channel === "ops")).toBe(true);
    expect(out.recorded.reduce((n, r) => n + (r.data.dropped as number), 0)).toBe(total - out.pending);
    expect(out.recorded[0]).toMatchObject({ data: { fromEventId: 1 } });
    expect(out.recorded[0]!.reason).toMatch(/undelivered notifications dropped for channel ops/);
  });

  it("bounds what the status page and the uptime API read, however many agent events the history holds", async () => {
    const id = await cluster();
    const total = 1_200;
    const status = await runInDurableObject(stubOf(id), (o: ClusterMonitor, state) => {
      const sql = state.storage.sql;
      const now = Date.now();
      for (let i = 0; i < total; i++) {
        sql.exec(
          "INSERT INTO events (at, type, reason, data) VALUES (?, 'agent.changed', ?, ?)",
          now - total + i,
          `failover ${i}`,
          agentChanged(i),
        );
      }
      return o.statusData(now, now - 90 * DAY, true);
    });
    if (!status.ok) throw new Error(`statusData: ${status.message}`);
    const actions = status.value.history.actions;
    expect(actions.length).toBeGreaterThan(0);
    expect(actions.length).toBeLessThanOrEqual(1_000);
    // The newest are the ones kept, with their reasons clipped.
    expect(actions.at(-1)).toMatchObject({ kind: "failover", ok: true, actionAt: 1_000 + total - 1 });
    for (const a of actions) expect(a.reason.length).toBeLessThanOrEqual(500);
    expect(JSON.stringify(status).length).toBeLessThan(1_000_000);

    const now = Date.now();
    const up = await api("GET", `/v1/clusters/${id}/uptime?from=${now - DAY}&to=${now}`);
    expect(up.status).toBe(200);
  });
});

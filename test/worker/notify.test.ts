// Notifications end to end inside workerd: events → outbox → loopback sinks (Node). Retries are
// driven deterministically through the Durable Object's `notifyTick(now, opts)` with an injected
// clock; the real alarm path is exercised too (a report's event is delivered on its own).
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { WebhookBody } from "../../protocol/webhook.js";
import type { ClusterMonitor } from "../../worker/cluster.js";
import type { DeliverOptions } from "../../worker/notify/outbox.js";
import { until } from "../support/until.js";
import { AGENT_TOKEN, api, clusterConfig, events, stubOf, uniqueId, useSinks } from "./helpers.js";

const SECRET = `whsec_${btoa("0123456789abcdef0123456789abcdef")}`;
const OLD_SECRET = `whsec_${btoa("oldoldoldoldoldoldoldoldoldoldol")}`;
const HOUR = 3_600_000;
const tcpProbe = { kind: "tcp", name: "pg", port: 1 };
const standby = { role: "standby", mode: "auto", at: 1, lastAction: null, lan: null, verdictSeq: null };
const failover = {
  ...standby,
  role: "active",
  lastAction: { kind: "failover", at: 2, ok: true, reason: "master down from edge and LAN" },
};

const sink = useSinks();

async function cluster(notifications: unknown[], extra: Record<string, unknown> = {}) {
  const id = uniqueId("n");
  const res = await api("PUT", `/v1/clusters/${id}`, { body: clusterConfig([tcpProbe], { notifications, ...extra }) });
  expect(res.status, res.text).toBe(201);
  return id;
}

const post = (id: string, body: unknown) => api("POST", `/v1/clusters/${id}/report`, { token: AGENT_TOKEN, body });

/** One notification pass (agent check + deliveries) at an injected time. */
const tick = (id: string, now: number, opts: DeliverOptions = {}) =>
  runInDurableObject(stubOf(id), (o: ClusterMonitor) => o.notifyTick(now, { random: () => 0, ...opts }));

const deliveries = async (id: string, status?: string) => {
  const res = await api("GET", `/v1/clusters/${id}/deliveries${status ? `?status=${status}` : ""}`);
  expect(res.status, res.text).toBe(200);
  return res.json as { deliveries: any[]; channels: any[] };
};

/** A first report, then silence past agentLostAfterSec: the agent.lost event, queued without a real alarm kick. */
async function agentLost(id: string, opts: DeliverOptions = {}) {
  expect((await post(id, standby)).status).toBe(202);
  const t0 = Date.now() + 61_000;
  await tick(id, t0, opts);
  return t0;
}

describe("channel config", () => {
  it("400 naming the field for a bad channel; secrets never returned", async () => {
    const id = uniqueId("n");
    const bad = await api("PUT", `/v1/clusters/${id}`, {
      body: clusterConfig([tcpProbe], {
        notifications: [{ kind: "webhook", name: "ops", url: "https://x.test/h", secrets: ["nope"] }],
      }),
    });
    expect(bad.status).toBe(400);
    expect(bad.json.error.field).toBe("notifications.0.secrets.0");
    const extra = await api("PUT", `/v1/clusters/${id}`, {
      body: clusterConfig([tcpProbe], {
        notifications: [{ kind: "slack", name: "ops", url: "https://hooks.slack.test/T/B/x", bogus: 1 }],
      }),
    });
    expect(extra.status).toBe(400);
    expect(extra.json.error.field).toMatch(/^notifications\.0/);
    const lost = await api("PUT", `/v1/clusters/${id}`, { body: clusterConfig([tcpProbe], { agentLostAfterSec: 1 }) });
    expect(lost.json.error.field).toBe("agentLostAfterSec");

    const ok = await api("PUT", `/v1/clusters/${id}`, {
      body: clusterConfig([tcpProbe], {
        notifications: [
          { kind: "webhook", name: "ops", url: "https://x.test/h", secrets: [OLD_SECRET, SECRET] },
          {
            kind: "slack",
            name: "chat",
            url: "https://hooks.slack.test/services/T0/B0/verysecrettoken",
            events: ["failover.done"],
          },
        ],
      }),
    });
    expect(ok.status).toBe(201);
    const got = await api("GET", `/v1/clusters/${id}`);
    for (const text of [ok.text, got.text]) {
      expect(text).not.toContain(SECRET.slice(6));
      expect(text).not.toContain(OLD_SECRET.slice(6));
      expect(text).not.toContain("verysecrettoken");
    }
    expect(got.json.config.notifications[0]).toMatchObject({ kind: "webhook", name: "ops", secretsSet: 2 });
    expect(got.json.config.notifications[0].secrets).toBeUndefined();
    expect(got.json.config.agentLostAfterSec).toBe(60);
  });

  it("deliveries: admin only, status filter validated", async () => {
    const id = await cluster([]);
    expect((await api("GET", `/v1/clusters/${id}/deliveries`, { token: AGENT_TOKEN })).status).toBe(401);
    const bad = await api("GET", `/v1/clusters/${id}/deliveries?status=lost`);
    expect(bad.status).toBe(400);
    expect(bad.json.error.field).toBe("status");
    expect((await api("GET", `/v1/clusters/${uniqueId("none")}/deliveries`)).status).toBe(404);
  });
});

describe("webhook delivery", () => {
  it("right after a report's event: failover.done, signed, verified in workerd and in Node, body per schema", async () => {
    const s = await sink({ secret: SECRET });
    const id = await cluster([{ kind: "webhook", name: "ops", url: s.url, secrets: [OLD_SECRET, SECRET] }]);
    expect((await post(id, standby)).status).toBe(202);
    expect((await post(id, failover)).status).toBe(202);
    // No tick: the report pulled the alarm in, and the alarm delivers.
    const [req] = await until("a delivery", async () => {
      const r = await s.requests();
      return r.length >= 1 && r;
    });
    expect(req!.verified).toBe(true); // Node's standardwebhooks
    const headers = {
      "webhook-id": req!.headers["webhook-id"]!,
      "webhook-timestamp": req!.headers["webhook-timestamp"]!,
      "webhook-signature": req!.headers["webhook-signature"]!,
    };
    expect(new Webhook(SECRET).verify(req!.body, headers)).toBeTruthy();
    expect(new Webhook(OLD_SECRET).verify(req!.body, headers)).toBeTruthy(); // rotation: both sign
    expect(() => new Webhook(SECRET).verify(req!.body.replace("failover", "failback"), headers)).toThrow();
    const body = WebhookBody.parse(JSON.parse(req!.body));
    expect(body).toMatchObject({
      type: "failover.done",
      data: { cluster: id, reason: "master down from edge and LAN", statusUrl: `https://edge.test/status/${id}` },
    });
    const hist = (await events(id)).find((e) => e.type === "failover.done");
    expect(hist).toMatchObject({ id: body.data.eventId, reason: "master down from edge and LAN" });
    const d = await until("the delivery listed", async () => {
      const v = await deliveries(id, "delivered");
      return v.deliveries.length === 1 && v;
    });
    expect(d.deliveries[0]).toMatchObject({
      id: headers["webhook-id"],
      eventType: "failover.done",
      channel: "ops",
      attempts: 1,
      lastStatus: 200,
    });
    expect(JSON.stringify(d)).not.toContain(SECRET.slice(6));
    // The loop still runs rounds: the alarm went back to the round's time.
    expect(await runInDurableObject(stubOf(id), (_, st) => st.storage.getAlarm())).toBeGreaterThan(Date.now() + 60_000);
  });

  it("fails twice then succeeds: three attempts, the same webhook-id, each attempt signed afresh", async () => {
    const s = await sink({ secret: SECRET, script: [{ status: 500 }, { status: 503 }] });
    const id = await cluster([{ kind: "webhook", name: "ops", url: s.url, secrets: [SECRET] }]);
    const t0 = await agentLost(id);
    let pending = (await deliveries(id, "pending")).deliveries;
    expect(pending).toHaveLength(1);
    expect(pending[0]).toMatchObject({ attempts: 1, lastStatus: 500, lastError: "HTTP 500" });
    expect(pending[0].nextAttemptAt).toBe(t0 + 2_500); // backoff 5 s × jitter floor ½
    expect((await tick(id, t0 + 2_499))!.attempted).toBe(0); // not due yet
    await tick(id, t0 + 2_500);
    pending = (await deliveries(id, "pending")).deliveries;
    expect(pending[0]).toMatchObject({ attempts: 2, lastStatus: 503, nextAttemptAt: t0 + 2_500 + 5_000 });
    await tick(id, t0 + 7_500);
    const reqs = await s.requests();
    expect(reqs.map((r) => r.answered)).toEqual([500, 503, 200]);
    expect(new Set(reqs.map((r) => r.headers["webhook-id"])).size).toBe(1);
    expect(new Set(reqs.map((r) => r.body)).size).toBe(1); // the very same bytes every time
    expect(reqs.every((r) => r.verified === true)).toBe(true);
    const done = (await deliveries(id, "delivered")).deliveries;
    expect(done).toMatchObject([
      { id: reqs[0]!.headers["webhook-id"], eventType: "agent.lost", attempts: 3, deliveredAt: t0 + 7_500 },
    ]);
    expect((await deliveries(id, "pending")).deliveries).toEqual([]);
  });

  it("gives up after 24 h of failures: failed, nothing silently dropped", async () => {
    const s = await sink({ then: { status: 500 } });
    const id = await cluster([{ kind: "webhook", name: "ops", url: s.url, secrets: [SECRET] }]);
    const t0 = await agentLost(id);
    let now = t0;
    for (let i = 0; i < 40 && (await deliveries(id, "pending")).deliveries.length > 0; i++) {
      now += HOUR;
      await tick(id, now);
    }
    const failed = (await deliveries(id, "failed")).deliveries;
    expect(failed).toHaveLength(1);
    expect(failed[0].lastError).toMatch(/^gave up after 24 h: HTTP 500/);
    expect(now - t0).toBeGreaterThan(22 * HOUR);
    expect(now - t0).toBeLessThanOrEqual(25 * HOUR);
    expect((await s.requests()).length).toBe(failed[0].attempts);
  });

  it("429 with Retry-After: waits exactly that long, then delivers", async () => {
    const s = await sink({ script: [{ status: 429, retryAfter: "120" }] });
    const id = await cluster([{ kind: "webhook", name: "ops", url: s.url, secrets: [SECRET] }]);
    const t0 = await agentLost(id);
    expect((await deliveries(id, "pending")).deliveries[0]).toMatchObject({
      lastStatus: 429,
      nextAttemptAt: t0 + 120_000,
    });
    expect((await tick(id, t0 + 119_999))!.attempted).toBe(0);
    await tick(id, t0 + 120_000);
    expect((await s.requests()).map((r) => r.answered)).toEqual([429, 200]);
    expect((await deliveries(id, "delivered")).deliveries).toHaveLength(1);
  });

  it("410 disables the channel, fails its rows and records why", async () => {
    const s = await sink({ then: { status: 410 } });
    const id = await cluster([{ kind: "webhook", name: "ops", url: s.url, secrets: [SECRET] }]);
    const t0 = await agentLost(id);
    const d = await deliveries(id);
    expect(d.deliveries[0]).toMatchObject({ status: "failed", lastStatus: 410 });
    expect(d.channels[0]).toMatchObject({ name: "ops", disabled: { reason: expect.stringMatching(/410 Gone/) } });
    const ev = (await events(id)).find((e) => e.type === "channel.disabled");
    expect(ev).toMatchObject({ data: { channel: "ops" } });
    expect(ev.reason).not.toContain("/hook"); // the URL's path (a credential for Slack) stays out
    // Later events are not queued for a disabled channel, and nothing more is sent.
    expect((await post(id, standby)).status).toBe(202); // agent.back
    await tick(id, t0 + HOUR);
    expect((await s.requests()).length).toBe(1);
    expect((await deliveries(id)).deliveries).toHaveLength(1);
  });

  it("a hanging endpoint times out and stays pending", async () => {
    const s = await sink({ script: [{ hang: true }] });
    const id = await cluster([{ kind: "webhook", name: "ops", url: s.url, secrets: [SECRET] }]);
    const t0 = await agentLost(id, { timeoutMs: 300 });
    const p = (await deliveries(id, "pending")).deliveries[0];
    expect(p).toMatchObject({ attempts: 1, lastStatus: null, lastError: "timed out after 300 ms" });
    await tick(id, p.nextAttemptAt);
    expect((await deliveries(id, "delivered")).deliveries).toHaveLength(1);
    expect((await s.requests()).length).toBe(2);
    expect(t0).toBeGreaterThan(0);
  });

  it("settled deliveries stay listable 30 days, then are dropped; the history keeps the event", async () => {
    const s = await sink();
    const id = await cluster([{ kind: "webhook", name: "ops", url: s.url, secrets: [SECRET] }]);
    const t0 = await agentLost(id);
    expect((await deliveries(id, "delivered")).deliveries).toHaveLength(1);
    await tick(id, t0 + 29 * 24 * HOUR);
    expect((await deliveries(id)).deliveries).toHaveLength(1);
    await tick(id, t0 + 30 * 24 * HOUR + HOUR);
    expect((await deliveries(id)).deliveries).toEqual([]);
    expect((await events(id)).some((e) => e.type === "agent.lost")).toBe(true);
  });

  it("a pending delivery is never dropped, however old", async () => {
    const s = await sink({ script: [{ status: 500 }] });
    const id = await cluster([{ kind: "webhook", name: "ops", url: s.url, secrets: [SECRET] }]);
    const t0 = await agentLost(id);
    expect((await deliveries(id, "pending")).deliveries).toHaveLength(1);
    // No pass ran for 31 days (say the account was suspended): the row is still there to send.
    await tick(id, t0 + 31 * 24 * HOUR);
    expect((await deliveries(id)).deliveries).toMatchObject([{ status: "delivered", attempts: 2 }]);
    expect((await s.requests()).map((r) => r.answered)).toEqual([500, 200]);
  });

  it("channel event filters apply", async () => {
    const s = await sink();
    const id = await cluster([
      { kind: "webhook", name: "ops", url: s.url, secrets: [SECRET], events: ["failover.done"] },
    ]);
    await agentLost(id);
    expect((await deliveries(id)).deliveries).toEqual([]);
    expect((await events(id)).some((e) => e.type === "agent.lost")).toBe(true); // history has it all the same
  });
});

describe("Slack delivery", () => {
  it("a burst goes out as one Block Kit message; the next waits a second", async () => {
    const s = await sink();
    const id = await cluster([{ kind: "slack", name: "chat", url: s.url }]);
    expect((await post(id, standby)).status).toBe(202);
    const t0 = Date.now() + 5_000; // well within agentLostAfterSec: no agent.lost here
    // One report, three events (failover, WAN-only alert, replication) queued together.
    const burst = {
      ...failover,
      alerts: ["master unreachable from the internet only"],
      replication: {
        at: 5,
        ok: false,
        durationMs: 1,
        rows: 0,
        bytes: 0,
        tablesCopied: 0,
        tablesSkipped: 0,
        error: "master: connection refused",
      },
    };
    // Hold the channel until t0 (as a Slack 429 would), so the real alarm the report pulls in
    // cannot send before this test's injected clock does: the timing below is deterministic.
    await runInDurableObject(stubOf(id), (_, st) => {
      st.storage.sql.exec("INSERT INTO notify_channels (name, url, not_before) VALUES ('chat', ?, ?)", s.url, t0);
    });
    expect((await post(id, burst)).status).toBe(202);
    expect((await tick(id, t0 - 1))!.attempted).toBe(0);
    await tick(id, t0);
    const reqs = await s.requests();
    expect(reqs).toHaveLength(1);
    const msg = JSON.parse(reqs[0]!.body) as { text: string; blocks: any[] };
    expect(msg.text).toContain(`[${id}]`);
    expect(msg.text).toContain("master down from edge and LAN");
    expect(msg.text).toContain("master: connection refused");
    expect(msg.blocks.length).toBeLessThanOrEqual(50);
    const sections = msg.blocks.filter((b) => b.type === "section");
    expect(sections).toHaveLength(3);
    for (const b of sections) expect(b.text.text.length).toBeLessThanOrEqual(3000);
    expect(JSON.stringify(msg.blocks)).toContain(`<https://edge.test/status/${id}|Status page>`);
    expect(msg.blocks[0]).toMatchObject({ type: "header" });
    expect((await deliveries(id, "delivered")).deliveries.map((d) => d.eventType).sort()).toEqual([
      "failover.done",
      "replication.failing",
      "wan.unreachable",
    ]);

    // Another event at once: held back ≥ 1 s after the last message to this channel.
    expect((await post(id, { ...burst, alerts: [] })).status).toBe(202); // wan.recovered
    expect((await tick(id, t0 + 999))!.attempted).toBe(0);
    expect((await tick(id, t0 + 1_000))!.delivered).toBe(1);
    const second = JSON.parse((await s.requests())[1]!.body) as { text: string; blocks: any[] };
    expect(second.text).toContain("Master reachable from the internet again");
    expect(second.blocks.filter((b) => b.type === "header")).toHaveLength(0);
  });

  it("a 429 from Slack holds the whole channel for Retry-After (HTTP date)", async () => {
    const s = await sink({
      script: [{ status: 429, retryAfter: new Date(Date.now() + 61_000 + 30_000).toUTCString() }],
    });
    const id = await cluster([{ kind: "slack", name: "chat", url: s.url }]);
    const t0 = await agentLost(id);
    const p = (await deliveries(id, "pending")).deliveries[0];
    expect(p.lastStatus).toBe(429);
    // An HTTP date has second precision: the wait is 29..30 s from t0.
    expect(p.nextAttemptAt - t0).toBeGreaterThan(28_000);
    expect(p.nextAttemptAt - t0).toBeLessThanOrEqual(30_000);
    await tick(id, p.nextAttemptAt);
    expect((await deliveries(id, "delivered")).deliveries).toHaveLength(1);
  });
});

describe("agent lost / back and master events", () => {
  it("agent lost after agentLostAfterSec without a report (via the real alarm), back on the next report", async () => {
    const s = await sink({ secret: SECRET });
    const id = await cluster([{ kind: "webhook", name: "ops", url: s.url, secrets: [SECRET] }], {
      agentLostAfterSec: 30,
    });
    expect((await post(id, standby)).status).toBe(202);
    // Not yet: 29 s of silence.
    await tick(id, Date.now() + 29_000);
    expect((await events(id)).some((e) => e.type === "agent.lost")).toBe(false);
    // Make the last report 31 s old, then let the DO's own alarm find it.
    await runInDurableObject(stubOf(id), (_, st) => {
      const row = st.storage.sql.exec<{ value: string }>("SELECT value FROM kv WHERE key = 'report'").one();
      const rec = JSON.parse(row.value);
      rec.receivedAt -= 31_000;
      st.storage.sql.exec("UPDATE kv SET value = ? WHERE key = 'report'", JSON.stringify(rec));
    });
    expect(await runDurableObjectAlarm(stubOf(id))).toBe(true);
    let hist = await events(id);
    expect(hist.filter((e) => e.type === "agent.lost")).toHaveLength(1);
    expect(hist.find((e) => e.type === "agent.lost").reason).toMatch(
      /no report from the agent for 3\d s \(agentLostAfterSec 30\)/,
    );
    await tick(id, Date.now() + HOUR); // only once, however long the silence
    expect((await events(id)).filter((e) => e.type === "agent.lost")).toHaveLength(1);
    expect((await post(id, standby)).status).toBe(202);
    hist = await events(id);
    expect(hist.filter((e) => e.type === "agent.back")).toHaveLength(1);
    const reqs = await until("two deliveries", async () => {
      const r = await s.requests();
      return r.length >= 2 && r;
    });
    expect(reqs.map((r) => JSON.parse(r.body).type)).toEqual(["agent.lost", "agent.back"]);
    expect(reqs.every((r) => r.verified)).toBe(true);
  });

  it("master down is an event with its reason, queued and delivered", async () => {
    const s = await sink();
    const id = await cluster([{ kind: "webhook", name: "ops", url: s.url, secrets: [SECRET] }], { fall: 1 });
    // The first round ran on creation; run rounds until the verdict is down (tcp port 1 refuses).
    for (let i = 0; i < 3 && !(await events(id)).some((e) => e.type === "master.down"); i++)
      await runDurableObjectAlarm(stubOf(id));
    const ev = (await events(id)).find((e) => e.type === "master.down");
    expect(ev.reason).toMatch(/down/);
    const reqs = await until("a delivery", async () => {
      const r = await s.requests();
      return r.length >= 1 && r;
    });
    expect(JSON.parse(reqs[0]!.body)).toMatchObject({
      type: "master.down",
      data: { reason: ev.reason, eventId: ev.id },
    });
  });
});

// Planned maintenance (issue 5) inside workerd: the admin API, the window in the signed verdict,
// maintenance.started / ended from the alarm loop (a scheduled window begins on its own), and the
// notifications a window silences or tags as planned.
import { describe, expect, it } from "vitest";
import { verifyEnvelope } from "../../protocol/signing.js";
import { Verdict } from "../../protocol/verdict.js";
import { WebhookBody } from "../../protocol/webhook.js";
import { until } from "../support/until.js";
import { AGENT_TOKEN, api, clusterConfig, events, getVerdict, uniqueId, useSinks, waitForSeq } from "./helpers.js";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const SECRET = `whsec_${btoa("0123456789abcdef0123456789abcdef")}`;
/** Port 1: nothing listens, so every round is `down`. */
const deadProbe = { kind: "tcp", name: "pg", port: 1 };

const sinks = useSinks();
const sink = (secret?: string) => sinks(secret ? { secret } : {});

async function cluster(extra: Record<string, unknown> = {}) {
  const id = uniqueId("m");
  const res = await api("PUT", `/v1/clusters/${id}`, { body: clusterConfig([deadProbe], extra) });
  expect(res.status, res.text).toBe(201);
  return id;
}

const start = (id: string, body: unknown, token?: string) =>
  api("POST", `/v1/clusters/${id}/maintenance`, { body, ...(token ? { token } : {}) });
const end = (id: string) => api("DELETE", `/v1/clusters/${id}/maintenance`);
const ofType = async (id: string, type: string) => (await events(id)).filter((e) => e.type === type);
const windows = async (id: string) => (await api("GET", `/v1/clusters/${id}`)).json.config.maintenance as any[];

async function signedVerdict(id: string) {
  const { envelope } = await getVerdict(id, "nonce-maint-0001");
  const check = await verifyEnvelope(envelope, (await api("GET", "/v1/keys", { token: null })).json.keys);
  expect(check.ok).toBe(true);
  return Verdict.parse((check as { payload: unknown }).payload);
}

describe("maintenance API", () => {
  it("a config PUT without `maintenance` keeps the windows the API opened; an explicit list replaces them", async () => {
    const id = await cluster();
    expect((await start(id, { to: Date.now() + HOUR, reason: "kernel upgrade" })).status).toBe(201);
    const again = await api("PUT", `/v1/clusters/${id}`, {
      body: { ...clusterConfig([deadProbe]), agentToken: undefined, fall: 4 },
    });
    expect(again.status).toBe(200);
    expect((await windows(id)).map((w) => w.reason)).toEqual(["kernel upgrade"]);
    await api("PUT", `/v1/clusters/${id}`, {
      body: { ...clusterConfig([deadProbe]), agentToken: undefined, maintenance: [] },
    });
    expect(await windows(id)).toEqual([]);
  });

  it("validates the body, naming the field; an invalid request changes nothing", async () => {
    const id = await cluster();
    const now = Date.now();
    const bad: Array<[unknown, string]> = [
      [{ reason: "x" }, "to"],
      [{ to: now + HOUR }, "reason"],
      [{ to: now + HOUR, reason: "  " }, "reason"],
      [{ to: now - 1, reason: "x" }, "to"], // in the past
      [{ from: now + 2 * HOUR, to: now + HOUR, reason: "x" }, "to"], // before from
      [{ from: now, to: now, reason: "x" }, "to"], // empty
      [{ from: now, to: now + 7 * DAY + 1, reason: "x" }, "to"], // over 7 days
      [{ to: now + HOUR, reason: "x", until: 5 }, "(body)"], // unknown field
      [{ from: "now", to: now + HOUR, reason: "x" }, "from"],
    ];
    for (const [body, field] of bad) {
      const res = await start(id, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.json.error.field, JSON.stringify(body)).toBe(field);
    }
    const malformed = await api("POST", `/v1/clusters/${id}/maintenance`, { raw: "{nope" });
    expect(malformed.json.error.code).toBe("malformed_json");
    expect(await windows(id)).toEqual([]);
    expect(await ofType(id, "maintenance.started")).toEqual([]);
    // Exactly 7 days is allowed.
    expect((await start(id, { from: now + HOUR, to: now + HOUR + 7 * DAY, reason: "x" })).status).toBe(201);
  });

  it("admin only; 404 for an unknown cluster and when no window is in force", async () => {
    const id = await cluster();
    const body = { to: Date.now() + HOUR, reason: "upgrade" };
    expect((await start(id, body, AGENT_TOKEN)).status).toBe(401);
    expect((await api("DELETE", `/v1/clusters/${id}/maintenance`, { token: AGENT_TOKEN })).status).toBe(401);
    expect((await start(uniqueId("none"), body)).status).toBe(404);
    expect((await end(id)).status).toBe(404);
    // A scheduled window is not in force yet: nothing to end.
    expect((await start(id, { from: Date.now() + HOUR, to: Date.now() + 2 * HOUR, reason: "later" })).status).toBe(201);
    const none = await end(id);
    expect(none.status).toBe(404);
    expect(none.json.error.code).toBe("no_active_maintenance");
    expect(await windows(id)).toHaveLength(1);
  });

  it("keeps the list bounded: windows ended over 90 days ago go, at most 50", async () => {
    const now = Date.now();
    const ancient = { from: now - 100 * DAY, to: now - 99 * DAY, reason: "ancient" };
    const old = Array.from({ length: 49 }, (_, i) => ({
      from: now - 80 * DAY + i * HOUR,
      to: now - 80 * DAY + i * HOUR + 1_000,
      reason: `old ${i}`,
    }));
    const id = await cluster({ maintenance: [ancient, ...old] });
    expect(await windows(id)).toHaveLength(50);
    expect((await start(id, { from: now + HOUR, to: now + 2 * HOUR, reason: "next" })).status).toBe(201);
    const list = await windows(id);
    expect(list).toHaveLength(50);
    expect(list.some((w) => w.reason === "ancient")).toBe(false);
    expect(list.at(-1)).toMatchObject({ reason: "next" });
    expect((await start(id, { from: now + 3 * HOUR, to: now + 4 * HOUR, reason: "after" })).status).toBe(201);
    const after = await windows(id);
    expect(after).toHaveLength(50);
    expect(after.some((w) => w.reason === "old 0")).toBe(false); // the oldest ended one made room
  });
});

describe("maintenance in the verdict and the history", () => {
  it("start now → the signed verdict carries it, maintenance.started; DELETE → ended, verdict clear", async () => {
    const id = await cluster();
    await waitForSeq(id, 1);
    const before = await signedVerdict(id);
    expect(before.maintenance).toBeNull();
    const to = Date.now() + HOUR;
    const res = await start(id, { to, reason: "kernel upgrade" });
    expect(res.status, res.text).toBe(201);
    expect(res.json).toMatchObject({ window: { to, reason: "kernel upgrade" }, active: true });
    const from = res.json.window.from as number;
    expect(from).toBeLessThanOrEqual(Date.now());
    const during = await signedVerdict(id);
    expect(during.maintenance).toEqual({ active: true, from, to, reason: "kernel upgrade" });
    const [started] = await ofType(id, "maintenance.started");
    expect(started).toMatchObject({
      reason: expect.stringContaining("kernel upgrade"),
      data: { planned: true, maintenance: { from, to } },
    });

    const ended = await end(id);
    expect(ended.status, ended.text).toBe(200);
    expect(ended.json.window.to).toBeLessThanOrEqual(Date.now());
    expect(ended.json.window.to).toBeGreaterThan(from);
    expect(await ofType(id, "maintenance.ended")).toHaveLength(1);
    expect((await signedVerdict(id)).maintenance).toBeNull();
    expect((await windows(id))[0]).toMatchObject({ from, to: ended.json.window.to, reason: "kernel upgrade" });
    expect((await end(id)).status).toBe(404); // ended already
  });

  it("a scheduled window begins and ends on its own (the alarm wakes for it, not for a round)", async () => {
    const id = await cluster(); // intervalSec 3600: no round comes in between
    await waitForSeq(id, 1);
    const from = Date.now() + 1_500;
    const to = from + 1_500;
    expect((await start(id, { from, to, reason: "scheduled" })).status).toBe(201);
    expect((await signedVerdict(id)).maintenance).toEqual({ active: false, from, to, reason: "scheduled" });
    expect(await ofType(id, "maintenance.started")).toEqual([]);

    const [started] = await until("maintenance.started", async () => {
      const e = await ofType(id, "maintenance.started");
      return e.length === 1 && e;
    });
    expect(started.at).toBeGreaterThanOrEqual(from);
    const during = await signedVerdict(id);
    if (during.issuedAt < to) expect(during.maintenance).toMatchObject({ active: true, from, to });
    const [ended] = await until("maintenance.ended", async () => {
      const e = await ofType(id, "maintenance.ended");
      return e.length === 1 && e;
    });
    expect(ended.at).toBeGreaterThanOrEqual(to);
    expect((await signedVerdict(id)).maintenance).toBeNull();
    expect((await signedVerdict(id)).seq).toBe(1); // no probe round ran for either
  });
});

describe("notifications during a window", () => {
  it("master.* and WAN alerts are history only, tagged planned; failover.done is delivered tagged planned", async () => {
    const hook = await sink(SECRET);
    const slack = await sink();
    const now = Date.now();
    // The window is in force from the start, and every round is down (fall 1): master.down at once.
    const id = await cluster({
      fall: 1,
      maintenance: [{ from: now - 1_000, to: now + HOUR, reason: "kernel upgrade" }],
      notifications: [
        { kind: "webhook", name: "pager", url: hook.url, secrets: [SECRET] },
        { kind: "slack", name: "chat", url: slack.url },
      ],
    });
    await waitForSeq(id, 1);
    const [down] = await ofType(id, "master.down");
    expect(down).toMatchObject({ data: { planned: true, maintenance: { reason: "kernel upgrade" } } });

    const report = { role: "standby", mode: "auto", at: 1, lastAction: null, lan: null, verdictSeq: null };
    expect((await api("POST", `/v1/clusters/${id}/report`, { token: AGENT_TOKEN, body: report })).status).toBe(202);
    const switched = {
      ...report,
      role: "active",
      alerts: ["master unreachable from the internet only"],
      lastAction: { kind: "failover", at: 2, ok: true, reason: "planned switchover: kernel upgrade" },
    };
    expect((await api("POST", `/v1/clusters/${id}/report`, { token: AGENT_TOKEN, body: switched })).status).toBe(202);
    expect((await ofType(id, "wan.unreachable"))[0]).toMatchObject({ data: { planned: true } });

    // The webhook gets maintenance.started and failover.done, never master.down nor wan.unreachable.
    const reqs = await until("failover.done at the webhook", async () => {
      const r = await hook.requests();
      return r.some((q) => q.body.includes("failover.done")) && r;
    });
    const bodies = reqs.map((r) => WebhookBody.parse(JSON.parse(r.body)));
    expect(reqs.every((r) => r.verified)).toBe(true);
    expect(bodies.map((b) => b.type).sort()).toEqual(["failover.done", "maintenance.started"]);
    const fo = bodies.find((b) => b.type === "failover.done")!;
    expect(fo.data.reason).toBe("planned switchover: kernel upgrade");
    expect(fo.data.details).toMatchObject({ planned: true, maintenance: { reason: "kernel upgrade" } });

    // Slack says "planned" in the title of the failover.
    const texts = await until("the failover at Slack", async () => {
      const t = (await slack.requests()).map((r) => (JSON.parse(r.body) as { text: string }).text).join("\n");
      return t.includes("Failover done") && t;
    });
    expect(texts).toMatch(/Failover done: the slave is active \(planned\): planned switchover: kernel upgrade/);
    expect(texts).toContain("Planned maintenance started");
    expect(texts).not.toContain("Master down");
    expect(texts).not.toContain("unreachable from the internet");

    const d = (await api("GET", `/v1/clusters/${id}/deliveries`)).json.deliveries as any[];
    expect(new Set(d.map((x) => x.eventType))).toEqual(new Set(["maintenance.started", "failover.done"]));
  });

  it("after the window: failback.done still tagged planned; alerts are sent again", async () => {
    const hook = await sink(SECRET);
    const id = await cluster({ notifications: [{ kind: "webhook", name: "pager", url: hook.url, secrets: [SECRET] }] });
    await waitForSeq(id, 1);
    expect((await start(id, { to: Date.now() + HOUR, reason: "disk swap" })).status).toBe(201);
    expect((await end(id)).status).toBe(200);
    const active = { role: "active", mode: "auto", at: 1, lastAction: null, lan: null, verdictSeq: null, alerts: [] };
    const post = (body: unknown) => api("POST", `/v1/clusters/${id}/report`, { token: AGENT_TOKEN, body });
    expect((await post(active)).status).toBe(202);
    expect(
      (
        await post({
          ...active,
          role: "standby",
          lastAction: { kind: "failback", at: 3, ok: true, reason: "the edge and the LAN both see the master up" },
        })
      ).status,
    ).toBe(202);
    expect(
      (await post({ ...active, role: "standby", alerts: ["slave's LAN view of the master is failing"] })).status,
    ).toBe(202);
    const reqs = await until("lan.failing at the webhook", async () => {
      const r = await hook.requests();
      return r.some((q) => q.body.includes("lan.failing")) && r;
    });
    const bodies = reqs.map((r) => WebhookBody.parse(JSON.parse(r.body)));
    expect(bodies.find((b) => b.type === "failback.done")!.data.details).toMatchObject({
      planned: true,
      maintenance: { reason: "disk swap" },
    });
    expect(bodies.find((b) => b.type === "lan.failing")!.data.details.planned).toBeUndefined();
  });
});

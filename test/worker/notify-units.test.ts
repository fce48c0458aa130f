// Pure parts of notifications: event derivation, backoff, Retry-After, Slack limits, signing
// (checked against the `standardwebhooks` package, inside workerd).
import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { AgentReport, describeFence, type FenceResult } from "../../protocol/report.js";
import { signWebhook, verifyWebhook } from "../../protocol/webhook.js";
import { agentReport as report } from "../support/agent-report.js";
import { backoffMs, GIVE_UP_AFTER_MS, retryAfterMs } from "../../worker/notify/backoff.js";
import { Channels } from "../../worker/notify/channels.js";
import { fromReport, fromVerdictChange } from "../../worker/notify/events.js";
import {
  SLACK_MAX_BLOCKS,
  SLACK_MAX_EVENTS_PER_MESSAGE,
  SLACK_MAX_SECTION,
  SLACK_MAX_TEXT,
  slackMessage,
} from "../../worker/notify/slack.js";

const SECRET = `whsec_${btoa("0123456789abcdef0123456789abcdef")}`;
const OTHER = `whsec_${btoa("fedcba9876543210fedcba9876543210")}`;

describe("events from verdict changes", () => {
  it("maps down / degraded / up, and ignores the monitor starting", () => {
    expect(fromVerdictChange({ from: "up", to: "down", reason: "r" })?.type).toBe("master.down");
    expect(fromVerdictChange({ from: "up", to: "degraded", reason: "r" })?.type).toBe("master.degraded");
    expect(fromVerdictChange({ from: "down", to: "up", reason: "back" })).toMatchObject({
      type: "master.up",
      reason: "back",
    });
    expect(fromVerdictChange({ from: "unknown", to: "up", reason: "r" })).toBeNull();
    expect(fromVerdictChange({ from: "up", to: "unknown", reason: "r" })).toBeNull();
  });
});

describe("events from agent reports", () => {
  const failover = { kind: "failover" as const, at: 5, ok: true, reason: "edge down and LAN down" };
  it("failover done once, when the agent is active after an ok failover", () => {
    const prev = report();
    const next = report({ role: "active", lastAction: failover });
    expect(fromReport(prev, next).map((e) => e.type)).toEqual(["failover.done"]);
    expect(fromReport(next, { ...next, at: 9 })).toEqual([]); // the same action again: no news
  });
  it("a failover or failback whose services did not follow is news; one still in progress is not", () => {
    const inProgress = report({
      role: "active",
      lastAction: { ...failover, ok: false, inProgress: true, reason: "edge down (in progress)" },
    });
    const failed = report({
      role: "active",
      lastAction: { ...failover, ok: false, reason: "edge down; but slave-sip not answering after 60000 ms" },
    });
    expect(fromReport(report(), inProgress)).toEqual([]);
    expect(fromReport(inProgress, failed)).toMatchObject([
      { type: "failover.failed", reason: expect.stringMatching(/not answering/) },
    ]);
    expect(fromReport(inProgress, report({ role: "active", lastAction: failover })).map((e) => e.type)).toEqual([
      "failover.done",
    ]);
    const back = { kind: "failback" as const, at: 9, ok: false, reason: "master up; but status is running" };
    expect(fromReport(failed, report({ role: "standby", lastAction: back })).map((e) => e.type)).toEqual([
      "failback.failed",
    ]);
    expect(
      fromReport(failed, report({ role: "active", lastAction: { kind: "enforce", at: 9, ok: false, reason: "x" } })),
    ).toEqual([]);
  });
  it("a failover after fencing the master says how the fence went, in the Slack text too", () => {
    const fence = (ok: boolean, outcome: "fenced" | "held" | "proceeded"): FenceResult => ({
      at: 4,
      ok,
      outcome,
      why: "the master is degraded: it answers, its telephony fails",
      durationMs: 1234,
      commands: [
        {
          command: "#1 ssh",
          ok,
          exitCode: ok ? 0 : 255,
          timedOut: false,
          spawnError: null,
          durationMs: 1200,
          output: "",
        },
      ],
    });
    const fenced = fence(true, "fenced");
    const done = report({
      role: "active",
      lastAction: { ...failover, reason: `edge and LAN degraded: fail over; ${describeFence(fenced)}`, fence: fenced },
    });
    const [ev] = fromReport(report(), done);
    expect(ev).toMatchObject({ type: "failover.done", data: { fence: { ok: true, outcome: "fenced" } } });
    const slack = slackMessage([{ cluster: "paris", type: ev!.type, at: 5, reason: ev!.reason }], null);
    expect(slack.text).toContain("Failover done: the slave is active: edge and LAN degraded: fail over; master fenced");
    expect(slack.text).toContain("1 command(s) ok in 1.2 s");

    // Held: the slave stays standby; the failover is reported failed once, saying why.
    const held = fence(false, "held");
    const holding = report({
      role: "standby",
      lastAction: { ...failover, ok: false, reason: `edge degraded; ${describeFence(held)}`, fence: held },
    });
    const [failed] = fromReport(report(), holding);
    expect(failed).toMatchObject({ type: "failover.failed", data: { role: "standby", fence: { outcome: "held" } } });
    const text = slackMessage([{ cluster: "paris", type: failed!.type, at: 5, reason: failed!.reason }], null).text;
    // The title fits a failover held by fencing as well as services that did not start.
    expect(text).toContain("Failover FAILED: the slave did not take over: edge degraded; fencing the master FAILED");
    expect(text).toContain("fencing the master FAILED (the master is degraded: it answers, its telephony fails)");
    expect(text).toContain("#1 ssh exited 255; holding as standby, services not started");
    // Without a fence (an older agent, or a down master): no fence in the event.
    expect(fromReport(report(), report({ role: "active", lastAction: failover }))[0]!.data).not.toHaveProperty("fence");
    // A report from an agent that fenced parses on the worker, as older workers parse it (the field optional).
    expect(AgentReport.parse(holding).lastAction?.fence?.commands[0]?.command).toBe("#1 ssh");
  });
  it("failback done when standby after a failback", () => {
    const next = report({ role: "standby", lastAction: { kind: "failback", at: 9, ok: true, reason: "master up" } });
    expect(fromReport(report({ role: "active", lastAction: failover }), next)).toMatchObject([
      { type: "failback.done", reason: "master up" },
    ]);
  });
  it("replication flips", () => {
    const r = (ok: boolean) => ({
      at: 1,
      ok,
      durationMs: 1,
      rows: 1,
      bytes: 1,
      tablesCopied: 1,
      tablesSkipped: 0,
      error: ok ? null : "pg: boom",
    });
    expect(fromReport(report({ replication: r(true) }), report({ replication: r(false) }))).toMatchObject([
      { type: "replication.failing", reason: "pg: boom" },
    ]);
    expect(fromReport(report({ replication: r(false) }), report({ replication: r(false) }))).toEqual([]);
    expect(fromReport(report({ replication: r(false) }), report({ replication: r(true) })).map((e) => e.type)).toEqual([
      "replication.recovered",
    ]);
  });
  it("WAN-only and LAN-view alerts appear and clear", () => {
    const wan = report({ alerts: ["master unreachable from the internet only"] });
    const lan = report({ alerts: ["slave's LAN view of the master is failing"] });
    expect(fromReport(report(), wan).map((e) => e.type)).toEqual(["wan.unreachable"]);
    expect(fromReport(wan, report()).map((e) => e.type)).toEqual(["wan.recovered"]);
    expect(fromReport(wan, lan).map((e) => e.type)).toEqual(["wan.recovered", "lan.failing"]);
    expect(fromReport(lan, report()).map((e) => e.type)).toEqual(["lan.recovered"]);
    const silent = report({
      role: "active",
      alerts: ["active slave's telephony not answering: services running, but slave-sip not answering (timed out)"],
    });
    expect(fromReport(report({ role: "active" }), silent).map((e) => e.type)).toEqual(["telephony.failing"]);
    expect(fromReport(silent, report({ role: "active" })).map((e) => e.type)).toEqual(["telephony.recovered"]);
  });
});

describe("backoff and Retry-After", () => {
  it("grows exponentially with jitter, capped at an hour per step", () => {
    expect(backoffMs(1, () => 0)).toBe(2_500);
    expect(backoffMs(1, () => 0.999999)).toBeLessThanOrEqual(5_000);
    expect(backoffMs(3, () => 0)).toBe(10_000);
    expect(backoffMs(30, () => 1)).toBe(3_600_000);
    expect(backoffMs(30, () => 0)).toBe(1_800_000);
  });
  it("reads seconds and HTTP dates, rejects nonsense, caps at 24 h", () => {
    const now = Date.UTC(2026, 0, 1);
    expect(retryAfterMs("120", now)).toBe(120_000);
    expect(retryAfterMs(new Date(now + 30_000).toUTCString(), now)).toBe(30_000);
    expect(retryAfterMs(new Date(now - 30_000).toUTCString(), now)).toBe(0);
    expect(retryAfterMs("soon", now)).toBeNull();
    expect(retryAfterMs(null, now)).toBeNull();
    expect(retryAfterMs("999999999", now)).toBe(GIVE_UP_AFTER_MS);
  });
});

describe("Slack messages", () => {
  const ev = (i: number, reason = `reason ${i}`) => ({
    cluster: "paris",
    type: "master.down" as const,
    at: 1_700_000_000_000 + i,
    reason,
  });
  it("one event: blocks + text fallback naming cluster, event, reason, time, and the status link", () => {
    const m = slackMessage([ev(0, "nothing answers <script>")], "https://edge.test/status/paris");
    expect(m.text).toContain("[paris]");
    expect(m.text).toContain("nothing answers <script>");
    expect(m.text).toContain(new Date(1_700_000_000_000).toISOString());
    const section = m.blocks.find((b) => b.type === "section") as { text: { text: string } };
    expect(section.text.text).toContain("Master down");
    expect(section.text.text).toContain("&lt;script&gt;"); // mrkdwn escaped
    expect(JSON.stringify(m.blocks)).toContain("<https://edge.test/status/paris|Status page>");
    expect(JSON.stringify(m.blocks)).toContain("master.down");
  });
  it("stays within Slack's limits at the largest batch and longest reasons", () => {
    const events = Array.from({ length: SLACK_MAX_EVENTS_PER_MESSAGE }, (_, i) => ev(i, "x".repeat(5_000)));
    const m = slackMessage(events, "https://edge.test/status/paris");
    expect(m.blocks.length).toBeLessThanOrEqual(SLACK_MAX_BLOCKS);
    expect(m.text.length).toBeLessThanOrEqual(SLACK_MAX_TEXT);
    for (const b of m.blocks)
      if (b.type === "section") expect((b.text as { text: string }).text.length).toBeLessThanOrEqual(SLACK_MAX_SECTION);
    expect(() => slackMessage([...events, ev(99)], null)).toThrow(RangeError);
  });
});

describe("Standard Webhooks signatures", () => {
  const body = JSON.stringify({ type: "master.down", n: 1 });
  it("our signature verifies with the standardwebhooks package, with every secret of a rotation", async () => {
    const ts = Math.floor(Date.now() / 1000);
    const headers = await signWebhook([OTHER, SECRET], "msg_abc", ts, body);
    expect(headers["webhook-signature"].split(" ")).toHaveLength(2);
    expect(headers["webhook-signature"]).toMatch(/^v1,[A-Za-z0-9+/]+=* v1,[A-Za-z0-9+/]+=*$/);
    expect(new Webhook(SECRET).verify(body, { ...headers })).toEqual(JSON.parse(body));
    expect(new Webhook(OTHER).verify(body, { ...headers })).toEqual(JSON.parse(body));
    expect(await verifyWebhook(SECRET, new Headers({ ...headers }), body)).toBe(true);
  });
  it("a tampered body, a wrong secret or an old timestamp fails", async () => {
    const ts = Math.floor(Date.now() / 1000);
    const headers = { ...(await signWebhook([SECRET], "msg_abc", ts, body)) };
    expect(() => new Webhook(SECRET).verify(body.replace("1", "2"), headers)).toThrow();
    expect(() => new Webhook(OTHER).verify(body, headers)).toThrow();
    const old = { ...(await signWebhook([SECRET], "msg_abc", ts - 3600, body)) };
    expect(() => new Webhook(SECRET).verify(body, old)).toThrow();
    expect(await verifyWebhook(SECRET, new Headers(old), body)).toBe(false);
    expect(await verifyWebhook(SECRET, new Headers(headers), `${body} `)).toBe(false);
  });
});

describe("channel config", () => {
  it("is strict and names the field", () => {
    const bad = (v: unknown) => {
      const r = Channels.safeParse(v);
      return r.success ? null : r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
    };
    expect(bad([{ kind: "webhook", name: "a", url: "https://x.test/h", secrets: [SECRET] }])).toBeNull();
    expect(bad([{ kind: "webhook", name: "a", url: "https://x.test/h", secrets: ["plain"] }])).toMatch(
      /^0\.secrets\.0: /,
    );
    expect(bad([{ kind: "webhook", name: "a", url: "https://x.test/h", secrets: [] }])).toMatch(/^0\.secrets: /);
    expect(bad([{ kind: "slack", name: "a", url: "ftp://x.test/h" }])).toMatch(/^0\.url: /);
    expect(bad([{ kind: "slack", name: "a", url: "https://x.test/h", events: ["nope"] }])).toMatch(/^0\.events\.0: /);
    expect(bad([{ kind: "slack", name: "a", url: "https://x.test/h", extra: 1 }])).toMatch(/extra/);
    expect(
      bad([
        { kind: "slack", name: "a", url: "https://x.test/h" },
        { kind: "slack", name: "a", url: "https://x.test/i" },
      ]),
    ).toMatch(/^1\.name: duplicate/);
  });
});

import { runInDurableObject, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { acceptVerdict } from "../../agent/intake/accept.js";
import { Verdict } from "../../protocol/verdict.js";
import {
  ADMIN,
  api,
  clusterConfig,
  getVerdict,
  runRound,
  stubOf,
  target,
  uniqueId,
  waitForSeq,
  webAndSipCluster,
} from "./helpers.js";

/**
 * A quorum of vantage points with real sockets. Locally every vantage runs in one place, so the
 * worker project's test bindings (vitest.config.ts) give some vantages their own view: `dead-1`
 * and `dead-2` probe 127.0.0.9, where nothing listens (the targets bind 127.0.0.1 only); `mute-1`
 * answers only after the cluster's deadline and `mute-2` fails. TRACE_URL is a loopback server
 * answering colo=TST. Other names see the targets as they are.
 */
async function cluster(vantages: unknown[], extra: Record<string, unknown> = {}) {
  return webAndSipCluster("quorum", { vantages, ...extra });
}

const votes = (v: { quorum: { votes: { name: string; vote: string }[] } }) =>
  Object.fromEntries(v.quorum.votes.map((x) => [x.name, x.vote]));

describe("a quorum of vantage points", () => {
  it("three vantages, one sees the master dead: the verdict stays up; votes and locations are shown", async () => {
    const { id } = await cluster([{ name: "ok-1", locationHint: "weur" }, { name: "ok-2" }, { name: "dead-1" }]);
    for (let i = 0; i < 3; i++) await runRound(id);
    const { verdict } = await getVerdict(id);
    expect(verdict.state).toBe("up");
    expect(verdict.quorum).toMatchObject({ quorum: 2, outcome: "up" });
    expect(votes(verdict)).toEqual({ "ok-1": "up", "ok-2": "up", "dead-1": "down" });
    expect(verdict.lastRound.probes.every((p: { ok: boolean }) => p.ok)).toBe(true);

    const view = (await api("GET", `/v1/clusters/${id}`)).json;
    expect(view.verdict.quorum.outcome).toBe("up");
    expect(view.vantages).toEqual([
      expect.objectContaining({ name: "ok-1", locationHint: "weur", location: "TST", vote: "up" }),
      expect.objectContaining({ name: "ok-2", location: "TST", vote: "up" }),
      expect.objectContaining({
        name: "dead-1",
        location: "TST",
        vote: "down",
        reason: expect.stringContaining("nothing answers"),
      }),
    ]);
    const page = await SELF.fetch(`https://edge.test/status/${id}`, { headers: { authorization: `Bearer ${ADMIN}` } });
    const html = await page.text();
    expect(html).toContain('id="vantages"');
    expect(html).toContain("dead-1");
    expect(html).toContain("TST");
    expect(html).toContain("asked for weur");
  });

  it("two of three see it dead: down, saying which vantages voted what", async () => {
    const { id } = await cluster([{ name: "ok-1" }, { name: "dead-1" }, { name: "dead-2" }], { rise: 1 });
    expect((await getVerdict(id)).verdict.state).toBe("unknown");
    let v = await runRound(id);
    for (let i = 0; v.state !== "down" && i < 3; i++) v = await runRound(id);
    expect(v.state).toBe("down");
    expect(v.reason).toMatch(
      /2 of 3 answering vantages see nothing answering \(quorum 2\): dead-1: .*; dead-2: .*; outvoted: ok-1/,
    );
    expect(votes(v)).toEqual({ "ok-1": "up", "dead-1": "down", "dead-2": "down" });
  });

  it("two vantages silent (one late, one failing): no opinion, never down, then unknown", async () => {
    const probes = (web: number, sip: number) => [
      { kind: "http", name: "web", scheme: "http", port: web, timeoutMs: 500 },
      { kind: "sip", name: "sip", transport: "tcp", port: sip, timeoutMs: 500 },
    ];
    const { id, web, sip } = await cluster([{ name: "ok-1" }, { name: "ok-2" }, { name: "mute-1" }], { fall: 2 });
    expect((await runRound(id)).state).toBe("up"); // two of three answered: a quorum
    const res = await api("PUT", `/v1/clusters/${id}`, {
      body: {
        ...clusterConfig(probes(web.port, sip.port), { fall: 2 }),
        vantages: [{ name: "ok-1" }, { name: "mute-1" }, { name: "mute-2" }],
        agentToken: undefined,
      },
    });
    expect(res.status, res.text).toBe(200);
    await web.set("closed");
    await sip.set("closed"); // the one vantage that still answers sees it dead
    const held = await runRound(id);
    expect(held.state).toBe("up"); // one round without opinion: the verdict holds
    const last = await runRound(id);
    expect(last.state).toBe("unknown"); // fall 2 of them: unknown, never down
    expect(last.reason).toBe(
      "unknown after 2 consecutive rounds without a quorum (fall 2): no quorum: 1 of 3 vantages answered (quorum 2); silent: mute-1, mute-2",
    );
    expect(votes(last)).toEqual({ "ok-1": "down", "mute-1": "silent", "mute-2": "silent" });
    expect(last.quorum.outcome).toBe("none");
    // The last round with an opinion stays the verdict's last round: its age grows.
    expect(last.lastRound.class).toBe("up");
    expect(last.lastRound.at).toBeLessThan(last.quorum.at);
    const view = (await api("GET", `/v1/clusters/${id}`)).json;
    expect(view.vantages.find((r: { name: string }) => r.name === "mute-1")).toMatchObject({
      vote: "silent",
      durationMs: null,
      reason: expect.stringMatching(/^no answer within \d+ ms$/),
    });
  });

  it("quorum is validated against the vantages; names are unique; a location hint is one of Cloudflare's", async () => {
    const probes = [{ kind: "tcp", name: "t", port: 1 }];
    for (const [extra, field] of [
      [{ vantages: [{ name: "a" }, { name: "b" }], quorum: 3 }, "quorum"],
      [{ vantages: [{ name: "a" }, { name: "a" }] }, "vantages.1.name"],
      [{ vantages: [{ name: "a", locationHint: "mars" }] }, "vantages.0.locationHint"],
      [{ vantages: Array.from({ length: 6 }, (_, i) => ({ name: `v${i}` })) }, "vantages"],
      [{ vantages: [] }, "vantages"],
    ] as const) {
      const res = await api("PUT", `/v1/clusters/${uniqueId()}`, { body: clusterConfig(probes, extra) });
      expect(res.status, JSON.stringify(extra)).toBe(400);
      expect(res.json.error.field).toBe(field);
    }
  });

  it("one vantage (the default): today's behaviour, no votes in the verdict, no vantage objects asked", async () => {
    const web = await target("http");
    const single = uniqueId("single");
    const res = await api("PUT", `/v1/clusters/${single}`, {
      body: clusterConfig([{ kind: "http", name: "web", scheme: "http", port: web.port, timeoutMs: 500 }]),
    });
    expect(res.json.config).toMatchObject({ vantages: [{ name: "edge" }] });
    await waitForSeq(single, 1);
    const v = await runRound(single);
    expect(v.state).toBe("up");
    expect(v).not.toHaveProperty("quorum");
    expect((await api("GET", `/v1/clusters/${single}`)).json.vantages).toEqual([]);
    const monitor = await runInDurableObject(stubOf(single), (_, state) =>
      state.storage.sql.exec<{ value: string }>("SELECT value FROM kv WHERE key = 'monitor'").one(),
    );
    expect(JSON.parse(monitor.value).vantages).toEqual([]);
  });

  it("verdicts with the votes pass the agent's check, and parse where the field is unknown; old ones parse too", async () => {
    const { id } = await cluster([{ name: "ok-1" }, { name: "ok-2" }]);
    const { envelope, verdict } = await getVerdict(id, "nonce-0123456789");
    expect(verdict.quorum).toBeDefined();
    const keys = (await api("GET", "/v1/keys", { token: null })).json.keys;
    const accepted = await acceptVerdict(envelope, {
      publicKeys: keys,
      clusterId: id,
      maxVerdictAgeMs: 60_000,
      channel: { kind: "poll", nonce: "nonce-0123456789" },
    });
    expect(accepted).toMatchObject({ ok: true, verdict: { quorum: { outcome: "up" } } });
    // An agent that predates the field: its schema is today's without it.
    const before = Verdict.omit({ quorum: true });
    expect(before.safeParse(verdict).success).toBe(true);
    // A verdict from a worker that predates the field.
    const { quorum: _, ...old } = verdict;
    expect(Verdict.parse(old)).not.toHaveProperty("quorum");
  });
});

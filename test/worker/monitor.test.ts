import {
  createExecutionContext,
  createScheduledController,
  env,
  runInDurableObject,
  waitOnExecutionContext,
} from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../../worker/index.js";
import {
  AGENT_TOKEN,
  api,
  clusterConfig,
  getVerdict,
  runRound,
  stubOf,
  target,
  uniqueId,
  waitForSeq,
} from "./helpers.js";

/**
 * The probe loop for real: the Durable Object's alarm handler probes loopback targets whose
 * behaviour the test scripts. After the first round (which runs on its own, at once), the
 * interval is an hour, so each `runRound` is exactly one round and the assertions are exact.
 */
async function pbx() {
  const web = await target("http");
  const sip = await target("sip-tcp");
  const id = uniqueId("pbx");
  const res = await api("PUT", `/v1/clusters/${id}`, {
    body: clusterConfig([
      { kind: "http", name: "web", scheme: "http", port: web.port, timeoutMs: 500 },
      { kind: "sip", name: "sip", transport: "tcp", port: sip.port, timeoutMs: 500 },
    ]),
  });
  expect(res.status).toBe(201);
  await waitForSeq(id, 1);
  return { id, web, sip };
}

const events = async (id: string) =>
  (await api("GET", `/v1/clusters/${id}/events?limit=500`, { token: AGENT_TOKEN })).json.events.filter(
    (e: { type: string }) => e.type === "verdict.changed",
  );

describe("probe loop", () => {
  it("runs the first round at once, then re-arms the alarm one interval later", async () => {
    const { id } = await pbx();
    const alarm = await runInDurableObject(stubOf(id), (_, state) => state.storage.getAlarm());
    expect(alarm).not.toBeNull();
    expect(alarm! - Date.now()).toBeGreaterThan(3500_000); // interval 3600 s
    const before = (await getVerdict(id)).verdict.seq;
    const v = await runRound(id);
    expect(v.seq).toBe(before + 1);
    expect(v.lastRound.probes.map((p: { name: string }) => p.name)).toEqual(["web", "sip"]);
  });

  it("declares up after rise good rounds, with the reason in the history", async () => {
    const { id } = await pbx(); // round 1 done: up streak 1, rise 2 → still unknown
    expect((await getVerdict(id)).verdict.state).toBe("unknown");
    expect((await runRound(id)).state).toBe("up");
    const [change] = await events(id);
    expect(change).toMatchObject({ data: { from: "unknown", to: "up" } });
    expect(change.reason).toMatch(/^up after 2 consecutive good rounds \(rise 2\): all 2 probes answered$/);
  });

  it("crashed SIP on a live host: degraded exactly at the third bad round; back up after two good", async () => {
    const { id, sip } = await pbx();
    await runRound(id);
    await sip.set("closed");
    expect((await runRound(id)).state).toBe("up");
    expect((await runRound(id)).state).toBe("up");
    const v = await runRound(id);
    expect(v.state).toBe("degraded");
    expect(v.reason).toContain("sip: connection refused or host unreachable");
    await sip.set("ok");
    expect((await runRound(id)).state).toBe("degraded");
    expect((await runRound(id)).state).toBe("up");
    expect((await events(id)).map((e: { data: { to: string } }) => e.data.to)).toEqual(["up", "degraded", "up"]);
  });

  it("hung SIP (accepts, never answers) is degraded too", async () => {
    const { id, sip } = await pbx();
    await sip.set("silent");
    for (let i = 0; i < 3; i++) await runRound(id);
    const v = (await getVerdict(id)).verdict;
    expect(v.state).toBe("degraded");
    expect(v.lastRound.probes.find((p: { name: string }) => p.name === "sip").detail).toBe("timeout after 500 ms");
  });

  it("master dead: down; a single lost round afterwards does not bring it back", async () => {
    const { id, web, sip } = await pbx();
    await runRound(id); // up
    await web.set("closed");
    await sip.set("closed");
    for (let i = 0; i < 3; i++) await runRound(id);
    expect((await getVerdict(id)).verdict).toMatchObject({
      state: "down",
      reason: expect.stringContaining("nothing answers"),
    });
    await web.set("ok");
    await sip.set("ok");
    expect((await runRound(id)).state).toBe("down");
    await web.set("closed");
    await sip.set("closed");
    expect((await runRound(id)).state).toBe("down");
  });

  it("one lost probe while up changes nothing", async () => {
    const { id, sip } = await pbx();
    await runRound(id);
    await sip.set("ok", { script: ["silent"] }); // the next connection only is lost
    for (let i = 0; i < 4; i++) expect((await runRound(id)).state).toBe("up");
    expect(await events(id)).toHaveLength(1);
  });

  it("the cron trigger re-arms a lost alarm and leaves armed ones alone", async () => {
    const { id } = await pbx();
    await runInDurableObject(stubOf(id), (_, state) => state.storage.deleteAlarm());
    const ctx = createExecutionContext();
    // A run two hours on: the lost loop's lease (its one-hour interval and a grace) has run out.
    const scheduledTime = Date.now() + 7_200_000;
    await worker.scheduled(createScheduledController({ cron: "* * * * *", scheduledTime }), env, ctx);
    await waitOnExecutionContext(ctx);
    // Re-armed for "now": the loop resumes with the next round.
    await waitForSeq(id, 2);
    const armed = await runInDurableObject(stubOf(id), (_, state) => state.storage.getAlarm());
    expect(armed).not.toBeNull();
    expect((await stubOf(id).ensureAlarm()).state).toBe("armed");
  });

  it("a deleted cluster stops probing", async () => {
    const { id, sip } = await pbx();
    expect((await api("DELETE", `/v1/clusters/${id}`)).status).toBe(204);
    const alarm = await runInDurableObject(stubOf(id), (_, state) => state.storage.getAlarm());
    expect(alarm).toBeNull();
    const seen = (await sip.info()).connections;
    await new Promise((r) => setTimeout(r, 200));
    expect((await sip.info()).connections).toBe(seen);
  });

  it("keeps unknown through the startup grace", async () => {
    const web = await target("http");
    const id = uniqueId("grace");
    await api("PUT", `/v1/clusters/${id}`, {
      body: clusterConfig([{ kind: "http", name: "web", scheme: "http", port: web.port }], { graceSec: 600, rise: 1 }),
    });
    await waitForSeq(id, 1);
    expect((await runRound(id)).state).toBe("unknown");
  });
});

describe("reconfiguration", () => {
  it("a shorter interval takes effect without waiting out the old one", async () => {
    const { id, web, sip } = await pbx(); // interval 3600 s, alarm an hour away
    const res = await api("PUT", `/v1/clusters/${id}`, {
      body: {
        ...clusterConfig([
          { kind: "http", name: "web", scheme: "http", port: web.port },
          { kind: "sip", name: "sip", port: sip.port },
        ]),
        intervalSec: 30,
        confirmIntervalSec: 30,
        agentToken: undefined,
      },
    });
    expect(res.status).toBe(200);
    const alarm = await runInDurableObject(stubOf(id), (_, state) => state.storage.getAlarm());
    expect(alarm! - Date.now()).toBeLessThanOrEqual(30_000);
    expect(alarm! - Date.now()).toBeGreaterThan(20_000);
  });
});

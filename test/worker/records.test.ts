import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { AGENT_TOKEN, api, clusterConfig, getVerdict, stubOf, uniqueId } from "./helpers.js";

const report = { role: "standby", mode: "auto", at: 1, lastAction: null, lan: null, verdictSeq: null };

async function created() {
  const id = uniqueId("rec");
  expect(
    (await api("PUT", `/v1/clusters/${id}`, { body: clusterConfig([{ kind: "tcp", name: "pg", port: 1 }]) })).status,
  ).toBe(201);
  return id;
}

/** Rewrites a stored record as SQL sees it, as an older worker or a hand edit would have left it. */
const rewrite = (id: string, key: string, edit: (text: string) => string) =>
  runInDurableObject(stubOf(id), (_, state) => {
    const row = state.storage.sql.exec<{ value: string }>("SELECT value FROM kv WHERE key = ?", key).one();
    state.storage.sql.exec("UPDATE kv SET value = ? WHERE key = ?", edit(row.value), key);
  });

describe("stored records are parsed when read", () => {
  it("a config stored before a field existed reads with the schema's default", async () => {
    const id = await created();
    await rewrite(id, "cluster", (text) => {
      const rec = JSON.parse(text);
      delete rec.config.maintenance;
      delete rec.config.notifications;
      delete rec.config.agentLostAfterSec;
      return JSON.stringify(rec);
    });
    const got = await api("GET", `/v1/clusters/${id}`);
    expect(got.status).toBe(200);
    expect(got.json.config).toMatchObject({ maintenance: [], notifications: [], agentLostAfterSec: 60 });
    expect((await getVerdict(id)).verdict.maintenance).toBeNull();
    expect((await api("GET", `/v1/clusters/${id}/deliveries`)).status).toBe(200);
  });

  it("a cluster record that no longer parses reads as no cluster: 404, never 500, and the alarm stops quietly", async () => {
    const id = await created();
    await rewrite(id, "cluster", () => '{"id": 42}');
    const got = await api("GET", `/v1/clusters/${id}`);
    expect(got.status).toBe(404);
    expect(got.json.error.code).toBe("unknown_cluster");
    expect((await api("GET", `/v1/clusters/${id}/verdict`)).status).toBe(404);
    expect((await api("GET", `/v1/clusters/${id}/verdict`, { token: AGENT_TOKEN })).status).toBe(401); // as for any unknown cluster
    await runDurableObjectAlarm(stubOf(id)); // would throw if the alarm met the record
    // The admin re-creates it with a PUT.
    expect(
      (await api("PUT", `/v1/clusters/${id}`, { body: clusterConfig([{ kind: "tcp", name: "pg", port: 1 }]) })).status,
    ).toBe(201);
    expect((await api("GET", `/v1/clusters/${id}`)).status).toBe(200);
  });

  it("an agent report that is not JSON reads as no report; the next report replaces it", async () => {
    const id = await created();
    expect((await api("POST", `/v1/clusters/${id}/report`, { token: AGENT_TOKEN, body: report })).status).toBe(202);
    await rewrite(id, "report", () => "{not json");
    expect((await api("GET", `/v1/clusters/${id}`)).json.agent).toBeNull();
    expect((await api("POST", `/v1/clusters/${id}/report`, { token: AGENT_TOKEN, body: report })).status).toBe(202);
    expect((await api("GET", `/v1/clusters/${id}`)).json.agent.report.role).toBe("standby");
  });

  it("a record an older worker stored under looser rules still reads: the loop goes on, only what breaks today's rules is left out", async () => {
    const id = await created();
    await runDurableObjectAlarm(stubOf(id)); // one round, so the monitor record holds a lastRound
    await rewrite(id, "cluster", (text) => {
      const rec = JSON.parse(text);
      // Plain http to a public host was accepted before webhooks had to be https.
      rec.config.notifications = [
        {
          kind: "webhook",
          name: "old",
          url: "http://hooks.example.com/x",
          secrets: [`whsec_${btoa("0123456789abcdef0123456789abcdef")}`],
        },
        { kind: "slack", name: "ops", url: "https://hooks.slack.com/services/T/B/x" },
      ];
      return JSON.stringify(rec);
    });
    await rewrite(id, "monitor", (text) => {
      const rec = JSON.parse(text);
      // Probe details were not clipped before.
      rec.lastRound.probes[0].detail = "x".repeat(5_000);
      return JSON.stringify(rec);
    });
    const got = await api("GET", `/v1/clusters/${id}`);
    expect(got.status).toBe(200);
    expect(got.json.config.notifications.map((c: { name: string }) => c.name)).toEqual(["ops"]);
    const seq = (await getVerdict(id)).verdict.seq;
    await runDurableObjectAlarm(stubOf(id));
    expect((await getVerdict(id)).verdict.seq).toBeGreaterThan(seq);
  });
});

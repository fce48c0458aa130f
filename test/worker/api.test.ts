import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { ADMIN, AGENT_TOKEN, api, clusterConfig, uniqueId } from "./helpers.js";

const tcpProbe = { kind: "tcp", name: "pg", port: 1 };
const report = {
  role: "standby",
  mode: "auto",
  at: 1,
  lastAction: null,
  lan: { state: "up", probes: [{ name: "sip-udp", ok: true, detail: "SIP/2.0 200 OK", rttMs: 2 }] },
  verdictSeq: 3,
};

async function created(extra: Record<string, unknown> = {}) {
  const id = uniqueId();
  const res = await api("PUT", `/v1/clusters/${id}`, { body: clusterConfig([tcpProbe], extra) });
  expect(res.status).toBe(201);
  return id;
}

describe("admin API", () => {
  it("creates (201), updates (200), reads and deletes a cluster; defaults are applied", async () => {
    const id = await created({ intervalSec: undefined });
    const got = await api("GET", `/v1/clusters/${id}`);
    expect(got.status).toBe(200);
    expect(got.json.config).toMatchObject({ intervalSec: 10, fall: 3, rise: 2, graceSec: 0 });
    expect(got.json.config.probes[0]).toMatchObject({ kind: "tcp", timeoutMs: 5000, critical: false });
    const upd = await api("PUT", `/v1/clusters/${id}`, {
      body: { ...clusterConfig([tcpProbe]), fall: 5, agentToken: undefined },
    });
    expect(upd.status).toBe(200);
    expect(upd.json.config.fall).toBe(5);
    expect((await api("GET", "/v1/clusters")).json.clusters).toContain(id);
    expect((await api("DELETE", `/v1/clusters/${id}`)).status).toBe(204);
    expect((await api("GET", `/v1/clusters/${id}`)).status).toBe(404);
    expect((await api("GET", "/v1/clusters")).json.clusters).not.toContain(id);
  });

  it("never returns the agent token, in any form", async () => {
    const id = await created();
    const got = await api("GET", `/v1/clusters/${id}`);
    expect(got.json.agentTokenSet).toBe(true);
    expect(got.text).not.toContain(AGENT_TOKEN);
    expect(got.json.config.agentToken).toBeUndefined();
    expect(got.text).not.toMatch(/tokenHash/);
  });

  it("401 without a token or with a wrong one; an agent token is not an admin token", async () => {
    const id = await created();
    expect((await api("GET", `/v1/clusters/${id}`, { token: null })).status).toBe(401);
    expect((await api("GET", `/v1/clusters/${id}`, { token: "nope" })).json.error.code).toBe("unauthorized");
    expect((await api("GET", `/v1/clusters/${id}`, { token: AGENT_TOKEN })).status).toBe(401);
    expect((await api("DELETE", `/v1/clusters/${id}`, { token: AGENT_TOKEN })).status).toBe(401);
  });

  it("400 on malformed JSON", async () => {
    const res = await api("PUT", `/v1/clusters/${uniqueId()}`, { raw: '{"master": ' });
    expect(res.status).toBe(400);
    expect(res.json.error.code).toBe("malformed_json");
  });

  it.each([
    ["a wrong type", { probes: [{ ...tcpProbe, port: "5060" }] }, "probes.0.port"],
    ["an out-of-range port", { probes: [{ ...tcpProbe, port: 70000 }] }, "probes.0.port"],
    ["an unknown probe kind", { probes: [{ kind: "icmp", name: "x" }] }, "probes.0.kind"],
    ["a misspelt field", { probes: [{ ...tcpProbe, critcal: true }] }, "probes.0"],
    ["no probes", { probes: [] }, "probes"],
    ["duplicate probe names", { probes: [tcpProbe, tcpProbe] }, "probes.1.name"],
    ["an interval under 2 s", { intervalSec: 1 }, "intervalSec"],
    ["fall 0", { fall: 0 }, "fall"],
    ["a bad host", { master: { host: "pbx example" } }, "master.host"],
    ["a short agent token", { agentToken: "short" }, "agentToken"],
    [
      "an inverted status range",
      { probes: [{ kind: "http", name: "w", expectStatus: { min: 400, max: 200 } }] },
      "probes.0.expectStatus",
    ],
  ])("400 naming the field on %s", async (_, patch, field) => {
    const res = await api("PUT", `/v1/clusters/${uniqueId()}`, { body: { ...clusterConfig([tcpProbe]), ...patch } });
    expect(res.status).toBe(400);
    expect(res.json.error.field).toBe(field);
    expect(res.json.error.message).toContain(field);
  });

  it("400 when a new cluster has no agent token", async () => {
    const res = await api("PUT", `/v1/clusters/${uniqueId()}`, {
      body: { ...clusterConfig([tcpProbe]), agentToken: undefined },
    });
    expect(res.status).toBe(400);
    expect(res.json.error.message).toMatch(/^agentToken: required/);
  });

  it("an invalid config never replaces the stored valid one", async () => {
    const id = await created({ fall: 4 });
    const before = (await api("GET", `/v1/clusters/${id}`)).json.config;
    expect((await api("PUT", `/v1/clusters/${id}`, { body: { ...clusterConfig([tcpProbe]), fall: -1 } })).status).toBe(
      400,
    );
    expect((await api("PUT", `/v1/clusters/${id}`, { raw: "not json" })).status).toBe(400);
    expect((await api("GET", `/v1/clusters/${id}`)).json.config).toEqual(before);
  });

  it("reads a JSON body whatever its content type (curl -d sends form-urlencoded); malformed is still 400", async () => {
    const id = uniqueId();
    const put = (body: string) =>
      SELF.fetch(`https://edge.test/v1/clusters/${id}`, {
        method: "PUT",
        headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/x-www-form-urlencoded" },
        body,
      });
    const bad = await put('{"master": ');
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe("malformed_json");
    expect((await put(JSON.stringify(clusterConfig([tcpProbe])))).status).toBe(201);
  });

  it("413 on a body over 64 KiB, and the cluster is not created", async () => {
    const id = uniqueId();
    const res = await api("PUT", `/v1/clusters/${id}`, { raw: JSON.stringify({ pad: "x".repeat(70 * 1024) }) });
    expect(res.status).toBe(413);
    expect(res.json.error.code).toBe("body_too_large");
    expect((await api("GET", `/v1/clusters/${id}`)).status).toBe(404);
  });

  it("400 on a malformed cluster id; unknown clusters: 404 to the admin, 401 to anyone else; unknown routes 404", async () => {
    expect((await api("GET", "/v1/clusters/Bad_Id")).json.error).toMatchObject({ code: "invalid_path", field: "id" });
    const id = uniqueId();
    expect((await api("GET", `/v1/clusters/${id}`)).status).toBe(404);
    expect((await api("DELETE", `/v1/clusters/${id}`)).status).toBe(404);
    expect((await api("GET", `/v1/clusters/${id}/verdict`)).status).toBe(404);
    expect((await api("GET", `/v1/clusters/${id}/verdict`, { token: AGENT_TOKEN })).status).toBe(401);
    expect((await api("GET", `/v1/clusters/${id}/events`, { token: AGENT_TOKEN })).status).toBe(401);
    expect((await api("POST", `/v1/clusters/${id}/report`, { token: AGENT_TOKEN, body: report })).status).toBe(401);
    const nowhere = await api("GET", "/v2/nothing");
    expect(nowhere.status).toBe(404);
    expect(nowhere.json.error.code).toBe("not_found");
  });
});

describe("agent API", () => {
  it("401 for a wrong agent token on verdict, report and events", async () => {
    const id = await created();
    const wrong = "agent-token-WRONG-456789abcdef0123456789";
    expect((await api("GET", `/v1/clusters/${id}/verdict`, { token: wrong })).status).toBe(401);
    expect((await api("POST", `/v1/clusters/${id}/report`, { token: wrong, body: report })).status).toBe(401);
    expect((await api("GET", `/v1/clusters/${id}/events`, { token: wrong })).status).toBe(401);
    expect((await api("GET", `/v1/clusters/${id}/verdict`, { token: null })).status).toBe(401);
  });

  it("400 on a bad nonce", async () => {
    const id = await created();
    const res = await api("GET", `/v1/clusters/${id}/verdict?nonce=short`, { token: AGENT_TOKEN });
    expect(res.status).toBe(400);
    expect(res.json.error.field).toBe("nonce");
  });

  it("stores reports; the history records changes, not heartbeats", async () => {
    const id = await created();
    const post = (body: unknown) => api("POST", `/v1/clusters/${id}/report`, { token: AGENT_TOKEN, body });
    expect((await post(report)).status).toBe(202);
    expect((await post({ ...report, at: 2 })).status).toBe(202); // heartbeat: same role, no action
    const failover = {
      ...report,
      role: "active",
      lastAction: { kind: "failover", at: 3, ok: true, reason: "master down from edge and LAN" },
    };
    expect((await post(failover)).status).toBe(202);
    const page = await api("GET", `/v1/clusters/${id}/events`, { token: AGENT_TOKEN });
    const agentEvents = page.json.events.filter((e: { type: string }) => e.type === "agent.changed");
    expect(agentEvents.map((e: { data: { role: string } }) => e.data.role)).toEqual(["standby", "active"]);
    expect(agentEvents[1].reason).toBe("master down from edge and LAN");
    const view = await api("GET", `/v1/clusters/${id}`);
    expect(view.json.agent.report.role).toBe("active");
  });

  it("keeps the replication summary of a report; a failing replication is an alert in the history", async () => {
    const id = await created();
    const failing = {
      ...report,
      alerts: ["replication failing: master: connection refused"],
      replication: {
        at: 5,
        ok: false,
        durationMs: 12,
        rows: 0,
        bytes: 0,
        tablesCopied: 0,
        tablesSkipped: 0,
        error: "master: connection refused",
      },
    };
    expect((await api("POST", `/v1/clusters/${id}/report`, { token: AGENT_TOKEN, body: failing })).status).toBe(202);
    expect((await api("GET", `/v1/clusters/${id}`)).json.agent.report.replication).toMatchObject({
      ok: false,
      error: "master: connection refused",
    });
    const events = (await api("GET", `/v1/clusters/${id}/events`, { token: AGENT_TOKEN })).json.events;
    expect(events.at(-1)).toMatchObject({
      type: "agent.changed",
      data: { alerts: ["replication failing: master: connection refused"] },
    });
  });

  it.each([
    ["a bad role", { ...report, role: "primary" }, "role"],
    ["a missing field", { ...report, mode: undefined }, "mode"],
    ["a bad LAN state", { ...report, lan: { state: "sideways", probes: [] } }, "lan.state"],
  ])("400 naming the field on a report with %s; nothing stored", async (_, body, field) => {
    const id = await created();
    const res = await api("POST", `/v1/clusters/${id}/report`, { token: AGENT_TOKEN, body });
    expect(res.status).toBe(400);
    expect(res.json.error.field).toBe(field);
    expect((await api("GET", `/v1/clusters/${id}`)).json.agent).toBeNull();
  });

  it("pages the history with since/limit, and rejects a bad cursor", async () => {
    const id = await created();
    for (let i = 0; i < 4; i++) {
      await api("PUT", `/v1/clusters/${id}`, {
        body: { ...clusterConfig([tcpProbe]), fall: i + 1, agentToken: undefined },
      });
    }
    const first = await api("GET", `/v1/clusters/${id}/events?limit=2`, { token: AGENT_TOKEN });
    expect(first.json.events).toHaveLength(2);
    expect(first.json.next).toBe(first.json.events[1].id);
    const rest = await api("GET", `/v1/clusters/${id}/events?since=${first.json.next}&limit=100`);
    expect(rest.json.events.length).toBeGreaterThanOrEqual(3);
    expect(rest.json.events[0].id).toBeGreaterThan(first.json.next);
    expect(rest.json.next).toBeNull();
    const bad = await api("GET", `/v1/clusters/${id}/events?since=-4`, { token: AGENT_TOKEN });
    expect(bad.status).toBe(400);
    expect(bad.json.error.field).toBe("since");
  });
});

import { runInDurableObject, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { ADMIN, AGENT_TOKEN, api, clusterConfig, stubOf, uniqueId } from "./helpers.js";

const tcpProbe = { kind: "tcp", name: "pg", port: 1, timeoutMs: 200 };
const report = { role: "standby", mode: "auto", at: 1, lastAction: null, lan: null, verdictSeq: null };

/** The user tables of a cluster's storage (SQLite's and Cloudflare's own left out). */
const tablesOf = (id: string) =>
  runInDurableObject(stubOf(id), (_, state) =>
    state.storage.sql
      .exec<{ name: string }>(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%'",
      )
      .toArray()
      .map((r) => r.name),
  );

const page = (id: string, token?: string) =>
  SELF.fetch(`https://edge.test/status/${id}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });

describe("anonymous work and enumeration", () => {
  it("an unknown id leaves no storage, whatever route and token it is asked with", async () => {
    const id = uniqueId("ghost");
    const otherToken = "agent-token-guess-0123456789abcdef012345";
    await page(id);
    await page(id, otherToken);
    await SELF.fetch(`https://edge.test/badge/${id}.svg`);
    for (const token of [otherToken, ADMIN]) {
      await api("GET", `/v1/clusters/${id}/verdict`, { token });
      await api("GET", `/v1/clusters/${id}/events`, { token });
      await api("GET", `/v1/clusters/${id}/uptime`, { token });
      await api("POST", `/v1/clusters/${id}/report`, { token, body: report });
    }
    await api("GET", `/v1/clusters/${id}`);
    await api("DELETE", `/v1/clusters/${id}`);
    await api("GET", `/v1/clusters/${id}/deliveries`);
    await api("POST", `/v1/clusters/${id}/maintenance`, { body: { to: Date.now() + 60_000, reason: "x" } });
    await api("DELETE", `/v1/clusters/${id}/maintenance`);
    expect(await tablesOf(id)).toEqual([]);
  });

  it("a deleted cluster leaves no storage behind", async () => {
    const id = uniqueId("gone");
    expect((await api("PUT", `/v1/clusters/${id}`, { body: clusterConfig([tcpProbe]) })).status).toBe(201);
    expect((await api("DELETE", `/v1/clusters/${id}`)).status).toBe(204);
    expect(await tablesOf(id)).toEqual([]);
    // …and can be created again.
    expect((await api("PUT", `/v1/clusters/${id}`, { body: clusterConfig([tcpProbe]) })).status).toBe(201);
    expect((await api("GET", `/v1/clusters/${id}`)).status).toBe(200);
  });

  it("status page: private and unknown answer alike without the admin token", async () => {
    const id = uniqueId("priv");
    expect((await api("PUT", `/v1/clusters/${id}`, { body: clusterConfig([tcpProbe]) })).status).toBe(201);
    const unknown = uniqueId("nope");
    for (const token of [undefined, AGENT_TOKEN]) {
      const [priv, none] = await Promise.all([page(id, token), page(unknown, token)]);
      expect(priv.status).toBe(none.status);
      expect(priv.status).toBe(404);
      expect(await priv.text()).toBe(await none.text());
      const [bp, bn] = await Promise.all([
        SELF.fetch(`https://edge.test/badge/${id}.svg`),
        SELF.fetch(`https://edge.test/badge/${unknown}.svg`),
      ]);
      expect(bp.status).toBe(bn.status);
      expect(await bp.text()).toBe(await bn.text());
    }
    expect((await page(id, ADMIN)).status).toBe(200);
    expect((await page(unknown, ADMIN)).status).toBe(404);
  });

  it("agent routes: a wrong token gets the same 401 on a cluster that exists and on one that does not", async () => {
    const id = uniqueId("real");
    expect((await api("PUT", `/v1/clusters/${id}`, { body: clusterConfig([tcpProbe]) })).status).toBe(201);
    const unknown = uniqueId("nope");
    const wrong = "agent-token-guess-0123456789abcdef012345";
    for (const [method, path, body] of [
      ["GET", "verdict", undefined],
      ["GET", "events", undefined],
      ["GET", "uptime", undefined],
      ["POST", "report", report],
    ] as const) {
      const a = await api(method, `/v1/clusters/${id}/${path}`, { token: wrong, body });
      const b = await api(method, `/v1/clusters/${unknown}/${path}`, { token: wrong, body });
      expect([path, a.status]).toEqual([path, 401]);
      expect([path, b.status]).toEqual([path, 401]);
      expect(b.json).toEqual(a.json);
    }
    // The admin is told the truth.
    expect((await api("GET", `/v1/clusters/${unknown}/verdict`)).status).toBe(404);
  });
});

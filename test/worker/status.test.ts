import { runInDurableObject, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { buildApp } from "../../worker/app.js";
import { AGENT_TOKEN, api, clusterConfig, runRound, stubOf, target, uniqueId, waitForSeq } from "./helpers.js";

/**
 * The status page, the badge, the uptime API and /openapi.json, through the real worker and
 * Durable Object. The history before "now" is scripted by writing verdict.changed events into
 * the object's storage, so the figures are exact.
 */
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

async function cluster(extra: Record<string, unknown> = {}) {
  const sip = await target("sip-tcp");
  const id = uniqueId("st");
  const res = await api("PUT", `/v1/clusters/${id}`, {
    body: clusterConfig([{ kind: "sip", name: "sip-edge", transport: "tcp", port: sip.port, timeoutMs: 500 }], {
      rise: 1,
      ...extra,
    }),
  });
  expect(res.status).toBe(201);
  await waitForSeq(id, 1);
  return { id, sip };
}

/** Writes history as if it had happened: up 10 days ago, down 3 h ago for 1 h (reason given). */
async function scriptHistory(id: string, downReason: string) {
  const now = Date.now();
  await runInDurableObject(stubOf(id), (_, state) => {
    const add = (at: number, from: string, to: string, reason: string) =>
      state.storage.sql.exec(
        "INSERT INTO events (at, type, reason, data) VALUES (?, 'verdict.changed', ?, ?)",
        at,
        reason,
        JSON.stringify({ from, to, seq: 0 }),
      );
    add(now - 10 * DAY, "unknown", "up", "up after 1 consecutive good rounds");
    add(now - 3 * HOUR, "up", "down", downReason);
    add(now - 2 * HOUR, "down", "up", "up after 1 consecutive good rounds");
  });
  return now;
}

const page = (id: string, token?: string) =>
  SELF.fetch(`https://edge.test/status/${id}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });

const report = (id: string, role: string, kind: string, at: number, reason: string) =>
  api("POST", `/v1/clusters/${id}/report`, {
    token: AGENT_TOKEN,
    body: { role, mode: "auto", at, lastAction: { kind, at, ok: true, reason }, lan: null, verdictSeq: 1, alerts: [] },
  });

describe("status page", () => {
  it("shows state, role, uptime figures, timeline, a sparkline, escaped text; refreshes itself without JS", async () => {
    const { id } = await cluster({ public: true });
    await runRound(id);
    await scriptHistory(id, "down after 3 rounds: sip: <script>alert(1)</script>");
    // Rounds over the last hours, so the sparkline has several buckets to draw.
    await runInDurableObject(stubOf(id), (_, state) => {
      for (let k = 1; k <= 5; k++) {
        state.storage.sql.exec(
          "INSERT INTO rounds (at, class, duration_ms, probe_set, rtt) SELECT at - ?, class, duration_ms, probe_set, ? FROM rounds ORDER BY at DESC LIMIT 1",
          k * HOUR,
          `[${10 + k}]`,
        );
      }
    });
    await report(id, "active", "failover", Date.now(), "edge and LAN agree: master down");
    await report(id, "standby", "failback", Date.now() + 1, "master up again: giving back");

    const res = await page(id);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/html/);
    const html = await res.text();
    expect(html.startsWith("<!doctype html>")).toBe(true);
    expect(html).toContain('<meta http-equiv="refresh" content="30"/>');
    expect(html).not.toMatch(/<script|<link|src="http/i); // no script, no external asset
    // the master, as the edge sees it; the slave's role as reported
    expect(html).toMatch(/class="state s-up">up</);
    expect(html).toMatch(/class="state s-standby">standby</);
    expect(html).toContain("reported 0 s ago");
    // uptime: 24 h = 23/24, 7 d = 167/168, 30 d and 90 d = 239/240 (the 20 days before are unknown)
    expect(html).toContain("95.83 %");
    expect(html).toContain("99.40 %");
    expect(html.match(/99\.58 %/g)).toHaveLength(2);
    // the timeline: the incident with its duration, the failover and failback
    expect(html).toMatch(/s-down">down<\/span> <strong>1 h<\/strong>/);
    expect(html).toContain("&lt;script&gt;alert(1)&lt;/script&gt;");
    expect(html).toMatch(/>failover<\/span> <strong>slave was active for 0 s<\/strong>/);
    expect(html).toMatch(/>failback<\/span> <strong>master back after 0 s on the slave<\/strong>/);
    // per-probe latency: an inline SVG sparkline for the probe
    expect(html).toMatch(/<td>sip-edge<\/td><td><svg class="sparkline"[^>]*>.*<polyline points="[\d., ]+"/s);
    expect(html).toContain('aria-label="uptime per day, last 90 days"');
  });

  it("a failover reported while in progress, then done: one ok failover on the timeline, never 'failed'", async () => {
    const { id } = await cluster({ public: true });
    await runRound(id);
    const at = Date.now();
    const lastAction = {
      kind: "failover",
      at,
      ok: false,
      inProgress: true,
      reason: "edge and LAN agree: master down (in progress)",
    };
    const post = (body: Record<string, unknown>) =>
      api("POST", `/v1/clusters/${id}/report`, {
        token: AGENT_TOKEN,
        body: { role: "active", mode: "auto", at, lan: null, verdictSeq: 1, alerts: [], ...body },
      });
    expect((await post({ lastAction })).status).toBe(202);
    const during = await (await page(id)).text();
    expect(during).toContain("last action: failover (in progress)");
    expect(during).not.toContain("(failed)");
    expect(
      (await post({ lastAction: { kind: "failover", at, ok: true, reason: "edge and LAN agree: master down" } }))
        .status,
    ).toBe(202);
    const html = await (await page(id)).text();
    expect(html).toMatch(/>failover<\/span> <strong>slave active for [^<]* \(ongoing\)<\/strong>/);
    expect(html).not.toContain("(failed)");
  });

  it("private by default: without the admin token the same 404 page as an unknown cluster, the page with it", async () => {
    const { id } = await cluster();
    const anon = await page(id);
    expect(anon.status).toBe(404);
    const body = await anon.text();
    expect(body).toContain("There is no status page here.");
    expect(body).not.toContain(id);
    expect((await page(id, AGENT_TOKEN)).status).toBe(404);
    expect((await page(id, (await import("./helpers.js")).ADMIN)).status).toBe(200);

    const missing = await page("no-such-cluster");
    expect(missing.status).toBe(404);
    expect(await missing.text()).toContain("There is no status page here.");
    expect((await page("Not_A_Valid..Id")).status).toBe(404);
  });

  it("badge: the 30-day figure as SVG when public; 404 when private or unknown", async () => {
    const { id } = await cluster({ public: true });
    await scriptHistory(id, "down");
    const res = await SELF.fetch(`https://edge.test/badge/${id}.svg`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^image\/svg\+xml/);
    const svg = await res.text();
    expect(svg).toMatch(/^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    expect(svg).toContain("uptime 30d");
    expect(svg).toContain("99.58 %");

    const priv = await cluster();
    expect((await SELF.fetch(`https://edge.test/badge/${priv.id}.svg`)).status).toBe(404);
    expect((await SELF.fetch("https://edge.test/badge/nobody.svg")).status).toBe(404);
    expect((await SELF.fetch(`https://edge.test/badge/${id}.png`)).status).toBe(404);
  });
});

describe("uptime API", () => {
  it("answers the tally over [from, to) to the agent and the admin", async () => {
    const { id } = await cluster();
    const now = await scriptHistory(id, "down");
    const q = `from=${now - DAY}&to=${now}`;
    const res = await api("GET", `/v1/clusters/${id}/uptime?${q}`, { token: AGENT_TOKEN });
    expect(res.status).toBe(200);
    expect(res.json).toEqual({
      from: now - DAY,
      to: now,
      upMs: 23 * HOUR,
      degradedMs: 0,
      downMs: HOUR,
      unknownMs: 0,
      maintenanceMs: 0,
      uptime: 23 / 24,
    });
    expect((await api("GET", `/v1/clusters/${id}/uptime?${q}`)).json.uptime).toBe(23 / 24);
    expect(
      (await api("GET", `/v1/clusters/${id}/uptime?${q}`, { token: "agent-token-wrong-0123456789abcdef0123" })).status,
    ).toBe(401);
    expect((await api("GET", `/v1/clusters/${id}/uptime?${q}`, { token: null })).status).toBe(401);
  });

  it("maintenance windows from the config are excluded", async () => {
    const now = Date.now();
    const { id } = await cluster({
      maintenance: [{ from: now - 3 * HOUR - 60_000, to: now - 2 * HOUR + 60_000, reason: "upgrade" }],
    });
    await scriptHistory(id, "down for the upgrade");
    const res = await api("GET", `/v1/clusters/${id}/uptime?from=${now - DAY}&to=${now}`);
    expect(res.json).toMatchObject({ downMs: 0, uptime: 1 });
    expect(res.json.maintenanceMs).toBeGreaterThanOrEqual(HOUR);
  });

  it("bad query → 400 naming the field; unknown cluster → 404", async () => {
    const { id } = await cluster();
    const bad = async (q: string) => (await api("GET", `/v1/clusters/${id}/uptime?${q}`)).json;
    expect(await bad("from=yesterday&to=1")).toMatchObject({ error: { code: "invalid_query", field: "from" } });
    expect(await bad("from=1&to=-5")).toMatchObject({ error: { field: "to" } });
    expect(await bad("from=10&to=5")).toMatchObject({ error: { field: "from", message: "from: must be before to" } });
    expect(await bad(`from=0&to=${500 * DAY}`)).toMatchObject({ error: { field: "from" } });
    expect((await api("GET", `/v1/clusters/${id}/uptime?from=1.5`)).status).toBe(400);
    expect((await api("GET", "/v1/clusters/nobody-here/uptime")).status).toBe(404);
    const put = await api("PUT", `/v1/clusters/${id}`, {
      body: clusterConfig([{ kind: "tcp", name: "t", port: 1 }], { maintenance: [{ from: 5, to: 1 }] }),
    });
    expect(put.json).toMatchObject({ error: { field: "maintenance.0.to" } });
  });
});

describe("round storage", () => {
  it("rounds are stored with their class, duration and per-probe rtt (a change of class at once); an hour rolls up", async () => {
    const { id, sip } = await cluster();
    await sip.set("closed");
    await runRound(id);
    const rows = await runInDurableObject(stubOf(id), (_, state) =>
      state.storage.sql
        .exec<{ class: string; duration_ms: number; rtt: string; names: string }>(
          "SELECT class, duration_ms, rtt, names FROM rounds JOIN probe_sets ON probe_sets.id = rounds.probe_set ORDER BY at",
        )
        .toArray(),
    );
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatchObject({ class: "up", names: '["sip-edge"]' });
    expect(JSON.parse(rows[0]!.rtt)[0]).toEqual(expect.any(Number));
    expect(rows[1]).toMatchObject({ class: "down" });
    expect(JSON.parse(rows[1]!.rtt)).toHaveLength(1);

    // Roll-up and pruning: age the rows (shift them back 50 h), then let a round maintain them.
    await runInDurableObject(stubOf(id), (_, state) => {
      state.storage.sql.exec("UPDATE rounds SET at = at - ?", 50 * HOUR);
    });
    await sip.set("ok");
    await runRound(id);
    const after = await runInDurableObject(stubOf(id), (_, state) => ({
      rounds: state.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM rounds").one().n,
      hourly: state.storage.sql
        .exec<{ rounds: number; rtt: string }>("SELECT rounds, rtt FROM hourly WHERE rounds > 0")
        .toArray(),
      hours: state.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM hourly").one().n,
    }));
    expect(after.rounds).toBe(1); // the two aged rounds are past the 48 h raw retention
    expect(after.hours).toBeGreaterThanOrEqual(48); // the roll-up caught up hour by hour (capped at 48)
  });
});

describe("openapi.json", () => {
  it("parses as OpenAPI 3.1 and lists every v1 route of the app", async () => {
    const res = await SELF.fetch("https://edge.test/openapi.json");
    expect(res.status).toBe(200);
    const doc = (await res.json()) as {
      openapi: string;
      paths: Record<string, Record<string, unknown>>;
      components: { schemas: Record<string, unknown> };
    };
    expect(doc.openapi).toBe("3.1.0");
    const v1 = buildApp()
      .routes.filter((r) => r.path.startsWith("/v1") && r.method !== "ALL")
      .map((r) => `${r.method.toLowerCase()} ${r.path.replace(/:(\w+)/g, "{$1}")}`);
    expect(v1.length).toBeGreaterThanOrEqual(10);
    for (const route of v1) {
      const [method, path] = route.split(" ") as [string, string];
      expect(doc.paths[path]?.[method], `${route} missing from openapi.json`).toBeDefined();
    }
    // the request schemas are the zod ones: a field and its constraint show through
    expect(JSON.stringify(doc.components.schemas.ClusterConfigInput)).toContain('"public"');
    expect(JSON.stringify(doc.components.schemas.AgentReport)).toContain('"failover"');
    // every $ref resolves
    for (const ref of JSON.stringify(doc).match(/"#\/components\/schemas\/\w+"/g) ?? []) {
      expect(doc.components.schemas[ref.slice(22, -1)], ref).toBeDefined();
    }
  });
});

import { runInDurableObject, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { api, clusterConfig, stubOf, uniqueId } from "./helpers.js";

const tcpProbe = { kind: "tcp", name: "pg", port: 1, timeoutMs: 200 };
const SECRET = `whsec_${btoa("0123456789abcdef0123456789abcdef")}`;
const SLACK = "http://127.0.0.1:9/services/T000/B000/XXXXSECRETXXXX";
const channels = [
  { kind: "webhook", name: "ops", url: "http://127.0.0.1:9/hook", secrets: [SECRET] },
  { kind: "slack", name: "chat", url: SLACK },
];

const stored = (id: string) =>
  runInDurableObject(
    stubOf(id),
    (_, state) =>
      JSON.parse(state.storage.sql.exec<{ value: string }>("SELECT value FROM kv WHERE key = 'cluster'").one().value)
        .config.notifications,
  );

describe("config secrets on PUT", () => {
  it("the config a GET shows, PUT back, keeps every stored webhook secret and Slack URL", async () => {
    const id = uniqueId("keep");
    expect(
      (await api("PUT", `/v1/clusters/${id}`, { body: clusterConfig([tcpProbe], { notifications: channels }) })).status,
    ).toBe(201);
    const got = await api("GET", `/v1/clusters/${id}`);
    expect(got.text).not.toContain(SECRET);
    expect(got.text).not.toContain("XXXXSECRETXXXX");
    const put = await api("PUT", `/v1/clusters/${id}`, { body: { ...got.json.config, fall: 4 } });
    expect(put.status).toBe(200);
    expect(put.json.config.fall).toBe(4);
    const kept = await stored(id);
    expect(kept[0].secrets).toEqual([SECRET]);
    expect(kept[1].url).toBe(SLACK);
  });

  it("secrets omitted: kept from the stored channel of the same name", async () => {
    const id = uniqueId("omit");
    expect(
      (await api("PUT", `/v1/clusters/${id}`, { body: clusterConfig([tcpProbe], { notifications: channels }) })).status,
    ).toBe(201);
    const { secrets: _s, ...webhook } = channels[0] as any;
    const { url: _u, ...slack } = channels[1] as any;
    const put = await api("PUT", `/v1/clusters/${id}`, {
      body: clusterConfig([tcpProbe], {
        agentToken: undefined,
        notifications: [{ ...webhook, url: "http://127.0.0.1:9/new" }, slack],
      }),
    });
    expect(put.status).toBe(200);
    const kept = await stored(id);
    expect(kept[0]).toMatchObject({ url: "http://127.0.0.1:9/new", secrets: [SECRET] });
    expect(kept[1].url).toBe(SLACK);
  });

  it("400 naming the field when a channel has no secret to keep", async () => {
    const id = uniqueId("none");
    expect(
      (await api("PUT", `/v1/clusters/${id}`, { body: clusterConfig([tcpProbe], { notifications: channels }) })).status,
    ).toBe(201);
    const res = await api("PUT", `/v1/clusters/${id}`, {
      body: clusterConfig([tcpProbe], {
        agentToken: undefined,
        notifications: [channels[0], { kind: "webhook", name: "new", url: "http://127.0.0.1:9/x" }],
      }),
    });
    expect(res.status).toBe(400);
    expect(res.json.error.field).toBe("notifications.1.secrets");
    const slack = await api("PUT", `/v1/clusters/${uniqueId("fresh")}`, {
      body: clusterConfig([tcpProbe], { notifications: [{ kind: "slack", name: "chat" }] }),
    });
    expect(slack.status).toBe(400);
    expect(slack.json.error.field).toBe("notifications.0.url");
  });

  it("/openapi.json describes ClusterView.config as the public config: no secrets, secretsSet instead", async () => {
    const doc = (await (await SELF.fetch("https://edge.test/openapi.json")).json()) as any;
    const view = JSON.stringify(doc.components.schemas.ClusterView);
    expect(view).not.toContain('"secrets"');
    expect(view).toContain('"secretsSet"');
    expect(view).not.toContain('"agentToken"');
  });
});

import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { MAX_SOCKETS } from "../../worker/cluster/report-rate.js";
import { AGENT_TOKEN, api, clusterConfig, uniqueId } from "./helpers.js";

const tcpProbe = { kind: "tcp", name: "pg", port: 1, timeoutMs: 200 };
const SECRET = `whsec_${btoa("0123456789abcdef0123456789abcdef")}`;

const open = (id: string) =>
  SELF.fetch(`https://edge.test/v1/clusters/${id}/push`, {
    headers: {
      upgrade: "websocket",
      "sec-websocket-version": "13",
      "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
      authorization: `Bearer ${AGENT_TOKEN}`,
    },
  });

describe("limits", () => {
  it("caps WebSockets per cluster: the one over the cap is refused with 429, room again once one closes", async () => {
    const id = uniqueId("ws");
    expect((await api("PUT", `/v1/clusters/${id}`, { body: clusterConfig([tcpProbe]) })).status).toBe(201);
    const sockets: WebSocket[] = [];
    for (let i = 0; i < MAX_SOCKETS; i++) {
      const res = await open(id);
      expect(res.status).toBe(101);
      res.webSocket!.accept();
      sockets.push(res.webSocket!);
    }
    const refused = await open(id);
    expect(refused.status).toBe(429);
    expect(((await refused.json()) as any).error.code).toBe("too_many_sockets");
    // One closed: room for the next.
    sockets.pop()!.close(1000, "bye");
    await new Promise((r) => setTimeout(r, 100));
    const again = await open(id);
    expect(again.status).toBe(101);
    again.webSocket!.accept();
    sockets.push(again.webSocket!);
    for (const ws of sockets) ws.close(1000, "done");
  });

  it.each([
    ["a webhook", { kind: "webhook", name: "ops", url: "http://hooks.example.com/x", secrets: [SECRET] }],
    ["a Slack channel", { kind: "slack", name: "chat", url: "http://hooks.slack.com/services/T/B/X" }],
  ])("refuses http:// for %s outside loopback, naming the field", async (_, channel) => {
    const res = await api("PUT", `/v1/clusters/${uniqueId("http")}`, {
      body: clusterConfig([tcpProbe], { notifications: [channel] }),
    });
    expect(res.status).toBe(400);
    expect(res.json.error.field).toBe("notifications.0.url");
    expect(res.json.error.message).toContain("https");
  });

  it.each([
    "http://127.0.0.1:9/hook",
    "http://127.8.9.10/hook",
    "http://[::1]:9/hook",
    "http://localhost:9/hook",
    "https://hooks.example.com/x",
  ])("accepts %s", async (url) => {
    const channel = { kind: "webhook", name: "ops", url, secrets: [SECRET] };
    const res = await api("PUT", `/v1/clusters/${uniqueId("ok")}`, {
      body: clusterConfig([tcpProbe], { notifications: [channel] }),
    });
    expect(res.status).toBe(201);
  });
});

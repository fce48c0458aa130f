import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { PushMessage } from "../../protocol/push.js";
import { verifyEnvelope } from "../../protocol/signing.js";
import { Verdict } from "../../protocol/verdict.js";
import { AGENT_TOKEN, api, clusterConfig, runRound, target, uniqueId, waitForSeq } from "./helpers.js";

async function open(id: string, token = AGENT_TOKEN) {
  const res = await SELF.fetch(`https://edge.test/v1/clusters/${id}/push`, {
    headers: {
      upgrade: "websocket",
      "sec-websocket-version": "13",
      "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
      authorization: `Bearer ${token}`,
    },
  });
  if (res.status !== 101) return { status: res.status, body: (await res.json()) as any };
  const ws = res.webSocket!;
  ws.accept();
  const inbox: PushMessage[] = [];
  const waiters: (() => void)[] = [];
  ws.addEventListener("message", (e) => {
    inbox.push(PushMessage.parse(JSON.parse(e.data as string)));
    waiters.splice(0).forEach((w) => w());
  });
  const next = async (count: number) => {
    while (inbox.length < count) await new Promise<void>((r) => waiters.push(r));
    return inbox[count - 1]!;
  };
  return { status: 101, ws, inbox, next };
}

async function verdictOf(msg: PushMessage) {
  if (msg.type !== "verdict") throw new Error(`expected a verdict, got ${JSON.stringify(msg)}`);
  const keys = (await api("GET", "/v1/keys", { token: null })).json.keys;
  const check = await verifyEnvelope(msg.envelope, keys);
  if (!check.ok) throw new Error(check.reason);
  return Verdict.parse(check.payload);
}

describe("push over WebSocket", () => {
  it("sends the current verdict at connect, then a new signed verdict after every round", async () => {
    const sip = await target("sip-tcp");
    const id = uniqueId("push");
    await api("PUT", `/v1/clusters/${id}`, {
      body: clusterConfig([{ kind: "sip", name: "sip", port: sip.port, timeoutMs: 500 }]),
    });
    await waitForSeq(id, 1);
    const conn = await open(id);
    expect(conn.status).toBe(101);
    const first = await verdictOf(await conn.next!(1));
    expect(first).toMatchObject({ clusterId: id, seq: 1, nonce: null });

    await runRound(id);
    const second = await verdictOf(await conn.next!(2));
    expect(second.seq).toBe(2);
    expect(second.state).toBe("up");

    await sip.set("closed");
    for (let i = 0; i < 3; i++) await runRound(id);
    const pushed = await Promise.all([3, 4, 5].map(async (n) => verdictOf(await conn.next!(n))));
    expect(pushed.map((v) => v.seq)).toEqual([3, 4, 5]);
    expect(pushed.map((v) => v.state)).toEqual(["up", "up", "down"]);
    conn.ws!.close(1000, "bye");
  });

  it("refuses a wrong token and an unknown cluster alike (401), and a plain GET (426)", async () => {
    const id = uniqueId("push");
    expect((await open(id)).status).toBe(401);
    await api("PUT", `/v1/clusters/${id}`, {
      body: clusterConfig([{ kind: "tcp", name: "pg", port: 1, timeoutMs: 200 }]),
    });
    const wrong = await open(id, "agent-token-WRONG-456789abcdef0123456789");
    expect(wrong.status).toBe(401);
    expect(wrong.body.error.code).toBe("unauthorized");
    const plain = await api("GET", `/v1/clusters/${id}/push`, { token: AGENT_TOKEN });
    expect(plain.status).toBe(426);
  });
});

import { createExecutionContext, env, SELF } from "cloudflare:test";
import { buildApp } from "../../worker/app.js";
import { describe, expect, it } from "vitest";
import { AGENT_TOKEN, api, clusterConfig, uniqueId } from "./helpers.js";

const tcpProbe = { kind: "tcp", name: "pg", port: 1, timeoutMs: 200 };
const report = (at: number) => ({ role: "standby", mode: "auto", at, lastAction: null, lan: null, verdictSeq: null });

async function cluster(prefix: string) {
  const id = uniqueId(prefix);
  expect((await api("PUT", `/v1/clusters/${id}`, { body: clusterConfig([tcpProbe]) })).status).toBe(201);
  return id;
}

/** A body sent as a stream: no Content-Length, as `Transfer-Encoding: chunked` arrives. */
function streamed(text: string): ReadableStream<Uint8Array> {
  const bytes = new TextEncoder().encode(text);
  let at = 0;
  return new ReadableStream({
    pull(controller) {
      if (at >= bytes.length) return controller.close();
      controller.enqueue(bytes.subarray(at, (at += 16_384)));
    },
  });
}

describe("request edges", () => {
  it("a report whose times are out of range is a 400 naming the field, and nothing is stored", async () => {
    const id = await cluster("when");
    const good = report(Date.now());
    const cases: [unknown, string][] = [
      [report(1e300), "at"],
      [report(9e15), "at"],
      [{ ...good, lastAction: { kind: "none", at: 9e15, ok: true, reason: "" } }, "lastAction.at"],
      [
        {
          ...good,
          replication: {
            at: 1e300,
            ok: true,
            durationMs: 1,
            rows: 0,
            bytes: 0,
            tablesCopied: 0,
            tablesSkipped: 0,
            error: null,
          },
        },
        "replication.at",
      ],
    ];
    for (const [body, field] of cases) {
      const res = await api("POST", `/v1/clusters/${id}/report`, { token: AGENT_TOKEN, body });
      expect(res.status, field).toBe(400);
      expect(res.json.error).toMatchObject({ code: "invalid_body", field });
    }
    expect((await api("GET", `/v1/clusters/${id}`)).json.agent).toBeNull();
    expect((await api("POST", `/v1/clusters/${id}/report`, { token: AGENT_TOKEN, body: good })).status).toBe(202);
  });

  it("a body without Content-Length is refused with 411 before it is read, whatever its size", async () => {
    const id = await cluster("chunked");
    for (const size of [100, 70_000, 1_100_000]) {
      const body = JSON.stringify({ ...report(Date.now()), alerts: ["x".repeat(size)] });
      const res = await SELF.fetch(`https://edge.test/v1/clusters/${id}/report`, {
        method: "POST",
        headers: { authorization: `Bearer ${AGENT_TOKEN}`, "content-type": "application/json" },
        body: streamed(body),
        duplex: "half",
      } as RequestInit);
      expect(res.status, String(size)).toBe(411);
      expect(((await res.json()) as any).error.code).toBe("length_required");
    }
    expect((await api("GET", `/v1/clusters/${id}`)).json.agent).toBeNull();
  });

  // Straight to the app: the runtime's fetch() (SELF.fetch here, wrangler dev's proxy) turns any
  // request with Upgrade: websocket into a GET, so only a request as the edge delivers it shows this.
  it("push: another method with Upgrade is a JSON 405 naming GET", async () => {
    const id = await cluster("pushm");
    const app = buildApp();
    for (const method of ["POST", "PUT", "PATCH", "OPTIONS", "HEAD"]) {
      const req = new Request(`https://edge.test/v1/clusters/${id}/push`, {
        method,
        headers: {
          upgrade: "websocket",
          connection: "Upgrade",
          "sec-websocket-version": "13",
          "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
          authorization: `Bearer ${AGENT_TOKEN}`,
        },
      });
      const res = await app.fetch(req, env, createExecutionContext());
      expect(res.status, method).toBe(405);
      expect(res.headers.get("allow")).toBe("GET");
      if (method !== "HEAD") expect(((await res.json()) as any).error.code).toBe("method_not_allowed");
    }
  });

  it("push: a missing or unsupported WebSocket version or key is a JSON refusal naming the header", async () => {
    const id = await cluster("pushv");
    const cases: [Record<string, string>, number, string][] = [
      [{ "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==" }, 426, "sec-websocket-version"],
      [{ "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==", "sec-websocket-version": "8" }, 426, "sec-websocket-version"],
      [{ "sec-websocket-version": "13" }, 400, "sec-websocket-key"],
      [{ "sec-websocket-version": "13", "sec-websocket-key": "short" }, 400, "sec-websocket-key"],
    ];
    for (const [headers, status, field] of cases) {
      const res = await SELF.fetch(`https://edge.test/v1/clusters/${id}/push`, {
        headers: { upgrade: "websocket", connection: "Upgrade", authorization: `Bearer ${AGENT_TOKEN}`, ...headers },
      });
      expect(res.status, JSON.stringify(headers)).toBe(status);
      expect(res.headers.get("content-type")).toMatch(/^application\/json/);
      expect(((await res.json()) as any).error.field).toBe(field);
      if (status === 426) expect(res.headers.get("sec-websocket-version")).toBe("13");
    }
  });
});

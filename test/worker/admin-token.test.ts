import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../../worker/index.js";
import { clusterConfig, uniqueId } from "./helpers.js";

const tcpProbe = { kind: "tcp", name: "pg", port: 1, timeoutMs: 200 };

/** The real worker, with the ADMIN_TOKEN secret replaced. */
async function call(adminToken: string, method: string, path: string, token: string, body?: unknown) {
  const ctx = createExecutionContext();
  const text = body === undefined ? undefined : JSON.stringify(body);
  // As on the wire: a Request built here has no Content-Length, which the worker requires with a body.
  const length: Record<string, string> =
    text === undefined ? {} : { "content-length": String(new TextEncoder().encode(text).length) };
  const req = new Request(`https://edge.test${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json", ...length },
    body: text,
  });
  const res = await worker.fetch(req, { ...env, ADMIN_TOKEN: adminToken }, ctx);
  await waitOnExecutionContext(ctx);
  return { status: res.status, json: (await res.json()) as any };
}

describe("ADMIN_TOKEN strength", () => {
  it("a weak admin token disables the admin API (503), as a missing one does", async () => {
    const weak = "short-admin";
    const res = await call(weak, "PUT", `/v1/clusters/${uniqueId("weak")}`, weak, clusterConfig([tcpProbe]));
    expect(res.status).toBe(503);
    expect(res.json.error.code).toBe("admin_disabled");
    expect(res.json.error.message).toContain("32");
    expect((await call(weak, "GET", "/v1/clusters", weak)).status).toBe(503);
  });

  it("a weak admin token is no admin on the agent routes either", async () => {
    const weak = "0123456789abcdef0123456789abcde"; // 31 characters
    const id = uniqueId("weak");
    expect(
      (await call(env.ADMIN_TOKEN!, "PUT", `/v1/clusters/${id}`, env.ADMIN_TOKEN!, clusterConfig([tcpProbe]))).status,
    ).toBe(201);
    expect((await call(env.ADMIN_TOKEN!, "GET", `/v1/clusters/${id}/events`, env.ADMIN_TOKEN!)).status).toBe(200);
    const res = await call(weak, "GET", `/v1/clusters/${id}/events`, weak);
    expect(res.status).toBe(401);
  });

  it("the test secrets pass the minimum", async () => {
    expect(env.ADMIN_TOKEN!.length).toBeGreaterThanOrEqual(32);
    const res = await call(env.ADMIN_TOKEN!, "GET", "/v1/clusters", env.ADMIN_TOKEN!);
    expect(res.status).toBe(200);
  });
});

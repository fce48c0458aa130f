import { describe, expect, it } from "vitest";
import { api, clusterConfig, getVerdict, uniqueId } from "./helpers.js";

/** A cluster deleted and created again under the same id signs a later incarnation. */
describe("verdict incarnation", () => {
  it("is the cluster's creation time, kept across updates and renewed by delete + create", async () => {
    const id = uniqueId();
    const config = clusterConfig([{ kind: "tcp", name: "pg", port: 1 }]);
    expect((await api("PUT", `/v1/clusters/${id}`, { body: config })).status).toBe(201);
    const first = (await getVerdict(id, "nonce-incarnation-1")).verdict;
    expect(first.incarnation).toEqual(expect.any(Number));
    expect((await api("PUT", `/v1/clusters/${id}`, { body: { ...config, fall: 5 } })).status).toBe(200);
    expect((await getVerdict(id, "nonce-incarnation-2")).verdict.incarnation).toBe(first.incarnation);

    expect((await api("DELETE", `/v1/clusters/${id}`)).status).toBe(204);
    await new Promise((r) => setTimeout(r, 5));
    expect((await api("PUT", `/v1/clusters/${id}`, { body: config })).status).toBe(201);
    const again = (await getVerdict(id, "nonce-incarnation-3")).verdict;
    expect(again.incarnation).toBeGreaterThan(first.incarnation);
  });
});

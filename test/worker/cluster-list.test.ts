import { describe, expect, it } from "vitest";
import { CLUSTER_PAGE_DEFAULT, CLUSTER_PAGE_MAX } from "../../worker/registry.js";
import { shardOf } from "../../worker/lease.js";
import { api, clusterConfig } from "./helpers.js";

const tcpProbe = { kind: "tcp", name: "pg", port: 1, timeoutMs: 200 };

/** Every id the list gives, page after page of `limit`. */
async function walk(limit: number): Promise<{ ids: string[]; pages: number }> {
  const ids: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const q: string = cursor === null ? `?limit=${limit}` : `?limit=${limit}&cursor=${cursor}`;
    const res = await api("GET", `/v1/clusters${q}`);
    expect(res.status).toBe(200);
    expect(res.json.clusters.length).toBeLessThanOrEqual(limit);
    ids.push(...res.json.clusters);
    cursor = res.json.nextCursor;
    pages++;
  } while (cursor !== null && pages < 100);
  return { ids, pages };
}

describe("GET /v1/clusters", () => {
  it("pages through every cluster in id order, across the registry shards, each id once", async () => {
    const prefix = `list-${crypto.randomUUID().slice(0, 6)}`;
    const mine = Array.from({ length: 7 }, (_, i) => `${prefix}-${i}`);
    expect(new Set(mine.map((id) => shardOf(id))).size).toBeGreaterThan(1);
    for (const id of mine)
      expect((await api("PUT", `/v1/clusters/${id}`, { body: clusterConfig([tcpProbe]) })).status).toBe(201);
    const all = await walk(CLUSTER_PAGE_MAX);
    for (const limit of [1, 2, 3]) {
      const paged = await walk(limit);
      expect(paged.ids).toEqual(all.ids);
      expect(paged.pages).toBeGreaterThanOrEqual(Math.ceil(all.ids.length / limit));
    }
    expect(all.ids).toEqual([...all.ids].sort());
    expect(all.ids.filter((id) => id.startsWith(prefix))).toEqual(mine);
    // The default page; the cursor is opaque (not the id in clear).
    const first = await api("GET", "/v1/clusters?limit=1");
    expect(first.json.nextCursor).not.toBe(first.json.clusters[0]);
    expect((await api("GET", "/v1/clusters")).json.clusters.length).toBeLessThanOrEqual(CLUSTER_PAGE_DEFAULT);
  });

  it("is described in /openapi.json: cursor, limit and its bounds, nextCursor", async () => {
    const doc = (await api("GET", "/openapi.json", { token: null })).json;
    const list = doc.paths["/v1/clusters"].get;
    const limit = list.parameters.find((p: any) => p.name === "limit");
    expect(limit.schema).toMatchObject({ minimum: 1, maximum: CLUSTER_PAGE_MAX, default: CLUSTER_PAGE_DEFAULT });
    expect(list.parameters.map((p: any) => p.name)).toContain("cursor");
    expect(list.responses["400"]).toBeDefined();
    expect(JSON.stringify(doc.components.schemas.ClusterList)).toContain("nextCursor");
  });

  it("answers 400 naming the field for a bad limit or cursor", async () => {
    for (const [q, field] of [
      ["limit=0", "limit"],
      [`limit=${CLUSTER_PAGE_MAX + 1}`, "limit"],
      ["limit=ten", "limit"],
      ["limit=1.5", "limit"],
      ["cursor=%20", "cursor"],
      ["cursor=!!!", "cursor"],
      [`cursor=${btoa("Not An Id")}`, "cursor"],
      [`cursor=${"A".repeat(300)}`, "cursor"],
    ] as const) {
      const res = await api("GET", `/v1/clusters?${q}`);
      expect(res.status, q).toBe(400);
      expect(res.json.error.code).toBe("invalid_query");
      expect(res.json.error.field, q).toBe(field);
    }
  });

  it("is the admin's only", async () => {
    expect((await api("GET", "/v1/clusters?limit=1", { token: "agent-token-0123456789abcdef0123456789" })).status).toBe(
      401,
    );
  });

  it("has no test-only alarm route unless the bench's config enables it", async () => {
    const res = await api("DELETE", "/v1/clusters/some-id/alarm");
    expect(res.status).toBe(404);
    expect(res.json.error.code).toBe("not_found");
  });
});

import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { api, clusterConfig, getVerdict, runRound, stubOf, uniqueId, waitForSeq } from "./helpers.js";

const tcpProbe = { kind: "tcp", name: "pg", port: 1, timeoutMs: 200 };
const DAY = 24 * 3_600_000;

describe("maintenance window bounds", () => {
  it("PUT: a window in force with a far-future `to` is a 400 naming the field, not a 500", async () => {
    const now = Date.now();
    const res = await api("PUT", `/v1/clusters/${uniqueId("far")}`, {
      body: clusterConfig([tcpProbe], { maintenance: [{ from: now - 1000, to: 9e15, reason: "forever" }] }),
    });
    expect(res.status).toBe(400);
    expect(res.json.error.field).toBe("maintenance.0.to");
  });

  it("PUT: a window obeys the POST rules (at most 7 days)", async () => {
    const now = Date.now();
    const res = await api("PUT", `/v1/clusters/${uniqueId("long")}`, {
      body: clusterConfig([tcpProbe], { maintenance: [{ from: now + DAY, to: now + 9 * DAY }] }),
    });
    expect(res.status).toBe(400);
    expect(res.json.error.field).toBe("maintenance.0.to");
    expect(res.json.error.message).toContain("7 days");
  });

  it("PUT: every timestamp is bounded, `from` included", async () => {
    const res = await api("PUT", `/v1/clusters/${uniqueId("from")}`, {
      body: clusterConfig([tcpProbe], { maintenance: [{ from: 9e15, to: 9e15 + 1000 }] }),
    });
    expect(res.status).toBe(400);
    expect(res.json.error.field).toBe("maintenance.0.from");
  });

  it("a stored record with an out-of-range window does not stop its own probe loop", async () => {
    const id = uniqueId("stuck");
    expect((await api("PUT", `/v1/clusters/${id}`, { body: clusterConfig([tcpProbe]) })).status).toBe(201);
    await waitForSeq(id, 1);
    // As a worker without the bound could have stored it: a window in force until year 287 000.
    await runInDurableObject(stubOf(id), (_, state) => {
      const row = state.storage.sql.exec<{ value: string }>("SELECT value FROM kv WHERE key = 'cluster'").one();
      const record = JSON.parse(row.value);
      record.config.maintenance = [{ from: Date.now() - 1000, to: 9e15, reason: "bad" }];
      state.storage.sql.exec("UPDATE kv SET value = ? WHERE key = 'cluster'", JSON.stringify(record));
    });
    const before = (await getVerdict(id)).verdict.seq;
    const after = await runRound(id);
    expect(after.seq).toBe(before + 1);
    expect((await api("GET", `/v1/clusters/${id}`)).status).toBe(200);
    const again = await runRound(id);
    expect(again.seq).toBe(before + 2);
  });
});

describe("query timestamp bounds", () => {
  it("uptime: `from` and `to` past year 10000 are a 400 naming the field", async () => {
    const id = uniqueId("upt");
    expect((await api("PUT", `/v1/clusters/${id}`, { body: clusterConfig([tcpProbe]) })).status).toBe(201);
    const res = await api("GET", `/v1/clusters/${id}/uptime?from=${9e15 - 1000}&to=${9e15}`);
    expect(res.status).toBe(400);
    expect(res.json.error.field).toBe("from");
    const to = await api("GET", `/v1/clusters/${id}/uptime?to=${9e15}`);
    expect(to.status).toBe(400);
    expect(to.json.error.field).toBe("to");
  });
});

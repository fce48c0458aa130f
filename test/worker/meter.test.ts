import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { Meter, statementKind } from "../../worker/cluster/meter.js";
import { api, clusterConfig, stubOf, uniqueId } from "./helpers.js";

describe("statementKind", () => {
  it("names the verb and the first table", () => {
    expect(statementKind("INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)")).toBe("INSERT kv");
    expect(statementKind("  select value FROM kv WHERE key = ?")).toBe("SELECT kv");
    expect(statementKind("UPDATE kv SET value = ? WHERE key = ?")).toBe("UPDATE kv");
    expect(statementKind("DELETE FROM events WHERE id <= (SELECT MAX(id) FROM events) - ?")).toBe("DELETE events");
    expect(statementKind("CREATE TABLE IF NOT EXISTS rounds (at INTEGER PRIMARY KEY)")).toBe("CREATE rounds");
    expect(statementKind("SELECT 1")).toBe("SELECT");
  });
});

describe("the meter", () => {
  it("sums the cursors' rows read and written per statement kind, and counts setAlarm", async () => {
    const id = uniqueId("meter");
    await runInDurableObject(stubOf(id), async (_, state) => {
      const meter = new Meter();
      const sql = meter.sql(state.storage.sql);
      sql.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)");
      for (let i = 0; i < 3; i++) sql.exec("INSERT INTO t (v) VALUES (?)", `v${i}`);
      // A cursor read after the next exec is still counted in full.
      const cursor = sql.exec<{ v: string }>("SELECT v FROM t");
      sql.exec("UPDATE t SET v = 'x' WHERE id = 1");
      expect(cursor.toArray()).toHaveLength(3);
      sql.exec("DELETE FROM t WHERE id > 1");
      const storage = meter.storage(state.storage);
      await storage.setAlarm(Date.now() + 60_000);
      expect(await storage.getAlarm()).not.toBeNull(); // other methods pass through, bound to the storage
      await storage.deleteAlarm();
      meter.count("alarm");
      meter.count("alarm");
      meter.sent(2);

      const s = meter.snapshot();
      expect(s.rowsWritten["INSERT t"]).toBe(3);
      expect(s.rowsWritten["UPDATE t"]).toBe(1);
      expect(s.rowsWritten["DELETE t"]).toBe(2);
      expect(s.rowsRead["SELECT t"]).toBe(3);
      expect(s.setAlarm).toBe(1);
      expect(s.invocations).toEqual({ alarm: 2 });
      expect(s.wsSent).toBe(2);
      expect(s.dbBytes).toBeGreaterThan(0);
      // A snapshot is a copy: later counts do not change it.
      meter.count("alarm");
      expect(s.invocations.alarm).toBe(2);
    });
  });

  it("is off in a deployment: the cluster view carries no meter", async () => {
    const id = uniqueId("meter");
    expect(
      (await api("PUT", `/v1/clusters/${id}`, { body: clusterConfig([{ kind: "tcp", name: "pg", port: 1 }]) })).status,
    ).toBe(201);
    const got = await api("GET", `/v1/clusters/${id}`);
    expect(got.status).toBe(200);
    expect(got.json).not.toHaveProperty("meter");
  });
});

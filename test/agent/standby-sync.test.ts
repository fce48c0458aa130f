import type pg from "pg";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FailbackConfig } from "../../agent/failback/config.js";
import { ReplicationConfig, resolveReplicationSecrets } from "../../agent/replication/config.js";
import { StandbySync } from "../../agent/standby-sync.js";
import { readState, writeState } from "../../agent/state.js";
import { endpoint } from "../support/wazo-pair-databases.js";
import { idleKeeper, tempDir } from "./helpers.js";
import { useWazoClients } from "./wazo-clients.js";

/**
 * The standby's database pass as the daemon runs it, against two real PostgreSQL servers:
 * never while active; after a failover, the slave's call records go back to the master first,
 * and replication waits until that has succeeded.
 */
const db = useWazoClients();
const dbs = db.servers;
let dir: { path: string; remove: () => Promise<void> };

beforeEach(async () => (dir = await tempDir()));
afterEach(async () => dir.remove());

const replication = () =>
  resolveReplicationSecrets(ReplicationConfig.parse({ master: endpoint(dbs.master), slave: endpoint(dbs.slave) }), {});
const failback = (tables?: unknown[]) =>
  FailbackConfig.parse({
    master: endpoint(dbs.master),
    slave: endpoint(dbs.slave),
    tables: tables ?? [
      { name: "call_log", key: null, idColumn: "id" },
      { name: "call_log_participant", key: ["uuid"], references: [{ column: "call_log_id", table: "call_log" }] },
      { name: "queue_log", key: null, idColumn: "id" },
    ],
  });

function sync(opts: { failback?: FailbackConfig | null; replication?: boolean } = {}) {
  const keeper = idleKeeper(dir.path);
  return new StandbySync({
    keeper,
    stateDir: dir.path,
    replication: opts.replication === false ? null : replication(),
    failback: opts.failback === undefined ? failback() : opts.failback,
    masterUp: () => true,
    log: () => {},
  });
}

const count = async (c: pg.Client, table: string) =>
  Number((await c.query(`SELECT count(*) AS n FROM ${table}`)).rows[0].n);
const role = (r: "standby" | "active", reconcilePending = false) =>
  writeState(dir.path, { v: 1, role: r, since: 1, lastAction: null, lastSeq: null, reconcilePending });

describe("standby database pass", () => {
  it("never replicates onto an active slave; does on a standby one", async () => {
    const before = await count(db.s, "userfeatures");
    await role("active");
    expect(await sync().run()).toBe("not-standby");
    expect(await count(db.s, "userfeatures")).toBe(before);
    await role("standby");
    const pass = sync();
    expect(await pass.run()).toBe("replicated");
    expect(pass.lastReplication?.ok).toBe(true);
    expect(await count(db.s, "userfeatures")).toBe(await count(db.m, "userfeatures"));
    expect(pass.reportField()).toMatchObject({ ok: true, error: null });
  });

  it("after a failover: the slave's call records reach the master exactly once, then replication resumes", async () => {
    // What the slave's Asterisk wrote while it was active (ids collide with the master's own).
    await db.s.query(
      `INSERT INTO call_log (date, source_exten, destination_exten) SELECT now(), '10' || g, '20' || g FROM generate_series(1, 25) g`,
    );
    await db.s.query(
      `INSERT INTO queue_log (time, callid, event) SELECT to_char(now(), 'YYYY-MM-DD HH24:MI:SS.US'), 'slave-' || g, 'ENTERQUEUE' FROM generate_series(1, 5) g`,
    );
    const masterCalls = await count(db.m, "call_log");
    await role("standby", true);
    const pass = sync();
    expect(await pass.run()).toBe("replicated");
    expect(pass.lastReconcile).toMatchObject({ ok: true });
    expect(await count(db.m, "call_log")).toBe(masterCalls + 25);
    expect(await count(db.m, "queue_log WHERE callid LIKE 'slave-%'")).toBe(5);
    const st = await readState(dir.path);
    expect(st.ok && st.state.reconcilePending).toBe(false);
    // Nothing is copied twice, even when asked again.
    await role("standby", true);
    expect(await sync().run()).toBe("replicated");
    expect(await count(db.m, "call_log")).toBe(masterCalls + 25);
  });

  it("a failing copy-back blocks replication, stays pending and raises an alert", async () => {
    await role("standby", true);
    await db.m.query(`UPDATE userfeatures SET firstname = 'changed-on-master' WHERE id = 1`);
    const pass = sync({ failback: failback([{ name: "no_such_table", key: null, idColumn: "id" }]) });
    expect(await pass.run()).toBe("reconcile-failed");
    expect(pass.lastReplication).toBeNull();
    expect(pass.alerts()).toEqual([expect.stringMatching(/^failback reconciliation failing: /)]);
    expect((await db.s.query(`SELECT firstname FROM userfeatures WHERE id = 1`)).rows[0]?.firstname).not.toBe(
      "changed-on-master",
    );
    const st = await readState(dir.path);
    expect(st.ok && st.state.reconcilePending).toBe(true);
  });

  it("a pass cancelled in flight (the verdict left 'up') applies nothing; the next one does", async () => {
    await role("standby");
    await db.m.query(`UPDATE userfeatures SET firstname = 'before-cancel' WHERE id = 2`);
    const pass = sync({ failback: null });
    const run = pass.run();
    pass.cancel();
    expect(await run).toBe("replication-failed");
    expect((await db.s.query(`SELECT firstname FROM userfeatures WHERE id = 2`)).rows[0]?.firstname).not.toBe(
      "before-cancel",
    );
    expect(await pass.run()).toBe("replicated");
    expect((await db.s.query(`SELECT firstname FROM userfeatures WHERE id = 2`)).rows[0]?.firstname).toBe(
      "before-cancel",
    );
  });

  it("a failing replication is an alert naming why", async () => {
    await role("standby");
    const broken = resolveReplicationSecrets(
      ReplicationConfig.parse({ master: { ...endpoint(dbs.master), port: 9 }, slave: endpoint(dbs.slave) }),
      {},
    );
    const keeperless = sync({ failback: null });
    (keeperless as unknown as { o: { replication: unknown } }).o.replication = broken;
    expect(await keeperless.run()).toBe("replication-failed");
    expect(keeperless.alerts()[0]).toMatch(/^replication failing: /);
    expect(keeperless.reportField()).toMatchObject({ ok: false, error: expect.any(String) });
  });
});

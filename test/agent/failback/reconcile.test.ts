import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { reconcile } from "../../../agent/failback/reconcile.js";
import { freePort } from "../../../scripts/edge.js";
import { connectPostgres, startPostgres, type PostgresServer } from "../../support/postgres.js";
import { blockedOnLock, counts, freshPair, tablesWith, union, view, waitFor, writeCalls, type Pair } from "./wazo.js";

let masterServer: PostgresServer;
let slaveServer: PostgresServer;
let pair: Pair;

beforeAll(async () => {
  [masterServer, slaveServer] = await Promise.all([startPostgres(), startPostgres()]);
});
afterAll(async () => {
  await Promise.all([masterServer?.stop(), slaveServer?.stop()]);
});
beforeEach(async () => {
  pair = await freshPair(masterServer, slaveServer);
});
afterEach(async () => {
  await pair.close();
});

/** The master before failover, the slave during it, the master again meanwhile: ids collide. */
async function failoverHistory(slaveCalls = 10) {
  await writeCalls(pair.master, "master", 3);
  await writeCalls(pair.slave, "slave", slaveCalls);
  await writeCalls(pair.master, "master-late", 2);
  return {
    masterBefore: await view(pair.master),
    slaveRows: await view(pair.slave),
    countsBefore: await counts(pair.master),
  };
}

describe("failback reconciliation: rows", () => {
  it("copies every slave row once under fresh master ids, children following their parents", async () => {
    const { masterBefore, slaveRows } = await failoverHistory(10);
    const idsBefore = (await pair.master.query<{ id: number }>("SELECT id FROM call_log ORDER BY id")).rows.map(
      (r) => r.id,
    );

    const r = await reconcile(pair.config());

    expect(r).toMatchObject({ ok: true, error: null, files: [] });
    expect(r.tables).toEqual([
      { name: "call_log", copied: 10, alreadyThere: 0 },
      { name: "call_log_participant", copied: 20, alreadyThere: 0 },
      { name: "cel", copied: 30, alreadyThere: 0 },
      { name: "queue_log", copied: 20, alreadyThere: 0 },
    ]);
    // The union, each row once, every participant and CEL row linked to its own call.
    expect(await view(pair.master)).toEqual(union(masterBefore, slaveRows));
    // The master's own rows kept their ids; the copies got new ones from its sequence...
    const after = await pair.master.query<{ id: number; conversation_id: string }>(
      "SELECT id, conversation_id FROM call_log ORDER BY id",
    );
    expect(after.rows.slice(0, 5).map((x) => x.id)).toEqual(idsBefore);
    expect(
      after.rows.filter((x) => x.conversation_id.startsWith("conv-slave-")).every((x) => x.id > Math.max(...idsBefore)),
    ).toBe(true);
    // ...so the master's next own call does not collide with them.
    await writeCalls(pair.master, "after", 1);
    expect((await counts(pair.master)).xivo_ha_reconciled).toBe(80);
  });

  it("a second run copies nothing; a later failover's rows are copied, and only those", async () => {
    const { masterBefore } = await failoverHistory(4);
    expect((await reconcile(pair.config())).ok).toBe(true);
    const once = await view(pair.master);

    const again = await reconcile(pair.config());
    expect(again.ok).toBe(true);
    expect(again.tables.map((t) => [t.copied, t.alreadyThere])).toEqual([
      [0, 4],
      [0, 8],
      [0, 12],
      [0, 8],
    ]);
    expect(await view(pair.master)).toEqual(once);

    // The next failover: the slave writes more (its ids continue), then fails back again.
    await writeCalls(pair.slave, "slave", 3, 4);
    const third = await reconcile(pair.config());
    expect(third.tables.map((t) => [t.copied, t.alreadyThere])).toEqual([
      [3, 4],
      [6, 8],
      [9, 12],
      [6, 8],
    ]);
    expect(await view(pair.master)).toEqual(union(masterBefore, await view(pair.slave)));
  });

  it("a master backend terminated mid-transaction leaves nothing; the retry copies exactly once", async () => {
    const { masterBefore, slaveRows, countsBefore } = await failoverHistory(6);
    // Hold queue_log (the last table) so the run stops there, after inserting the other three.
    const locker = await connectPostgres(masterServer, pair.database);
    const observer = await connectPostgres(masterServer, pair.database);
    try {
      await locker.query("BEGIN");
      await locker.query("LOCK TABLE queue_log IN ACCESS EXCLUSIVE MODE");
      const events: string[] = [];
      const run = reconcile(pair.config(), { log: (e, f) => events.push(`${e}:${String(f.name ?? "")}`) });
      const pid = await blockedOnLock(observer, "the reconciliation to block on queue_log");
      expect(events).toContain("failback.table:cel"); // three tables were written, uncommitted
      await observer.query("SELECT pg_terminate_backend($1)", [pid]);
      const r = await run;
      await locker.query("ROLLBACK");

      expect(r.ok).toBe(false);
      expect(r.tables).toEqual([]);
      expect(r.error).toMatch(/^copy-back rolled back, nothing written: .*terminat/i);
      expect(await counts(pair.master)).toEqual(countsBefore);
      expect(await view(pair.master)).toEqual(masterBefore);
    } finally {
      await Promise.all([locker.end(), observer.end()]);
    }

    const retry = await reconcile(pair.config());
    expect(retry.ok).toBe(true);
    expect(retry.tables.map((t) => t.copied)).toEqual([6, 12, 18, 12]);
    expect(await view(pair.master)).toEqual(union(masterBefore, slaveRows));
  });

  it("an abort between batches leaves nothing; the retry copies exactly once", async () => {
    const { masterBefore, slaveRows, countsBefore } = await failoverHistory(5);
    const stop = new AbortController();
    const r = await reconcile(pair.config(), {
      signal: stop.signal,
      // Half-way through cel, after call_log and its participants were inserted.
      log: (e, f) => e === "failback.batch" && f.table === "cel" && stop.abort(new Error("agent shutting down")),
    });
    expect(r).toMatchObject({
      ok: false,
      tables: [],
      error: "copy-back rolled back, nothing written: aborted (agent shutting down)",
    });
    expect(await counts(pair.master)).toEqual(countsBefore);

    const retry = await reconcile(pair.config());
    expect(retry.ok).toBe(true);
    expect(await view(pair.master)).toEqual(union(masterBefore, slaveRows));
  });

  it("an abort while a statement waits on a lock ends the run at once, nothing written", async () => {
    const { countsBefore } = await failoverHistory(2);
    const locker = await connectPostgres(masterServer, pair.database);
    const observer = await connectPostgres(masterServer, pair.database);
    try {
      await locker.query("BEGIN");
      await locker.query("LOCK TABLE cel IN ACCESS EXCLUSIVE MODE");
      const stop = new AbortController();
      const run = reconcile(pair.config({ statementTimeoutMs: 600_000 }), { signal: stop.signal });
      await blockedOnLock(observer, "the reconciliation to block on cel");
      stop.abort(new Error("SIGTERM"));
      const r = await run; // would wait for the lock (10 min) if the abort did not cut it
      expect(r.error).toBe("copy-back rolled back, nothing written: aborted (SIGTERM)");
      await locker.query("ROLLBACK");
      await waitFor(
        async () =>
          (await observer.query("SELECT 1 FROM pg_stat_activity WHERE application_name LIKE 'xivo-ha-failback-%'"))
            .rowCount === 0
            ? true
            : null,
        "the aborted backends to exit",
      );
      expect(await counts(pair.master)).toEqual(countsBefore);
    } finally {
      await Promise.all([locker.end(), observer.end()]);
    }
  });

  it("master down: ok false, a clear error, nothing written, no password anywhere", async () => {
    await writeCalls(pair.slave, "slave", 2);
    const closed = await freePort();
    const lines: string[] = [];
    const cfg = pair.config();
    const r = await reconcile(
      { ...cfg, master: { ...cfg.master, port: closed } },
      { log: (e, f) => lines.push(JSON.stringify([e, f])) },
    );
    expect(r.ok).toBe(false);
    expect(r.tables).toEqual([]);
    expect(r.error).toMatch(
      new RegExp(
        `^cannot connect to the master \\(postgres@127\\.0\\.0\\.1:${closed}/${pair.database}\\): .*ECONNREFUSED`,
      ),
    );

    const wrongPassword = await reconcile(
      { ...cfg, master: { ...cfg.master, password: "not-the-password-123" } },
      { log: (e, f) => lines.push(JSON.stringify([e, f])) },
    );
    expect(wrongPassword.error).toMatch(/^cannot connect to the master .*password authentication failed/);
    const everything = JSON.stringify([r, wrongPassword, lines]);
    for (const secret of [cfg.master.password!, cfg.slave.password!, "not-the-password-123"])
      expect(everything).not.toContain(secret);
    expect((await counts(pair.master)).call_log).toBe(0);
  });

  it("natural-key mode: rows the master already holds are recognised, not copied again", async () => {
    const { masterBefore } = await failoverHistory(4);
    // Someone already carried the first call's CEL rows to the master (without the link).
    // (As text: a JS Date would drop the microseconds and make them different rows.)
    const first = await pair.slave.query(
      "SELECT eventtype, eventtime::text, cid_name, cid_num, exten, context, channame, uniqueid, linkedid FROM cel WHERE uniqueid = 'uid-slave-0'",
    );
    for (const e of first.rows as Record<string, unknown>[]) {
      await pair.master.query(
        "INSERT INTO cel (eventtype, eventtime, cid_name, cid_num, exten, context, channame, uniqueid, linkedid) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        [e.eventtype, e.eventtime, e.cid_name, e.cid_num, e.exten, e.context, e.channame, e.uniqueid, e.linkedid],
      );
    }
    const cfg = pair.config({ tables: tablesWith("cel", { key: ["uniqueid", "eventtype", "eventtime"] }) });
    const r = await reconcile(cfg);
    expect(r.ok).toBe(true);
    expect(r.tables.find((t) => t.name === "cel")).toEqual({ name: "cel", copied: 9, alreadyThere: 3 });
    const cel = await pair.master.query<{ uniqueid: string; n: string }>(
      "SELECT uniqueid, count(*) AS n FROM cel WHERE uniqueid LIKE 'uid-slave-%' GROUP BY 1 ORDER BY 1",
    );
    expect(cel.rows).toEqual(["0", "1", "2", "3"].map((i) => ({ uniqueid: `uid-slave-${i}`, n: "3" })));

    const again = await reconcile(cfg);
    expect(again.tables.map((t) => t.copied)).toEqual([0, 0, 0, 0]);
    expect((await counts(pair.master)).cel).toBe(masterBefore.cel.length + 12);
  });

  it("refuses a schema mismatch by name, nothing written", async () => {
    const { countsBefore } = await failoverHistory(2);
    await pair.master.query("ALTER TABLE cel DROP COLUMN extra");
    const r = await reconcile(pair.config());
    expect(r.error).toBe(
      "copy-back rolled back, nothing written: public.cel: column(s) extra exist on the slave but not on the master (different schema versions?)",
    );
    expect(await counts(pair.master)).toEqual({ ...countsBefore, xivo_ha_reconciled: 0 });
  });

  it("refuses to copy a database into itself", async () => {
    await writeCalls(pair.slave, "slave", 1);
    const cfg = pair.config();
    const r = await reconcile({ ...cfg, master: cfg.slave });
    expect(r.error).toMatch(/same database/);
    expect((await counts(pair.slave)).call_log).toBe(1);
  });
});

describe("failback reconciliation: least privilege", () => {
  it("runs as a user with only the documented rights (ledger created at install)", async () => {
    const { masterBefore, slaveRows } = await failoverHistory(3);
    // What agent/failback/README.md tells the installer to run.
    await pair.master.query(`
      CREATE ROLE failback_m LOGIN PASSWORD 'm-pw';
      CREATE TABLE xivo_ha_reconciled (origin text NOT NULL, tbl text NOT NULL, origin_key text NOT NULL, master_id bigint,
        reconciled_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (origin, tbl, origin_key));
      GRANT SELECT, INSERT ON call_log, call_log_participant, cel, queue_log, xivo_ha_reconciled TO failback_m;
      GRANT USAGE ON SEQUENCE call_log_id_seq, cel_id_seq, queue_log_id_seq TO failback_m;`);
    await pair.slave.query(`
      CREATE ROLE failback_s LOGIN PASSWORD 's-pw';
      GRANT SELECT ON call_log, call_log_participant, cel, queue_log TO failback_s;`);
    const cfg = pair.config();
    const r = await reconcile({
      ...cfg,
      ledger: { ...cfg.ledger, create: false },
      master: { ...cfg.master, user: "failback_m", password: "m-pw" },
      slave: { ...cfg.slave, user: "failback_s", password: "s-pw" },
    });
    expect(r.error).toBeNull();
    expect(await view(pair.master)).toEqual(union(masterBefore, slaveRows));
    // The default origin, the slave cluster's system identifier, needs no special right either.
    const origins = await pair.master.query("SELECT DISTINCT origin FROM xivo_ha_reconciled");
    const sysid = await pair.slave.query<{ id: string }>(
      "SELECT system_identifier::text AS id FROM pg_control_system()",
    );
    expect(origins.rows).toEqual([{ origin: `pg-${sysid.rows[0]!.id}` }]);
  });
});

describe("failback reconciliation: file-sync hooks", () => {
  it("runs the hooks after the commit; a failing one makes the report not ok, with its reason", async () => {
    await writeCalls(pair.slave, "slave", 2);
    const node = process.execPath;
    const r = await reconcile(
      pair.config({
        fileSync: [
          { name: "voicemail", argv: [node, "-e", "process.exit(0)"] },
          {
            name: "recordings",
            argv: [node, "-e", "console.error('rsync: connection unexpectedly closed'); process.exit(12)"],
          },
          { name: "sounds", argv: [node, "-e", "setInterval(() => {}, 1000)"], timeoutMs: 200 },
        ],
      }),
    );
    expect(r.ok).toBe(false);
    expect(r.tables.map((t) => t.copied)).toEqual([2, 4, 6, 4]); // the rows are committed all the same
    expect(r.files.map((f) => [f.name, f.ok])).toEqual([
      ["voicemail", true],
      ["recordings", false],
      ["sounds", false],
    ]);
    expect(r.error).toBe(
      "file sync failed: recordings (exit 12: rsync: connection unexpectedly closed); sounds (timed out after 200 ms (killed))",
    );
  });

  it("still runs the hooks when the copy-back fails, and reports both", async () => {
    const cfg = pair.config({ fileSync: [{ name: "voicemail", argv: [process.execPath, "-e", "process.exit(0)"] }] });
    const r = await reconcile({ ...cfg, master: { ...cfg.master, port: await freePort() } });
    expect(r.ok).toBe(false);
    expect(r.files).toMatchObject([{ name: "voicemail", ok: true }]);
    expect(r.error).toMatch(/^cannot connect to the master .*ECONNREFUSED/);
  });
});

import type pg from "pg";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { reconcile } from "../../../agent/failback/reconcile.js";
import { recordBaseline } from "../../../agent/failback/userstate.js";
import { mergeRow } from "../../../agent/failback/userstate-merge.js";
import { connectPostgres, startPostgres, type PostgresServer } from "../../support/postgres.js";
import { tempDir } from "../helpers.js";
import { blockedOnLock, freshPair, type Pair, USER_SERVICE_COLUMNS } from "./wazo.js";

/**
 * The users' own settings at failback, on two real PostgreSQL servers that keep commit times
 * (track_commit_timestamp): a baseline recorded as at failover, changes on the "active" slave and
 * on the master, then the copy-back.
 */
let masterServer: PostgresServer;
let slaveServer: PostgresServer;
let pair: Pair;
let dir: { path: string; remove: () => Promise<void> };

beforeAll(async () => {
  const settings = { track_commit_timestamp: "on" };
  [masterServer, slaveServer] = await Promise.all([startPostgres({ settings }), startPostgres({ settings })]);
});
afterAll(async () => {
  await Promise.all([masterServer?.stop(), slaveServer?.stop()]);
});
beforeEach(async () => {
  pair = await freshPair(masterServer, slaveServer);
  dir = await tempDir();
  // Wazo's userfeatures, the columns that matter here (xivo-dao's names and types).
  for (const db of [pair.master, pair.slave]) {
    await db.query(`CREATE TABLE userfeatures (
      id serial PRIMARY KEY, uuid varchar(38) NOT NULL, firstname varchar(128) NOT NULL DEFAULT '',
      enablevoicemail integer NOT NULL DEFAULT 0, CONSTRAINT userfeatures_uuid UNIQUE (uuid))`);
    await db.query(USER_SERVICE_COLUMNS);
    // As replication leaves them: the same users on both nodes.
    await db.query(
      "INSERT INTO userfeatures (uuid, firstname) SELECT 'user-' || g, 'Zoë ' || g FROM generate_series(1, 8) g",
    );
  }
});
afterEach(async () => {
  await pair.close();
  await dir.remove();
});

const log: string[] = [];
const logger = (event: string, fields?: Record<string, unknown>) => void log.push(`${event} ${JSON.stringify(fields)}`);
const failover = () => recordBaseline(pair.config(), dir.path, false, logger);
const failback = () => reconcile(pair.config(), { stateDir: dir.path });
const set = (db: pg.Client, user: number, sql: string) =>
  db.query(`UPDATE userfeatures SET ${sql} WHERE uuid = $1`, [`user-${user}`]);
const row = async (db: pg.Client, user: number) =>
  (
    await db.query(
      "SELECT firstname, enablednd, enableunc, destunc, enablerna, destrna, enablebusy, destbusy FROM userfeatures WHERE uuid = $1",
      [`user-${user}`],
    )
  ).rows[0];
const count = async (db: pg.Client, sql: string) => (await db.query<{ n: number }>(sql)).rows[0]!.n;
const ledgerRows = () =>
  count(pair.master, "SELECT count(*)::int AS n FROM xivo_ha_reconciled WHERE tbl LIKE 'userstate:%'");
// Commit times come from each server's clock; both are this machine's, so a pause orders them.
const later = () => new Promise((r) => setTimeout(r, 20));

describe("user state at failback", () => {
  it("DND and a forward set on the active slave reach the master; the later change wins per column", async () => {
    await failover();
    // While the slave is active: users 1 and 2 change their own settings there.
    await set(pair.slave, 1, "enablednd = 1, enableunc = 1, destunc = '0611223344'");
    await set(pair.master, 3, "destbusy = '3003', enablebusy = 1"); // the master first...
    await later();
    await set(pair.slave, 3, "destbusy = '2003', enablebusy = 1"); // ...then the slave: the slave's wins
    await set(pair.slave, 4, "destrna = '2004', enablerna = 1"); // the slave first...
    await later();
    await set(pair.master, 4, "destrna = '3004'"); // ...then the master: the master's wins
    await set(pair.slave, 8, "destbusy = '2008'"); // the slave first...
    await later();
    await set(pair.master, 8, "destbusy = '3008'"); // ...then the master: its only change lost
    await set(pair.slave, 5, "enablednd = 1"); // the slave's DND...
    await set(pair.master, 5, "firstname = 'renamed on the master'"); // ...and another column on the master
    await set(pair.slave, 6, "enablednd = 1");
    await pair.master.query("DELETE FROM userfeatures WHERE uuid = 'user-6'"); // deleted meanwhile
    await pair.slave.query("INSERT INTO userfeatures (uuid, enablednd) VALUES ('user-new', 1)"); // created on the slave

    const r = await failback();

    expect(r.ok).toBe(true);
    expect(r.userState?.tables).toEqual([
      expect.objectContaining({
        table: "public.userfeatures",
        changedOnSlave: 6,
        applied: 4,
        keptMaster: 1,
        alreadyDone: 0,
        skipped: 2,
      }),
    ]);
    const notes = r.userState!.tables[0]!.notes;
    expect(notes).toEqual(
      expect.arrayContaining([
        "user user-new: created on the slave while it was active: skipped (create it on the master)",
        "user user-6: deleted on the master meanwhile: skipped",
        expect.stringMatching(/^user user-3: destbusy changed on both nodes, slave kept \(slave .* vs master .*\)$/),
        expect.stringMatching(/^user user-4: destrna changed on both nodes, master kept/),
        expect.stringMatching(/^user user-8: destbusy changed on both nodes, master kept/),
      ]),
    );
    expect(await row(pair.master, 1)).toMatchObject({ enablednd: 1, enableunc: 1, destunc: "0611223344" });
    expect(await row(pair.master, 3)).toMatchObject({ enablebusy: 1, destbusy: "2003" });
    // User 4: the enable came from the slave alone, the destination lost to the master's later one.
    expect(await row(pair.master, 4)).toMatchObject({ enablerna: 1, destrna: "3004" });
    expect(await row(pair.master, 5)).toMatchObject({ enablednd: 1, firstname: "renamed on the master" });
    expect(await row(pair.master, 8)).toMatchObject({ destbusy: "3008" });
    expect(await row(pair.master, 2)).toMatchObject({ enablednd: 0, destunc: "" }); // untouched
    expect(
      await count(pair.master, "SELECT count(*)::int AS n FROM userfeatures WHERE uuid IN ('user-6', 'user-new')"),
    ).toBe(0);
  });

  it("a second failback of the same failover applies nothing again, even over a newer master change", async () => {
    await failover();
    await set(pair.slave, 1, "enablednd = 1, enablebusy = 1, destbusy = '1002'");
    expect((await failback()).userState?.tables[0]).toMatchObject({ applied: 1 });
    // The administrator turns the DND off on the master after the failback...
    await set(pair.master, 1, "enablednd = 0");
    // ...and the copy-back runs again (a retry after an unknown COMMIT outcome, a second pass).
    const again = await failback();
    expect(again.userState?.tables[0]).toMatchObject({ changedOnSlave: 1, applied: 0, alreadyDone: 1 });
    expect(await row(pair.master, 1)).toMatchObject({ enablednd: 0, destbusy: "1002" });

    // The next failover has a baseline of its own: what the users change then goes back.
    await pair.slave.query("UPDATE userfeatures s SET enablednd = 0"); // replication brought the master's
    await failover();
    await set(pair.slave, 1, "enablednd = 1");
    expect((await failback()).userState?.tables[0]).toMatchObject({ applied: 1, alreadyDone: 0 });
    expect(await row(pair.master, 1)).toMatchObject({ enablednd: 1 });
  });

  it("a copy-back interrupted on the master leaves nothing; the retry applies exactly once", async () => {
    await failover();
    await set(pair.slave, 2, "enablednd = 1, enableunc = 1, destunc = '0655'");
    const before = await row(pair.master, 2);
    const locker = await connectPostgres(masterServer, pair.database);
    const observer = await connectPostgres(masterServer, pair.database);
    try {
      await locker.query("BEGIN");
      await locker.query("LOCK TABLE userfeatures IN ACCESS EXCLUSIVE MODE");
      const run = failback();
      const pid = await blockedOnLock(observer, "the copy-back to block on userfeatures");
      await observer.query("SELECT pg_terminate_backend($1)", [pid]);
      const r = await run;
      await locker.query("ROLLBACK");
      expect(r).toMatchObject({ ok: false, userState: null });
      expect(r.error).toMatch(/^copy-back rolled back, nothing written: .*terminat/i);
      expect(await row(pair.master, 2)).toEqual(before);
      expect(await ledgerRows()).toBe(0);
    } finally {
      await Promise.all([locker.end(), observer.end()]);
    }
    const retry = await failback();
    expect(retry.userState?.tables[0]).toMatchObject({ applied: 1, alreadyDone: 0 });
    expect(await row(pair.master, 2)).toMatchObject({ enablednd: 1, enableunc: 1, destunc: "0655" });
    expect((await failback()).userState?.tables[0]).toMatchObject({ applied: 0, alreadyDone: 1 });
    expect(await ledgerRows()).toBe(1);
  });

  it("a later failover before the copy-back succeeded keeps the first baseline", async () => {
    await failover();
    await set(pair.slave, 7, "enablednd = 1");
    // Failback, the copy-back fails (still pending), then a second failover: the slave has not
    // replicated since, so its rows still hold the first period's change.
    await recordBaseline(pair.config(), dir.path, true, logger);
    expect((await failback()).userState?.tables[0]).toMatchObject({ applied: 1 });
    expect(await row(pair.master, 7)).toMatchObject({ enablednd: 1 });
  });

  it("no baseline (none recorded at failover): the rows still go back; the report says why users did not", async () => {
    await set(pair.slave, 1, "enablednd = 1");
    const r = await failback();
    expect(r.ok).toBe(true);
    expect(r.userState).toEqual({
      baseline: null,
      tables: [],
      notes: ["user state not copied back: no user-state baseline was recorded at failover"],
    });
    expect(await row(pair.master, 1)).toMatchObject({ enablednd: 0 });
  });

  it("a configured column missing on the master is an error naming it; nothing written", async () => {
    await pair.slave.query("ALTER TABLE userfeatures ADD COLUMN ringforward varchar(64)");
    const userState = { tables: [{ name: "userfeatures", key: "uuid", columns: ["enablednd", "ringforward"] }] };
    await recordBaseline(pair.config({ userState }), dir.path, false, logger);
    await set(pair.slave, 1, "enablednd = 1");
    const r = await reconcile(pair.config({ userState }), { stateDir: dir.path });
    expect(r.ok).toBe(false);
    expect(r.error).toMatch(/userfeatures: column\(s\) ringforward missing \(or generated\) on the master/);
    expect(await row(pair.master, 1)).toMatchObject({ enablednd: 0 });
  });

  it("a key without a unique index on the master is refused", async () => {
    const userState = { tables: [{ name: "userfeatures", key: "firstname", columns: ["enablednd"] }] };
    await recordBaseline(pair.config({ userState }), dir.path, false, logger);
    await set(pair.slave, 1, "enablednd = 1");
    const r = await reconcile(pair.config({ userState }), { stateDir: dir.path });
    expect(r.error).toMatch(/key firstname is not NOT NULL with a unique index on the master/);
  });
});

describe("user state merge (pure)", () => {
  const cols = ["enablednd", "destunc"];
  const node = (values: string[], committedAt: string | null = null) => ({ values, committedAt });
  it("takes the slave's column when only the slave changed it, keeps the master's otherwise", () => {
    const m = mergeRow(cols, ["0", '""'], node(["1", '""']), node(["0", '"0611"']));
    expect(m).toEqual({ merged: ["1", '"0611"'], fromSlave: ["enablednd"], conflicts: [] });
  });
  it("both changed: the later commit wins; an unknown commit time keeps the master's", () => {
    const base = ["0", '""'];
    const s = (at: string | null) => node(["1", '"2"'], at);
    const m = (at: string | null) => node(["0", '"3"'], at);
    expect(mergeRow(cols, base, s("2026-01-01T10:00:01.000000"), m("2026-01-01T10:00:00.999999"))).toMatchObject({
      merged: ["1", '"2"'],
      fromSlave: ["enablednd", "destunc"],
      conflicts: [{ column: "destunc", winner: "slave" }],
    });
    expect(mergeRow(cols, base, s("2026-01-01T10:00:00.000000"), m("2026-01-01T10:00:00.000001"))).toMatchObject({
      merged: ["1", '"3"'],
      conflicts: [{ column: "destunc", winner: "master" }],
    });
    expect(mergeRow(cols, base, s(null), m("2026-01-01T10:00:00.000000"))).toMatchObject({
      merged: ["1", '"3"'],
      conflicts: [{ column: "destunc", winner: "master", why: expect.stringMatching(/unknown/) }],
    });
  });
  it("both made the same change: nothing to do, no conflict", () => {
    expect(mergeRow(cols, ["0", '""'], node(["1", '""']), node(["1", '""']))).toEqual({
      merged: ["1", '""'],
      fromSlave: [],
      conflicts: [],
    });
  });
});

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createReplicationMemo } from "../../../agent/replication/memo.js";
import { replicate, type ReplicationReport } from "../../../agent/replication/run.js";
import { EXCLUDED_TABLES, REPLICATED_TABLES } from "../../support/wazo-schema.js";
import { allRowVersions, checksums, REPLICA_USER, sequenceStates, startPair, type Pair } from "./helpers.js";
import { until } from "../../support/until.js";

// Sequences owned by excluded tables stay the slave's own, like the tables.
const EXCLUDED_SEQUENCES = [
  "call_log_id_seq",
  "cel_id_seq",
  "dhcp_id_seq",
  "mail_id_seq",
  "monitoring_id_seq",
  "netiface_id_seq",
  "queue_log_id_seq",
  "resolvconf_id_seq",
  "stat_agent_id_seq",
  "stat_call_on_queue_id_seq",
  "stat_queue_id_seq",
];

const copiedNames = (r: ReplicationReport) => r.copied.map((c) => c.table).sort();

describe("replicate(): master → slave", () => {
  let p: Pair;
  let slaveExcluded: Record<string, string>;
  let slaveExcludedSeqs: Record<string, string>;

  beforeAll(async () => {
    p = await startPair({ scale: 1, blobBytes: 512 * 1024 });
    slaveExcluded = await checksums(p.s, EXCLUDED_TABLES);
    const seqs = await sequenceStates(p.s);
    slaveExcludedSeqs = Object.fromEntries(EXCLUDED_SEQUENCES.map((n) => [n, seqs[n]!]));
  });
  afterAll(async () => {
    await p?.stop();
  });

  it("the master role it reads with can read everything and write nothing", async () => {
    const { Client } = (await import("pg")).default;
    const c = new Client({
      host: p.master.host,
      port: p.master.port,
      database: "asterisk",
      user: REPLICA_USER,
      password: p.cfg().master.password,
    });
    await c.connect();
    try {
      await expect(c.query("SELECT count(*) FROM public.userfeatures")).resolves.toBeTruthy();
      await expect(c.query("DELETE FROM public.context")).rejects.toThrow(/permission denied/);
      await expect(c.query("SELECT nextval('public.extensions_id_seq')")).rejects.toThrow(/permission denied/);
    } finally {
      await c.end();
    }
    expect(p.cfg().master.user).toBe(REPLICA_USER);
  });

  it("a first run copies every replicated table and sequence, and the slave equals the master", async () => {
    const events: string[] = [];
    const report = await replicate(p.cfg(), { log: (e, f) => events.push(`${e} ${JSON.stringify(f)}`) });
    expect(report.error).toBeNull();
    expect(report.ok).toBe(true);
    expect(report.drift).toEqual([]);
    // paging is empty on both sides: nothing to copy.
    expect(copiedNames(report)).toEqual(REPLICATED_TABLES.filter((t) => t !== "paging"));
    expect(report.skipped).toEqual(["paging"]);
    expect(report.rows).toBeGreaterThan(3000);
    expect(report.bytes).toBeGreaterThan(4 * 512 * 1024);
    expect(report.copied.find((c) => c.table === "userfeatures")?.rows).toBe(400);

    expect(await checksums(p.s, REPLICATED_TABLES)).toEqual(await checksums(p.m, REPLICATED_TABLES));
    // Not one password in the logs.
    expect(events.join("\n")).not.toContain(p.cfg().master.password!);
    expect(events.join("\n")).not.toContain(p.slave.password);
  });

  it("leaves the excluded tables and their sequences as the slave had them", async () => {
    expect(await checksums(p.s, EXCLUDED_TABLES)).toEqual(slaveExcluded);
    const seqs = await sequenceStates(p.s);
    for (const [n, v] of Object.entries(slaveExcludedSeqs)) expect(seqs[n], n).toBe(v);
    // …and they do differ from the master's, so the check above means something.
    expect((await checksums(p.m, ["call_log"])).call_log).not.toBe(slaveExcluded.call_log);
  });

  it("sets every replicated sequence to the master's value, serial, identity and free ones alike", async () => {
    const [m, s] = await Promise.all([sequenceStates(p.m), sequenceStates(p.s)]);
    const replicated = Object.keys(m).filter((n) => !EXCLUDED_SEQUENCES.includes(n));
    expect(replicated).toEqual(
      expect.arrayContaining([
        "agentfeatures_id_seq",
        "musiconhold_id_seq",
        "provisioning_seq",
        "userfeatures_id_seq",
        "paging_id_seq",
      ]),
    );
    for (const n of replicated) expect(s[n], n).toBe(m[n]);
    expect(m.provisioning_seq).toBe("1002/true");
  });

  it("copies large bytea values, identity and generated columns exactly", async () => {
    const q = `SELECT string_agg(id || ':' || length(content) || ':' || md5(content) || ':' || checksum, ',' ORDER BY id) AS v FROM public.moh_file`;
    const [m, s] = await Promise.all([p.m.query(q), p.s.query(q)]);
    expect(s.rows[0].v).toBe(m.rows[0].v);
    expect(s.rows[0].v).toContain(`:${512 * 1024}:`);
    const g = await p.s.query(
      `SELECT count(*)::int AS bad FROM public.userfeatures WHERE fullname IS DISTINCT FROM firstname || ' ' || lastname`,
    );
    expect(g.rows[0].bad).toBe(0);
    const ids = await p.s.query(`SELECT min(id)::int AS lo, max(id)::int AS hi FROM public.agentfeatures`);
    expect(ids.rows[0]).toEqual({ lo: 1, hi: 50 });
  });

  it("a run with nothing changed rewrites nothing", async () => {
    const before = await allRowVersions(p.s, REPLICATED_TABLES);
    const seqBefore = await sequenceStates(p.s);
    const report = await replicate(p.cfg());
    expect(report.ok).toBe(true);
    expect(report.copied).toEqual([]);
    expect(report.sequences).toEqual([]);
    expect([...report.skipped].sort()).toEqual([...REPLICATED_TABLES].sort());
    expect(report.rows).toBe(0);
    expect(await allRowVersions(p.s, REPLICATED_TABLES)).toEqual(before);
    expect(await sequenceStates(p.s)).toEqual(seqBefore);
  });

  it("after a few changes on the master, copies only the tables that changed", async () => {
    await p.m.query(`UPDATE public.userfeatures SET firstname = 'Renamed' WHERE id = 7;
                     INSERT INTO public.extensions (context, exten, type) VALUES ('ctx-1', '99999', 'user');
                     DELETE FROM public.queuemember WHERE interface = 'PJSIP/line5';
                     SELECT nextval('public.provisioning_seq');`);
    const untouched = REPLICATED_TABLES.filter((t) => !["userfeatures", "extensions", "queuemember"].includes(t));
    const before = await allRowVersions(p.s, untouched);

    const report = await replicate(p.cfg());
    expect(report.error).toBeNull();
    expect(copiedNames(report)).toEqual(["extensions", "queuemember", "userfeatures"]);
    expect([...report.skipped].sort()).toEqual([...untouched].sort());
    expect(report.sequences.sort()).toEqual(["extensions_id_seq", "provisioning_seq"]);
    // userfeatures is referenced by tables that stay (voicemail, func_key…, session): emptied with DELETE.
    expect(report.copied.find((c) => c.table === "userfeatures")?.cleared).toBe("delete");
    expect(report.copied.find((c) => c.table === "queuemember")?.cleared).toBe("truncate");

    expect(await checksums(p.s, REPLICATED_TABLES)).toEqual(await checksums(p.m, REPLICATED_TABLES));
    expect(await allRowVersions(p.s, untouched)).toEqual(before);
    expect(await checksums(p.s, EXCLUDED_TABLES)).toEqual(slaveExcluded);
    const s = await p.s.query(`SELECT fullname FROM public.userfeatures WHERE id = 7`);
    expect(s.rows[0].fullname).toBe("Renamed Last7");
  });

  it("a change in a slave table is undone (the fingerprint compares both sides, not a memory of the last run)", async () => {
    await p.s.query(`UPDATE public.schedule SET name = 'edited on the slave' WHERE id = 3`);
    const report = await replicate(p.cfg());
    expect(copiedNames(report)).toEqual(["schedule"]);
    expect(await checksums(p.s, ["schedule"])).toEqual(await checksums(p.m, ["schedule"]));
  });

  it("honours include/exclude globs", async () => {
    await p.m.query(
      `UPDATE public.queue SET timeout = timeout + 1; UPDATE public.queuefeatures SET timeout = timeout + 1; UPDATE public.context SET commented = 1 WHERE name = 'ctx-3'`,
    );
    const before = await checksums(p.s, ["queue", "queuefeatures", "context"]);
    const report = await replicate(p.cfg({ include: ["queue*"], exclude: ["queuefeatures", ...p.cfg().exclude] }));
    expect(report.ok).toBe(true);
    expect(copiedNames(report)).toEqual(["queue"]);
    expect([...report.skipped].sort()).toEqual(["queuemember"]);
    const after = await checksums(p.s, ["queue", "queuefeatures", "context"]);
    expect(after.queue).toBe((await checksums(p.m, ["queue"])).queue);
    expect(after.queuefeatures).toBe(before.queuefeatures);
    expect(after.context).toBe(before.context);
  });

  it("with a memo, unchanged tables are skipped unread; a change on either node is still found", async () => {
    // Earlier writes' counts out of the way: each still pending would move its table once.
    await p.counted();
    const memo = createReplicationMemo();
    const plan = () => {
      const events: Record<string, unknown>[] = [];
      return {
        events,
        log: (e: string, f: Record<string, unknown>) => void (e === "replication.plan" && events.push(f)),
      };
    };
    const first = plan();
    expect((await replicate(p.cfg(), { memo, log: first.log })).ok).toBe(true);
    expect(first.events[0]).toMatchObject({ quiet: 0 });

    const quiet = plan();
    const before = await allRowVersions(p.s, REPLICATED_TABLES);
    const r2 = await replicate(p.cfg(), { memo, log: quiet.log });
    expect(r2.copied).toEqual([]);
    expect(quiet.events[0]).toMatchObject({ quiet: REPLICATED_TABLES.length, fingerprinted: 0, copy: [] });
    expect(await allRowVersions(p.s, REPLICATED_TABLES)).toEqual(before);

    // A no-op UPDATE moves the marker but not the contents: fingerprinted, not copied.
    await p.m.query(
      `UPDATE public.queue SET timeout = timeout WHERE name = 'queue1'; UPDATE public.musiconhold SET mode = 'custom' WHERE id = 2`,
    );
    await p.s.query(`DELETE FROM public.trunkfeatures WHERE id = 1`);
    await p.counted();
    const moved = plan();
    const r3 = await replicate(p.cfg(), { memo, log: moved.log });
    expect(copiedNames(r3)).toEqual(["musiconhold", "trunkfeatures"]);
    expect(moved.events[0]).toMatchObject({ quiet: REPLICATED_TABLES.length - 3, fingerprinted: 3 });
    expect(await checksums(p.s, REPLICATED_TABLES)).toEqual(await checksums(p.m, REPLICATED_TABLES));

    const again = plan();
    expect((await replicate(p.cfg(), { memo, log: again.log })).copied).toEqual([]);
    // The run's own writes on the slave were counted as the memo expected: nothing moved.
    expect(again.events[0]).toMatchObject({ quiet: REPLICATED_TABLES.length, fingerprinted: 0 });
  });

  it("a table empty on the slave is copied when the master fills it again, whatever the memo holds of it", async () => {
    const memo = createReplicationMemo();
    const saved = (await p.m.query(`SELECT * FROM public.queuemember`)).rows;
    expect(saved.length).toBeGreaterThan(0);
    await p.m.query(`DELETE FROM public.queuemember`);
    await p.counted();
    expect((await replicate(p.cfg(), { memo })).ok).toBe(true);
    // Both empty: the master's marker is never read for it (see run.ts), nothing is copied.
    expect((await replicate(p.cfg({ verifyEveryMs: 0 }), { memo })).copied).toEqual([]);
    await p.m.query(
      `INSERT INTO public.queuemember SELECT * FROM json_populate_recordset(NULL::public.queuemember, $1)`,
      [JSON.stringify(saved)],
    );
    await p.counted();
    expect(copiedNames(await replicate(p.cfg({ verifyEveryMs: 0 }), { memo }))).toEqual(["queuemember"]);
    expect(await checksums(p.s, REPLICATED_TABLES)).toEqual(await checksums(p.m, REPLICATED_TABLES));
  });

  it("a write whose count has not reached the statistics yet is left to the next exact run", async (ctx) => {
    const memo = createReplicationMemo();
    expect((await replicate(p.cfg(), { memo })).ok).toBe(true);
    const updates = async () =>
      (await p.m.query(`SELECT pg_stat_get_tuples_updated('public.musiconhold'::regclass)::int AS n`)).rows[0].n;
    // One counted write, then another within the second: PostgreSQL holds the second one's count
    // back (about 10 s) rather than flush twice in a second.
    await p.m.query(`UPDATE public.queue SET timeout = timeout + 1 WHERE name = 'queue1'`);
    await p.counted();
    const counted = await updates();
    await p.m.query(`UPDATE public.musiconhold SET mode = 'late' WHERE id = 2`);
    // On a machine so slow that the count went out anyway, this test has nothing to show.
    if ((await updates()) !== counted) ctx.skip();

    const between = await replicate(p.cfg(), { memo });
    if ((await updates()) !== counted) ctx.skip();
    expect(copiedNames(between)).toEqual(["queue"]);

    const exact = await replicate(p.cfg({ verifyEveryMs: 0 }), { memo });
    expect(copiedNames(exact)).toEqual(["musiconhold"]);
    expect(await checksums(p.s, REPLICATED_TABLES)).toEqual(await checksums(p.m, REPLICATED_TABLES));
  });

  it("a node that does not count writes (track_counts off): every memo run is exact", async () => {
    const memo = createReplicationMemo();
    const setCounts = async (on: boolean) => {
      await p.m.query(`ALTER SYSTEM SET track_counts = ${on ? "on" : "off"}`);
      await p.m.query(`SELECT pg_reload_conf()`);
      await until(
        `track_counts ${on}`,
        async () => (await p.m.query(`SELECT current_setting('track_counts') AS v`)).rows[0].v === (on ? "on" : "off"),
      );
    };
    const events: Record<string, unknown>[] = [];
    const log = (e: string, f: Record<string, unknown>) => void (e === "replication.plan" && events.push(f));
    expect((await replicate(p.cfg(), { memo, log })).ok).toBe(true);
    await setCounts(false);
    try {
      await p.m.query(`UPDATE public.musiconhold SET mode = 'uncounted' WHERE id = 2`);
      const r = await replicate(p.cfg(), { memo, log });
      expect(copiedNames(r)).toEqual(["musiconhold"]);
      expect(events.at(-1)).toMatchObject({ quiet: 0 });
    } finally {
      await setCounts(true);
    }
    // Counting again: the activity remembered from before is not trusted either.
    await replicate(p.cfg(), { memo, log });
    expect(events.at(-1)).toMatchObject({ quiet: 0 });
    expect(await checksums(p.s, REPLICATED_TABLES)).toEqual(await checksums(p.m, REPLICATED_TABLES));
  });

  it("a slave that takes over continues the sequences where the master left them", async () => {
    await replicate(p.cfg());
    const r = await p.s.query(
      `INSERT INTO public.agentfeatures (number, context) VALUES ('9999', 'ctx-1') RETURNING id`,
    );
    expect(r.rows[0].id).toBe(51);
    const u = await p.s.query(`INSERT INTO public.userfeatures (uuid) VALUES (gen_random_uuid()) RETURNING id`);
    expect(u.rows[0].id).toBe(401);
  });
});

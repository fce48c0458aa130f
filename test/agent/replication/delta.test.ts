import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tid } from "../../../agent/replication/answers.js";
import type { TableInfo } from "../../../agent/replication/catalog.js";
import {
  bucketBits,
  bucketDigests,
  changedRows,
  MAX_CHANGED_SHARE,
  reloadReason,
  rowDelta,
  SMALL_TABLE_ROWS,
} from "../../../agent/replication/delta.js";
import type { ReplicationConfig } from "../../../agent/replication/config.js";
import { createReplicationMemo } from "../../../agent/replication/memo.js";
import { replicate, type ReplicationReport, type TableStat } from "../../../agent/replication/run.js";
import { REPLICATED_TABLES } from "../../support/wazo-schema.js";
import { checksums, sequenceStates, startPair, type Pair } from "./helpers.js";

/**
 * A changed table gets only its differing rows: deleted on the slave, copied in from the master.
 * Beside the Wazo fixture, tables of our own, the same on both nodes:
 * - d_big: 50,000 rows, an int key, a UNIQUE column, NULLs and '' in a text, bytea, unicode,
 *   an identity and a generated column (level-1 buckets, then rows);
 * - d_pair: 3,000 rows, a composite key with unicode text in it, collated differently on the two
 *   nodes (rows listed at once, no bucket level);
 * - d_nopk: 2,000 rows, no primary key (reloaded whole).
 */
const BIG = 50_000;
const OURS = ["d_big", "d_pair", "d_nopk"];
const ALL = [...REPLICATED_TABLES, ...OURS];

const schema = (collation: string) => `
  CREATE TABLE public.d_big (
    id int PRIMARY KEY,
    code text NOT NULL UNIQUE,
    name text NOT NULL,
    note text,
    data bytea,
    seq int GENERATED ALWAYS AS IDENTITY,
    shout text GENERATED ALWAYS AS (upper(name)) STORED
  );
  CREATE TABLE public.d_pair (a text COLLATE ${collation}, b int, v text, PRIMARY KEY (a, b));
  CREATE TABLE public.d_nopk (k int, v text);`;

/** Which rows of a slave table were (re)written since `before`: by key, their place or writer changed. */
async function rowPlaces(p: Pair, table: string, key: string): Promise<Map<string, string>> {
  const r = await p.s.query<{ k: string; v: string }>(
    `SELECT (${key})::text AS k, ctid::text || '@' || xmin::text AS v FROM public.${table}`,
  );
  return new Map(r.rows.map((x) => [x.k, x.v]));
}
function rewritten(before: Map<string, string>, after: Map<string, string>): string[] {
  const keys = new Set([...before.keys(), ...after.keys()]);
  return [...keys].filter((k) => before.get(k) !== after.get(k)).sort();
}

const stat = (r: ReplicationReport, table: string): TableStat | undefined => r.copied.find((c) => c.table === table);

describe("replicate(): only the rows that differ", () => {
  let p: Pair;
  const equal = async () => {
    expect(await checksums(p.s, ALL)).toEqual(await checksums(p.m, ALL));
    expect(await sequenceStates(p.s)).toMatchObject(
      Object.fromEntries(Object.entries(await sequenceStates(p.m)).filter(([n]) => n.startsWith("d_"))),
    );
  };
  const run = async (memo?: ReturnType<typeof createReplicationMemo>, overrides: Partial<ReplicationConfig> = {}) => {
    // The tests' writes counted, as they would be within seconds (see Pair.counted).
    if (memo) await p.counted();
    const events: { event: string; fields: Record<string, unknown> }[] = [];
    const report = await replicate(p.cfg(overrides), { memo, log: (event, fields) => events.push({ event, fields }) });
    expect(report.error).toBeNull();
    return { report, events };
  };

  beforeAll(async () => {
    p = await startPair({ scale: 1, blobBytes: 1024 });
    // The slave's keys sort differently from the master's: nothing may depend on an order.
    await p.m.query(schema(`"C"`));
    await p.s.query(schema(`"und-x-icu"`));
    await p.m.query(`
      INSERT INTO public.d_big (id, code, name, note, data)
        SELECT i, 'c' || i, 'nom ' || i || ' é', CASE WHEN i % 7 = 0 THEN NULL ELSE 'n' || i END, decode(md5(i::text), 'hex')
          FROM generate_series(1, ${BIG}) i;
      INSERT INTO public.d_pair (a, b, v)
        SELECT (ARRAY['ключ', 'Zürich', 'zebra', 'Äpfel', '日本', 'a b', ''])[1 + i % 7], i, 'v' || i FROM generate_series(1, 3000) i;
      INSERT INTO public.d_nopk (k, v) SELECT i % 1500, 'v' || i FROM generate_series(1, 2000) i;`);
  });
  afterAll(async () => {
    await p?.stop();
  });

  it("a first run reloads every table, saying why", async () => {
    const { report } = await run();
    expect(stat(report, "d_big")).toMatchObject({ method: "reload", why: "empty on the slave", rows: BIG });
    expect(report.copied.every((c) => c.method === "reload")).toBe(true);
    await equal();
  });

  it("two rows changed in a large table: a delta with exactly those rows, the others left where they are", async () => {
    await p.m.query(`UPDATE public.d_big SET name = 'renamed' WHERE id IN (17, 40000)`);
    const before = await rowPlaces(p, "d_big", "id");
    const { report, events } = await run();
    expect(report.copied).toEqual([
      expect.objectContaining({ table: "d_big", method: "delta", why: null, deleted: 2, rows: 2, cleared: null }),
    ]);
    expect(rewritten(before, await rowPlaces(p, "d_big", "id"))).toEqual(["17", "40000"]);
    const plan = events.find((e) => e.event === "replication.plan")!.fields;
    expect(plan).toMatchObject({ copy: ["d_big"], delta: ["d_big"], reload: [] });
    expect(events.find((e) => e.event === "replication.table")!.fields).toMatchObject({
      table: "d_big",
      method: "delta",
      deleted: 2,
      rows: 2,
    });
    expect((await p.s.query(`SELECT shout FROM public.d_big WHERE id = 17`)).rows[0].shout).toBe("RENAMED");
    await equal();
  });

  it("key changes, deletes and inserts: the old keys deleted, the new ones inserted", async () => {
    await p.m.query(`UPDATE public.d_big SET id = id + 1000000 WHERE id IN (5, 6);
                     DELETE FROM public.d_big WHERE id IN (100, 200, 300);
                     INSERT INTO public.d_big (id, code, name) VALUES (${BIG + 1}, 'new1', 'n'), (${BIG + 2}, 'new2', 'n')`);
    const before = await rowPlaces(p, "d_big", "id");
    const { report } = await run();
    expect(stat(report, "d_big")).toMatchObject({ method: "delta", deleted: 5, rows: 4 });
    expect(rewritten(before, await rowPlaces(p, "d_big", "id"))).toEqual(
      ["5", "6", "100", "200", "300", "1000005", "1000006", `${BIG + 1}`, `${BIG + 2}`].sort(),
    );
    await equal();
  });

  it("two rows swapping a UNIQUE value: applied without tripping the constraint", async () => {
    await p.m.query(`BEGIN; UPDATE public.d_big SET code = 'swap' WHERE id = 10;
                     UPDATE public.d_big SET code = 'c10' WHERE id = 11;
                     UPDATE public.d_big SET code = 'c11' WHERE id = 10; COMMIT`);
    const { report } = await run();
    expect(stat(report, "d_big")).toMatchObject({ method: "delta", deleted: 2, rows: 2 });
    await equal();
  });

  it("NULL against '', one byte of a bytea, unicode normalization: each seen and copied", async () => {
    // Row 7 has a NULL note; 8 gets '' in place of 'n8'; row 9's bytes change by one bit; row 12's
    // name goes from composed to decomposed é (equal to the eye, not to the bytes).
    await p.m.query(`UPDATE public.d_big SET note = '' WHERE id = 7;
                     UPDATE public.d_big SET data = set_bit(data, 0, 1 - get_bit(data, 0)) WHERE id = 9;
                     UPDATE public.d_big SET name = replace(name, U&'\\00E9', U&'e\\0301') WHERE id = 12`);
    const before = await rowPlaces(p, "d_big", "id");
    const { report } = await run();
    expect(stat(report, "d_big")).toMatchObject({ method: "delta", deleted: 3, rows: 3 });
    expect(rewritten(before, await rowPlaces(p, "d_big", "id"))).toEqual(["12", "7", "9"]);
    const s = await p.s.query(`SELECT note, md5(data) AS d, name FROM public.d_big WHERE id IN (7, 9, 12) ORDER BY id`);
    const m = await p.m.query(`SELECT note, md5(data) AS d, name FROM public.d_big WHERE id IN (7, 9, 12) ORDER BY id`);
    expect(s.rows).toEqual(m.rows);
    expect(s.rows[0].note).toBe("");
    await equal();
  });

  it("stray writes on the slave are undone by a delta", async () => {
    await p.s.query(`UPDATE public.d_big SET note = 'stray' WHERE id = 20;
                     DELETE FROM public.d_big WHERE id = 21;
                     INSERT INTO public.d_big (id, code, name) VALUES (-1, 'stray', 'stray')`);
    const before = await rowPlaces(p, "d_big", "id");
    const { report } = await run();
    expect(stat(report, "d_big")).toMatchObject({ method: "delta", deleted: 2, rows: 2 });
    expect(rewritten(before, await rowPlaces(p, "d_big", "id"))).toEqual(["-1", "20", "21"]);
    await equal();
  });

  it("a composite key, unicode in it, collated differently on each node: key changes and updates by delta", async () => {
    await p.m.query(`UPDATE public.d_pair SET a = 'Zurich' WHERE a = 'Zürich' AND b = 1;
                     UPDATE public.d_pair SET v = 'changed' WHERE a = '日本' AND b = 4;
                     DELETE FROM public.d_pair WHERE a = '' AND b = 6`);
    const before = await rowPlaces(p, "d_pair", "a || '/' || b");
    const { report } = await run();
    expect(stat(report, "d_pair")).toMatchObject({ method: "delta", deleted: 3, rows: 2 });
    expect(rewritten(before, await rowPlaces(p, "d_pair", "a || '/' || b"))).toEqual(
      ["/6", "Zurich/1", "Zürich/1", "日本/4"].sort(),
    );
    await equal();
  });

  it("reloads whole a table without a primary key, a small one, and one where much differs", async () => {
    // Past the threshold by a margin: level 1's estimate decides it, no row is listed.
    const bulk = Math.ceil(2 * MAX_CHANGED_SHARE * BIG);
    await p.m.query(`UPDATE public.d_nopk SET v = 'x' WHERE k = 3;
                     UPDATE public.schedule SET name = 'changed' WHERE id = 1;
                     UPDATE public.d_big SET note = 'bulk' WHERE id <= ${bulk}`);
    const count = async (t: string) => Number((await p.m.query(`SELECT count(*) FROM public.${t}`)).rows[0].count);
    const { report, events } = await run();
    expect(stat(report, "d_nopk")).toMatchObject({ method: "reload", why: "no primary key", rows: 2000 });
    const n = await count("schedule");
    expect(n).toBeLessThan(SMALL_TABLE_ROWS);
    expect(stat(report, "schedule")).toMatchObject({ method: "reload", why: `small (${n} rows)` });
    const big = await count("d_big");
    expect(stat(report, "d_big")).toMatchObject({ method: "reload", rows: big, deleted: big });
    expect(stat(report, "d_big")?.why).toMatch(new RegExp(`^about \\d+ of ${big} rows differ \\(over 20 %\\)$`));
    expect(events.find((e) => e.event === "replication.plan")!.fields.reload).toEqual(
      expect.arrayContaining([{ table: "d_nopk", why: "no primary key" }]),
    );
    await equal();
  });

  it("with the daemon's memo: after a delta the next quiet run reads no table", async () => {
    const memo = createReplicationMemo();
    await run(memo);
    await p.m.query(`UPDATE public.d_big SET name = 'again' WHERE id = 30`);
    const { report } = await run(memo);
    expect(stat(report, "d_big")).toMatchObject({ method: "delta", deleted: 1, rows: 1 });
    const quiet = await run(memo);
    expect(quiet.report.copied).toEqual([]);
    expect(quiet.events.find((e) => e.event === "replication.plan")!.fields).toMatchObject({ fingerprinted: 0 });
    // Both nodes moved: the memo's xmin digests per bucket find both rows.
    await p.m.query(`UPDATE public.d_big SET name = 'on the master' WHERE id = 32`);
    await p.s.query(`UPDATE public.d_big SET name = 'on the slave' WHERE id = 33`);
    const both = await run(memo);
    expect(stat(both.report, "d_big")).toMatchObject({ method: "delta", deleted: 2, rows: 2 });
    expect((await run(memo)).report.copied).toEqual([]);
    await equal();
  });

  it("with the memo, a table only the master wrote to gets the rows written since; deletes, key changes and strays go through the hashing delta", async () => {
    const memo = createReplicationMemo();
    const since = (r: Awaited<ReturnType<typeof run>>) =>
      r.events.find((e) => e.event === "replication.plan")!.fields.since;
    await run(memo);
    // Inserts and updates (one to NULL, one of the generated column's source) on the master only.
    let places = await rowPlaces(p, "d_big", "id");
    await p.m.query(`INSERT INTO public.d_big (id, code, name) VALUES (${BIG + 100}, 'new-100', 'fresh');
                     UPDATE public.d_big SET note = NULL WHERE id = 42;
                     UPDATE public.d_big SET name = 'renamed' WHERE id = 46;`);
    const written = await run(memo);
    expect(since(written)).toEqual(["d_big"]);
    expect(stat(written.report, "d_big")).toMatchObject({ method: "delta", deleted: 2, rows: 3 });
    expect(rewritten(places, await rowPlaces(p, "d_big", "id"))).toEqual(["42", "46", `${BIG + 100}`].sort());
    await equal();
    // Its slave marker was computed, not read: an exact run finds it right, so d_big is not
    // fingerprinted — the run fingerprints no more than the exact run after it, which only takes
    // the tables empty on the slave (whose master markers are never read).
    const fingerprinted = (r: Awaited<ReturnType<typeof run>>) =>
      r.events.find((e) => e.event === "replication.plan")!.fields.fingerprinted;
    const exact = await run(memo, { verifyEveryMs: 0 });
    const next = await run(memo, { verifyEveryMs: 0 });
    expect(fingerprinted(exact)).toBe(fingerprinted(next));
    expect([...exact.report.copied, ...next.report.copied]).toEqual([]);
    // A delete and a key change leave slave rows no written row names: the row counts tell, and
    // the table goes through the hashing delta instead, with the same result.
    await p.m.query(`DELETE FROM public.d_big WHERE id = 41; UPDATE public.d_big SET id = ${BIG + 101} WHERE id = 43;`);
    const gone = await run(memo);
    expect(since(gone)).toEqual([]);
    expect(stat(gone.report, "d_big")).toMatchObject({ method: "delta", deleted: 2, rows: 1 });
    await equal();
    // A stray write on the slave: its marker moved, so nothing is assumed of it.
    await p.m.query(`UPDATE public.d_big SET name = 'master again' WHERE id = 47`);
    await p.s.query(`UPDATE public.d_big SET data = decode('00', 'hex') WHERE id = 45`);
    const stray = await run(memo);
    expect(since(stray)).toEqual([]);
    expect(stat(stray.report, "d_big")).toMatchObject({ method: "delta", deleted: 2, rows: 2 });
    await equal();
    // A rewrite that keeps every row (VACUUM FULL) moves the marker; nothing was written since.
    await p.m.query(`VACUUM FULL public.d_big`);
    places = await rowPlaces(p, "d_big", "id");
    const rewrite = await run(memo);
    expect(rewrite.report.copied).toEqual([]);
    expect(rewritten(places, await rowPlaces(p, "d_big", "id"))).toEqual([]);
    await equal();
  });

  it("a hostile master's digests are refused before anything runs on the slave", async () => {
    await p.m.query(`UPDATE public.d_big SET name = 'hostile' WHERE id = 31`);
    const before = await checksums(p.s, ALL);
    // Every bigint::text on the master (the key hashes among them) becomes SQL meant to break out.
    await p.m.query(`CREATE FUNCTION public.evil_text(bigint) RETURNS text LANGUAGE sql IMMUTABLE
                       AS $$ SELECT '0}''::tid[]); CREATE TABLE public.pwned (x int); --' $$;
                     CREATE CAST (bigint AS text) WITH FUNCTION public.evil_text(bigint)`);
    try {
      const report = await replicate(p.cfg());
      expect(report.ok).toBe(false);
      expect(report.error).toMatch(
        /^comparing the rows of table d_big: master 127\.0\.0\.1:\d+: bucket digests: a malformed bucket digest .*; refused, nothing applied$/,
      );
      expect((await p.s.query("SELECT to_regclass('public.pwned') AS t")).rows[0].t).toBeNull();
      expect(await checksums(p.s, ALL)).toEqual(before);
    } finally {
      await p.m.query("DROP CAST (bigint AS text); DROP FUNCTION public.evil_text(bigint)");
    }
    expect(stat((await run()).report, "d_big")).toMatchObject({ method: "delta", rows: 1 });
    await equal();
  });
});

describe("the delta's rules", () => {
  const t = (primaryKey: string[]): TableInfo => ({
    name: "t",
    columns: [{ name: "id", type: "integer", generated: false }],
    primaryKey,
    estimatedRows: null,
  });

  it("reloads a table empty on the slave, without a key, with keys that differ, small, or far apart in rows", () => {
    expect(reloadReason(t(["id"]), ["id"], { master: null, slave: 0 })).toBe("empty on the slave");
    expect(reloadReason(t([]), [], { master: 5000, slave: 5000 })).toBe("no primary key");
    expect(reloadReason(t(["id"]), ["id", "x"], { master: 5000, slave: 5000 })).toBe(
      "primary keys differ between the nodes",
    );
    expect(reloadReason(t(["id"]), ["id"], { master: 999, slave: 10 })).toBe("small (999 rows)");
    expect(reloadReason(t(["id"]), ["id"], { master: 5000, slave: 3900 })).toBe(
      "at least 1100 of 5000 rows differ (over 20 %)",
    );
    expect(reloadReason(t(["id"]), ["id"], { master: 5000, slave: 4100 })).toBeNull();
  });

  it("buckets hold about 16 rows, none below 2^8 buckets, at most 2^16", () => {
    expect(bucketBits(4095)).toBe(0);
    expect(bucketBits(4096)).toBe(8);
    expect(bucketBits(100_000)).toBe(12);
    expect(bucketBits(1e9)).toBe(16);
  });

  it("estimates the differing rows from the differing buckets", () => {
    // 4096 buckets of 24 rows: 2 rows changed → 2 buckets; 20 % → nearly all.
    expect(changedRows(2, 12, 100_000)).toBeCloseTo(2, 0);
    expect(changedRows(4096 * (1 - 0.99 ** 24.4), 12, 100_000)).toBeCloseTo(1000, -1);
    expect(changedRows(4096, 12, 100_000)).toBe(100_000);
  });

  it("refuses a malformed digest: a bucket out of range, twice, not a number", () => {
    expect(bucketDigests(8, [{ b: "255", n: "3", s: "-12" }])).toEqual(new Map([["255", "3/-12"]]));
    for (const bad of [
      [{ b: "256", n: "3", s: "1" }],
      [{ b: "-1", n: "3", s: "1" }],
      [{ b: "1", n: "3", s: "1);" }],
      [
        { b: "1", n: "3", s: "1" },
        { b: "01", n: "3", s: "1" },
      ],
    ])
      expect(() => bucketDigests(8, bad)).toThrow(/malformed bucket digest.*refused, nothing applied/);
    expect(tid("(12,3)")).toEqual({ block: 12, offset: 3 });
    for (const bad of ["(1,0)", "(1,70000)", "(1,2)'", "1,2", 12]) expect(tid(bad)).toBeNull();
  });

  it("per key hash: equal multisets stay, anything else is the slave's out and the master's in", () => {
    const at = (block: number) => ({ block, offset: 1 });
    const m = [
      { h: "1", r: "10", at: at(1) },
      { h: "2", r: "20", at: at(2) },
      { h: "2", r: "21", at: at(3) },
      { h: "4", r: "40", at: at(4) },
    ];
    const s = [
      { h: "1", r: "10", at: at(11) },
      { h: "2", r: "21", at: at(12) },
      { h: "2", r: "20", at: at(13) },
      { h: "3", r: "30", at: at(14) },
      { h: "4", r: "41", at: at(15) },
    ];
    expect(rowDelta(m, s)).toEqual({ remove: [at(15), at(14)], add: [at(4)] });
  });
});

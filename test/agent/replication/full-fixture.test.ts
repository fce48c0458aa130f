import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createReplicationMemo } from "../../../agent/replication/memo.js";
import { replicate } from "../../../agent/replication/run.js";
import { compareNodes, tableDigests } from "../../support/replica-compare.js";
import { mutateMaster, strayWrites } from "../../support/wazo-full-mutations.js";
import { FULL_EXCLUDED_TABLES, FULL_REPLICATED_TABLES } from "../../support/wazo-full-schema.js";
import { fullFixture, indexStates, startPair, type Pair } from "./helpers.js";

/**
 * Replication on Wazo's schema in full (about ninety tables, the tenant ⇄ endpoint_sip cycle,
 * enums, arrays, bytea, unicode, a keyless table with duplicate rows): after a first sync and
 * after rounds of random inserts, updates, deletes and key changes on the master plus stray
 * writes on the slave, both nodes compare equal table by table and sequence by sequence, and
 * the slave's own history is left as it was. Whatever the replication does inside, this holds.
 */

const ROWS = 12_000;

/** Every index of the schema with its definition and validity: what must match across nodes and builds. */
async function indexDefinitions(c: Pair["m"]): Promise<Record<string, { def: string; valid: boolean }>> {
  return Object.fromEntries(Object.entries(await indexStates(c)).map(([n, x]) => [n, { def: x.def, valid: x.valid }]));
}

describe("replication on the full Wazo fixture", () => {
  let p: Pair;
  let slaveHistory: Record<string, string>;
  const memo = createReplicationMemo();

  beforeAll(async () => {
    p = await startPair(fullFixture({ rows: ROWS, blobBytes: 256 * 1024 }));
    slaveHistory = await tableDigests(p.s, FULL_EXCLUDED_TABLES);
  }, 180_000);
  afterAll(async () => {
    await p?.stop();
  });

  const expectEqual = async () => {
    expect(await compareNodes(p.m, p.s, FULL_REPLICATED_TABLES)).toEqual({ tables: [], sequences: [] });
    expect(await tableDigests(p.s, FULL_EXCLUDED_TABLES)).toEqual(slaveHistory);
  };

  it("the harness sees the difference before the first run: the slave is empty", async () => {
    const diff = await compareNodes(p.m, p.s, FULL_REPLICATED_TABLES);
    expect(diff.tables.length).toBeGreaterThan(80);
    expect(diff.sequences.map((s) => s.sequence)).toEqual(
      expect.arrayContaining(["userfeatures_id_seq", "provisioning_seq", "agentfeatures_id_seq"]),
    );
  });

  it("a first run makes the slave equal to the master, and gives back every index it rebuilt as it was", async () => {
    const indexesBefore = await indexDefinitions(p.s);
    const r = await replicate(p.cfg(), { memo });
    expect(r.error).toBeNull();
    expect(r.ok).toBe(true);
    await expectEqual();
    // Whichever tables had their plain indexes built after the load (agent/replication/indexes.ts:
    // those the master's estimates, if autovacuum has made any yet, put at 5 000 rows or more),
    // the slave ends with the indexes it had, valid, and the master's.
    expect(await indexDefinitions(p.s)).toEqual(indexesBefore);
    expect(indexesBefore).toEqual(await indexDefinitions(p.m));
  }, 120_000);

  for (const seed of [1, 2, 3]) {
    it(`after random changes on the master and stray writes on the slave (seed ${seed}), one run makes them equal again`, async () => {
      const done = await mutateMaster(p.m, seed, 60);
      const stray = await strayWrites(p.s, 1000 + seed, 12);
      // Each kind of change happened, or the test would prove less than it says.
      expect(done.inserts).toBeGreaterThan(0);
      expect(done.updates).toBeGreaterThan(0);
      expect(done.deletes).toBeGreaterThan(0);
      expect(done.keyChanges).toBeGreaterThan(0);
      expect(stray.inserts + stray.updates + stray.deletes + stray.keyChanges).toBeGreaterThan(0);
      const before = await compareNodes(p.m, p.s, FULL_REPLICATED_TABLES);
      expect(before.tables.length).toBeGreaterThan(3);
      await p.counted();

      const r = await replicate(p.cfg(), { memo });
      expect(r.error).toBeNull();
      await expectEqual();
    }, 120_000);
  }

  it("with nothing changed, a run copies nothing and they stay equal", async () => {
    const r = await replicate(p.cfg(), { memo });
    expect(r.ok).toBe(true);
    expect(r.copied).toEqual([]);
    await expectEqual();
  }, 60_000);

  it("the harness notices one duplicated keyless row, one changed byte and one sequence step", async () => {
    await p.s.query(`INSERT INTO plugin_note SELECT * FROM plugin_note WHERE topic = 'note-3' LIMIT 1`);
    await p.s.query(`UPDATE attachment SET file = set_byte(file, 1000, (get_byte(file, 1000) + 1) % 256) WHERE id = 2`);
    await p.s.query(`SELECT nextval('func_key_id_seq')`);
    const diff = await compareNodes(p.m, p.s, FULL_REPLICATED_TABLES);
    expect(diff.tables.map((t) => t.table)).toEqual(["attachment", "plugin_note"]);
    expect(diff.sequences.map((s) => s.sequence)).toEqual(["func_key_id_seq"]);
    // Those writes moved the slave's table markers: the memo does not hide them from the next run.
    await p.counted();
    expect((await replicate(p.cfg(), { memo })).ok).toBe(true);
    await expectEqual();
  }, 60_000);
});

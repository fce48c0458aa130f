import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { describeCopied } from "../../../agent/cli.js";
import { DEFER_FROM_ROWS } from "../../../agent/replication/indexes.js";
import { replicate } from "../../../agent/replication/run.js";
import { connectPostgres } from "../../support/postgres.js";
import { checksums, indexStates, type IndexState, startPair, type Fixture, type Pair } from "./helpers.js";

// A reloaded table's plain indexes are dropped before its COPY and built again after it, in the
// slave's one transaction (agent/replication/indexes.ts). What must hold: every index comes back
// as it was (definition, validity, comment, clustering, what depends on it), only plain indexes
// of big tables are rebuilt, and a drop that cannot be had or a build that fails loses nothing.

const BIG_ROWS = DEFER_FROM_ROWS + 1000;

const SCHEMA = `
  CREATE TABLE big (id int PRIMARY KEY, a int NOT NULL, b text NOT NULL, c uuid NOT NULL, d int NOT NULL);
  CREATE INDEX big_a_idx ON big (a);
  CREATE INDEX big_lower_b_idx ON big (lower(b)) WITH (fillfactor = 70) WHERE a > 10;
  CREATE UNIQUE INDEX big_c_idx ON big (c);
  CREATE TABLE big_ref (id int PRIMARY KEY, c uuid REFERENCES big (c));
  CREATE INDEX big_commented_idx ON big (b);
  COMMENT ON INDEX big_commented_idx IS 'kept by hand';
  CREATE FUNCTION norm(text) RETURNS text IMMUTABLE LANGUAGE sql AS 'SELECT lower($1)';
  CREATE INDEX big_norm_idx ON big (norm(b));
  CREATE INDEX big_clustered_idx ON big (d);
  CLUSTER big USING big_clustered_idx;
  CREATE TABLE small (id int PRIMARY KEY, a int NOT NULL);
  CREATE INDEX small_a_idx ON small (a);`;

const SEED = `
  INSERT INTO big SELECT i, i % 97, 'Name ' || i, md5(i::text)::uuid, i % 13 FROM generate_series(1, ${BIG_ROWS}) i;
  INSERT INTO big_ref SELECT i, md5(i::text)::uuid FROM generate_series(1, 50) i;
  INSERT INTO small SELECT i, i % 7 FROM generate_series(1, 100) i;
  ANALYZE;`;

const TABLES = ["big", "big_ref", "small"];

const fixture: Fixture = {
  replicated: TABLES,
  excluded: [],
  create: async (c) => {
    await c.query(SCHEMA);
  },
  seed: async (c) => {
    await c.query(SEED);
  },
  slaveHistory: "SELECT 1",
};

const without = (x: Record<string, IndexState>, key: keyof IndexState) =>
  Object.fromEntries(Object.entries(x).map(([n, s]) => [n, { ...s, [key]: null }]));

describe("replicate(): indexes built after a reload", () => {
  let p: Pair;
  beforeAll(async () => {
    p = await startPair(fixture);
  });
  afterAll(async () => {
    await p?.stop();
  });

  const emptySlave = () => p.s.query("TRUNCATE big, big_ref, small");

  it("a full sync rebuilds a big table's plain indexes, keeps every other, and gives them all back as they were", async () => {
    const before = await indexStates(p.s);
    const events: [string, Record<string, unknown>][] = [];
    const r = await replicate(p.cfg(), { log: (e, f) => events.push([e, f]) });
    expect(r.error).toBeNull();
    expect(await checksums(p.s, TABLES)).toEqual(await checksums(p.m, TABLES));

    const by = Object.fromEntries(r.copied.map((c) => [c.table, c.indexes]));
    // big_a_idx, big_lower_b_idx (partial, on an expression, with a storage parameter). Kept:
    // the primary key, the unique index a foreign key leans on, the commented and the clustered
    // one, and the one calling a function of the schema's own.
    expect(by).toEqual({ big: 2, big_ref: 0, small: 0 });
    // As `xivo-ha-agent replicate` says it.
    expect(r.copied.map(describeCopied).sort()).toEqual([
      "big (reload: empty on the slave; 2 indexes built after the load)",
      "big_ref (reload: empty on the slave)",
      "small (reload: empty on the slave)",
    ]);
    expect(events.some(([e]) => e === "replication.indexes-kept")).toBe(false);

    const after = await indexStates(p.s);
    // Same names, definitions, validity, comments and clustering; only the rebuilt ones are new objects.
    expect(without(without(after, "oid"), "entries")).toEqual(without(without(before, "oid"), "entries"));
    const renewed = Object.keys(after)
      .filter((n) => after[n]!.oid !== before[n]!.oid)
      .sort();
    expect(renewed).toEqual(["big_a_idx", "big_lower_b_idx"]);
    // A bulk build records how many entries it made: every row, and the partial index's share.
    const partial = await p.m.query<{ n: number }>("SELECT count(*)::int AS n FROM big WHERE a > 10");
    expect(after.big_a_idx!.entries).toBe(BIG_ROWS);
    expect(after.big_lower_b_idx!.entries).toBe(partial.rows[0]!.n);
    // The foreign key on the kept unique index is still there and enforced.
    await expect(p.s.query("INSERT INTO big_ref VALUES (999, gen_random_uuid())")).rejects.toThrow(/foreign key/);
  });

  it("the rebuilt indexes answer queries: every row is found through them", async () => {
    const count = "SELECT count(*)::int AS n FROM big WHERE a = 5";
    await p.s.query("SET enable_seqscan = off; SET enable_bitmapscan = off");
    try {
      const plan = await p.s.query<{ "QUERY PLAN": string }>(`EXPLAIN ${count}`);
      expect(plan.rows.map((l) => l["QUERY PLAN"]).join("\n")).toMatch(/big_a_idx/);
      const [found, expected] = await Promise.all([p.s.query(count), p.m.query(count)]);
      expect(found.rows[0].n).toBe(expected.rows[0].n);
      expect(found.rows[0].n).toBeGreaterThan(0);
    } finally {
      await p.s.query("RESET ALL");
    }
  });

  it("a reader holding the table: the drop waits at most lockTimeoutMs, the indexes stay, the run still succeeds", async () => {
    await emptySlave();
    const before = await indexStates(p.s);
    const reader = await connectPostgres(p.slave);
    try {
      await reader.query("BEGIN; SELECT count(*) FROM big");
      const events: [string, Record<string, unknown>][] = [];
      const r = await replicate(p.cfg({ lockTimeoutMs: 300 }), { log: (e, f) => events.push([e, f]) });
      expect(r.error).toBeNull();
      expect(r.copied.find((c) => c.table === "big")!.indexes).toBe(0);
      const kept = events.find(([e]) => e === "replication.indexes-kept");
      expect(String(kept?.[1].error)).toMatch(/lock timeout/);
      await reader.query("COMMIT");
    } finally {
      await reader.end();
    }
    expect(await checksums(p.s, TABLES)).toEqual(await checksums(p.m, TABLES));
    expect(await indexStates(p.s)).toEqual(before);
  });

  it("a build that fails (a slave-only unique index the master's rows break) fails the run, and the slave is as it was", async () => {
    await emptySlave();
    await p.s.query("CREATE UNIQUE INDEX big_a_unique_idx ON big (a)");
    try {
      const before = await indexStates(p.s);
      const r = await replicate(p.cfg());
      expect(r.ok).toBe(false);
      expect(r.error).toMatch(/big_a_unique_idx/);
      expect(r.error).toMatch(/build an index of big/);
      expect(await indexStates(p.s)).toEqual(before);
      const rows = await p.s.query<{ n: number }>("SELECT count(*)::int AS n FROM big");
      expect(rows.rows[0]!.n).toBe(0);
    } finally {
      await p.s.query("DROP INDEX big_a_unique_idx");
    }
  });

  it("a table the master holds too few rows of keeps its indexes: upkeep row by row is cheaper there", async () => {
    await emptySlave();
    const before = await indexStates(p.s);
    const r = await replicate(p.cfg());
    expect(r.error).toBeNull();
    expect(r.copied.find((c) => c.table === "small")!.indexes).toBe(0);
    expect((await indexStates(p.s)).small_a_idx!.oid).toBe(before.small_a_idx!.oid);
  });
});

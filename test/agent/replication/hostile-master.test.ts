import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createReplicationMemo } from "../../../agent/replication/memo.js";
import { replicate } from "../../../agent/replication/run.js";
import { REPLICATED_TABLES } from "../../support/wazo-schema.js";
import { checksums, snapshot, startPair, type Pair } from "./helpers.js";

/**
 * A master whose superuser is hostile: what it answers must never run as SQL on the slave. Here
 * a cast of its own makes every `bigint::text` on the master, the sequences' last_value included,
 * read as a statement built to break out of the slave's setval and create a table.
 */
describe("replicate(): a hostile master", () => {
  let p: Pair;
  beforeAll(async () => {
    p = await startPair({ scale: 1, blobBytes: 1024 });
  });
  afterAll(async () => {
    await p?.stop();
  });

  it("a crafted sequence last_value is refused before anything runs on the slave", async () => {
    const before = await snapshot(p.s);
    await p.m.query(`CREATE FUNCTION public.evil_text(bigint) RETURNS text LANGUAGE sql IMMUTABLE
                       AS $$ SELECT '1, true); CREATE TABLE IF NOT EXISTS public.pwned (x int); SELECT (1' $$;
                     CREATE CAST (bigint AS text) WITH FUNCTION public.evil_text(bigint)`);
    try {
      const report = await replicate(p.cfg());
      expect(report.ok).toBe(false);
      expect(report.error).toMatch(
        /^master 127\.0\.0\.1:\d+: reading sequences: sequence \w+: last_value is not a 64-bit integer .*refused, nothing applied$/,
      );
      expect((await p.s.query("SELECT to_regclass('public.pwned') AS t")).rows[0].t).toBeNull();
      expect(await snapshot(p.s)).toEqual(before);
    } finally {
      await p.m.query("DROP CAST (bigint AS text); DROP FUNCTION public.evil_text(bigint)");
    }
    // The same master, honest again: the run goes through.
    const report = await replicate(p.cfg());
    expect(report.error).toBeNull();
    expect(await checksums(p.s, REPLICATED_TABLES)).toEqual(await checksums(p.m, REPLICATED_TABLES));
  });

  it("names from the catalog only ever reach SQL quoted: a table and sequence named to inject", async () => {
    const name = `we"ird'; DROP TABLE public.userfeatures; --`;
    const q = `"${name.replaceAll('"', '""')}"`;
    expect((await replicate(p.cfg())).error).toBeNull(); // whatever the test before left
    for (const c of [p.m, p.s]) await c.query(`CREATE TABLE public.${q} (id serial PRIMARY KEY, v text)`);
    await p.m.query(`INSERT INTO public.${q} (v) VALUES ('a'), ('b'), ('c')`);
    const memo = createReplicationMemo();
    for (let run = 0; run < 2; run++) {
      const report = await replicate(p.cfg(), { memo });
      expect(report.error).toBeNull();
      expect(report.copied.map((c) => c.table)).toEqual(run === 0 ? [name] : []);
    }
    expect((await p.s.query(`SELECT string_agg(v, ',' ORDER BY id) AS v FROM public.${q}`)).rows[0].v).toBe("a,b,c");
    expect(
      (
        await p.s.query(
          `SELECT last_value::int AS n FROM public.${`"${`${name}_id_seq`.slice(0, 63).replaceAll('"', '""')}"`}`,
        )
      ).rows[0].n,
    ).toBe(3);
    expect((await p.s.query("SELECT to_regclass('public.userfeatures') AS t")).rows[0].t).toBe("userfeatures");
  });
});

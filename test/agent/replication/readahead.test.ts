import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readCatalog } from "../../../agent/replication/catalog.js";
import { readAhead, tableCopy } from "../../../agent/replication/copy.js";
import { replicate, type ReplicationReport } from "../../../agent/replication/run.js";
import { openSession } from "../../../agent/replication/session.js";
import { connectPostgres } from "../../support/postgres.js";
import { REPLICATED_TABLES } from "../../support/wazo-schema.js";
import { checksums, snapshot, startPair, type Pair } from "./helpers.js";

/**
 * The master's side of the copies is read ahead of the slave's load (copy.ts), and tables empty
 * on the slave are not truncated (clear.ts). The slave is held inside the load of its first
 * table (agentfeatures) by an ALWAYS trigger waiting on an advisory lock the test holds, while
 * the master reads ahead until the read-ahead budget stops it inside moh_file (4 × 8 MB): each
 * failure below lands with the two nodes at different tables.
 */
const BLOB = 8 * 1024 * 1024;
const GATE = 424242;

describe("replicate(): the master read ahead of the slave", () => {
  let p: Pair;
  let gate: pg.Client;
  let previous: Awaited<ReturnType<typeof snapshot>>;

  const activity = async (c: pg.Client) =>
    (
      await c.query<{ pid: number; query: string; state: string; wait_event_type: string | null }>(
        `SELECT pid, query, state, wait_event_type FROM pg_stat_activity WHERE application_name = 'xivo-ha-replication'`,
      )
    ).rows;

  async function until<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
    for (let i = 0; i < 300; i++) {
      const v = await probe();
      if (v !== undefined) return v;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`timed out waiting for ${what}`);
  }

  /** A run held with the slave inside agentfeatures and the master inside moh_file. */
  async function heldRun() {
    await gate.query(`SELECT pg_advisory_lock(${GATE})`);
    const run = replicate(p.cfg());
    const slave = await until("the slave held in agentfeatures", async () =>
      (await activity(p.s)).find(
        (a) => /^COPY "public"\."agentfeatures" .* FROM STDIN/.test(a.query) && a.wait_event_type === "Lock",
      ),
    );
    const master = await until("the master inside moh_file", async () =>
      (await activity(p.m)).find(
        (a) => /^COPY "public"\."moh_file" .* TO STDOUT/.test(a.query) && a.state === "active",
      ),
    );
    return { run, masterPid: master.pid, slavePid: slave.pid };
  }

  /** Kills one node's side of a held run, then lets the slave go on: the run's report. */
  async function cutAndRelease(run: Promise<ReplicationReport>, node: pg.Client, pid: number) {
    await node.query(`SELECT pg_terminate_backend($1)`, [pid]);
    await gate.query(`SELECT pg_advisory_unlock(${GATE})`);
    return run;
  }

  beforeAll(async () => {
    p = await startPair({ scale: 1, blobBytes: BLOB });
    gate = await connectPostgres(p.slave);
    const first = await replicate(p.cfg());
    expect(first.error).toBeNull();
    // Every table was empty on the slave: none truncated or deleted from.
    expect(first.copied.filter((c) => c.cleared !== "empty").map((c) => c.table)).toEqual([]);
    await p.m.query(`UPDATE public.agentfeatures SET firstname = firstname || '.';
                     UPDATE public.moh_file SET name = name || '.new';`);
    // ALWAYS: fires under session_replication_role = replica too.
    await p.s.query(`CREATE FUNCTION public.hold() RETURNS trigger LANGUAGE plpgsql AS
                       $$ BEGIN PERFORM pg_advisory_xact_lock_shared(${GATE}); RETURN NULL; END $$;
                     CREATE TRIGGER hold BEFORE INSERT ON public.agentfeatures FOR EACH STATEMENT EXECUTE FUNCTION public.hold();
                     ALTER TABLE public.agentfeatures ENABLE ALWAYS TRIGGER hold;`);
    previous = await snapshot(p.s);
  }, 120_000);
  afterAll(async () => {
    await gate?.end().catch(() => undefined);
    await p?.stop();
  });

  it("the master dies while the slave still loads an earlier table: fails naming the master's table, slave unchanged", async () => {
    const { run, masterPid } = await heldRun();
    const report = await cutAndRelease(run, p.m, masterPid);
    expect(report.ok).toBe(false);
    expect(report.error).toMatch(/copying table moh_file: master .*terminat/i);
    expect(report.copied).toEqual([]);
    expect(await snapshot(p.s)).toEqual(previous);
  });

  it("the slave dies while the master reads ahead: the master's COPY is cut too, slave unchanged", async () => {
    const { run, slavePid } = await heldRun();
    const report = await cutAndRelease(run, p.s, slavePid);
    expect(report.ok).toBe(false);
    expect(report.error).toMatch(/copying table agentfeatures/);
    expect(await snapshot(p.s)).toEqual(previous);
    await until("no replication session left on the master", async () =>
      (await activity(p.m)).length ? undefined : true,
    );
  });

  it("after that, the next run succeeds and the slave equals the master", async () => {
    await p.s.query(`DROP TRIGGER hold ON public.agentfeatures; DROP FUNCTION public.hold()`);
    const report = await replicate(p.cfg());
    expect(report.error).toBeNull();
    expect(report.copied.map((c) => c.table).sort()).toEqual(["agentfeatures", "moh_file"]);
    expect(await checksums(p.s, REPLICATED_TABLES)).toEqual(await checksums(p.m, REPLICATED_TABLES));
  });

  it("a row committed into a slave table the run found empty, before the clear, is cleared all the same", async () => {
    await p.s.query(`TRUNCATE public.infos`);
    const stray = await connectPostgres(p.slave);
    try {
      // Uncommitted when the run reads the slave (the table looks empty), committed as the run
      // plans its clear: the clear's lock waits for it, so the row is there when it looks again.
      await stray.query(`BEGIN; INSERT INTO public.infos (uuid, wazo_version) VALUES (gen_random_uuid(), 'stray')`);
      const report = await replicate(p.cfg(), {
        log: (event) => {
          if (event === "replication.plan") void stray.query("COMMIT");
        },
      });
      expect(report.error).toBeNull();
      expect(report.copied.find((c) => c.table === "infos")).toMatchObject({ method: "reload", cleared: "truncate" });
      expect(await checksums(p.s, ["infos"])).toEqual(await checksums(p.m, ["infos"]));
    } finally {
      await stray.end();
    }
  });

  it("stopped after the master's side is read whole and before the slave takes it: no error goes uncaught", async () => {
    const cfg = p.cfg();
    const master = await openSession("master", cfg.master, cfg);
    const uncaught: unknown[] = [];
    const catchIt = (e: unknown) => uncaught.push(e);
    process.prependListener("uncaughtException", catchIt);
    try {
      await master.client.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
      const cat = await readCatalog(master.client, "public");
      const names = ["context", "infos", "musiconhold"];
      const feed = readAhead(
        master,
        names.map((n) => tableCopy("public", cat.tables.get(n)!, "binary", false, null)),
        names,
      );
      await feed.done; // every table read into memory, none taken
      feed.stop(new Error("the slave went away"));
      await new Promise((r) => setImmediate(r));
      expect(uncaught).toEqual([]);
      expect(feed.failure?.message).toBe("the slave went away");
    } finally {
      process.removeListener("uncaughtException", catchIt);
      await master.close();
    }
  });
});

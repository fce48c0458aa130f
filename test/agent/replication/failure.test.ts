import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { replicate } from "../../../agent/replication/run.js";
import { REPLICATED_TABLES } from "../../support/wazo-schema.js";
import { startRelay, type Relay } from "../../support/relay.js";
import { ALL_TABLES, checksums, REPLICA_PASSWORD, snapshot, startPair, type Pair } from "./helpers.js";

/**
 * Whatever breaks, wherever: the slave stays exactly as it was, and the next run succeeds.
 * The master is reached through a relay that freezes the stream 4 MB into the run, which is
 * inside the COPY of moh_file (4 × 4 MB of bytea), so every failure below lands mid-COPY.
 */
const BLOB = 4 * 1024 * 1024;

describe("replicate(): failures leave the slave untouched", () => {
  let p: Pair;
  let relay: Relay;
  let previous: Awaited<ReturnType<typeof snapshot>>;

  const viaRelay = () => {
    const cfg = p.cfg();
    return { ...cfg, master: { ...cfg.master, port: relay.port } };
  };

  /** Starts a run, waits until it is frozen mid-COPY of moh_file, and checks it really is. */
  async function frozenRun(signal?: AbortSignal) {
    const frozen = relay.freezeAfter(BLOB);
    const run = replicate(viaRelay(), { signal });
    await frozen;
    const m = await p.m.query(`SELECT pid, query FROM pg_stat_activity WHERE application_name = 'xivo-ha-replication'`);
    expect(m.rows.map((r) => r.query)).toEqual([expect.stringMatching(/^COPY "public"\."moh_file" .* TO STDOUT/)]);
    const s = await p.s.query(`SELECT pid, query FROM pg_stat_activity WHERE application_name = 'xivo-ha-replication'`);
    expect(s.rows.map((r) => r.query)).toEqual([expect.stringMatching(/^COPY "public"\."moh_file" .* FROM STDIN/)]);
    return { run, masterPid: m.rows[0].pid as number, slavePid: s.rows[0].pid as number };
  }

  beforeAll(async () => {
    p = await startPair({ scale: 1, blobBytes: BLOB });
    relay = await startRelay(p.master.port);
    const first = await replicate(p.cfg());
    expect(first.error).toBeNull();
    // Pending on the master: changes to a few tables, big ones included, and to sequences.
    await p.m.query(`UPDATE public.moh_file SET name = name || '.new';
                     UPDATE public.userfeatures SET lastname = 'Changed' WHERE id % 10 = 0;
                     INSERT INTO public.extensions (context, exten, type) VALUES ('ctx-1', '77777', 'user');
                     SELECT nextval('public.provisioning_seq');`);
    previous = await snapshot(p.s);
  });
  afterAll(async () => {
    await relay?.close();
    await p?.stop();
  });

  it("the master's backend terminated mid-COPY (pg_terminate_backend)", async () => {
    const { run, masterPid } = await frozenRun();
    await p.m.query(`SELECT pg_terminate_backend($1)`, [masterPid]);
    relay.resume();
    const report = await run;
    expect(report.ok).toBe(false);
    expect(report.error).toMatch(/copying table moh_file: .*terminat/i);
    expect(report.copied).toEqual([]);
    expect(await snapshot(p.s)).toEqual(previous);
  });

  it("the network to the master cut mid-COPY", async () => {
    const { run } = await frozenRun();
    relay.cut();
    const report = await run;
    expect(report.ok).toBe(false);
    expect(report.error).toMatch(/copying table moh_file/);
    expect(await snapshot(p.s)).toEqual(previous);
  });

  it("the slave's backend killed mid-COPY", async () => {
    const { run, slavePid } = await frozenRun();
    await p.s.query(`SELECT pg_terminate_backend($1)`, [slavePid]);
    relay.resume();
    const report = await run;
    expect(report.ok).toBe(false);
    expect(report.error).toMatch(/moh_file/);
    expect(await snapshot(p.s)).toEqual(previous);
  });

  it("aborted by its signal mid-COPY", async () => {
    const ctl = new AbortController();
    const { run } = await frozenRun(ctl.signal);
    ctl.abort(new Error("agent stopping"));
    const report = await run;
    relay.resume();
    expect(report).toMatchObject({ ok: false, error: "aborted: agent stopping", copied: [] });
    expect(await snapshot(p.s)).toEqual(previous);
  });

  it("after all that, the next run succeeds and the slave equals the master", async () => {
    const report = await replicate(viaRelay());
    expect(report.error).toBeNull();
    expect(report.copied.map((c) => c.table).sort()).toEqual(["extensions", "moh_file", "userfeatures"]);
    expect(report.sequences.sort()).toEqual(["extensions_id_seq", "provisioning_seq"]);
    expect(await checksums(p.s, REPLICATED_TABLES)).toEqual(await checksums(p.m, REPLICATED_TABLES));
    previous = await snapshot(p.s);
  });

  it("a master that does not answer: a clear error naming it, nothing applied", async () => {
    const closed = await closedPort();
    const cfg = p.cfg();
    const report = await replicate({ ...cfg, master: { ...cfg.master, port: closed } });
    expect(report.ok).toBe(false);
    expect(report.error).toMatch(new RegExp(`^master 127\\.0\\.0\\.1:${closed}: .*ECONNREFUSED`));
    expect(await snapshot(p.s)).toEqual(previous);
  });

  it("a wrong master password: refused, and the password is in no message", async () => {
    const cfg = p.cfg();
    const logs: string[] = [];
    const report = await replicate(
      { ...cfg, master: { ...cfg.master, password: "wrong-password-71" } },
      { log: (e, f) => logs.push(e + JSON.stringify(f)) },
    );
    expect(report.ok).toBe(false);
    expect(report.error).toMatch(/^master .*password authentication failed/);
    expect(JSON.stringify(report) + logs.join("")).not.toMatch(/wrong-password-71|replica-secret/);
    expect(REPLICA_PASSWORD).toBe("replica-secret-3c1f");
  });

  it("a slave table locked by another session: times out, nothing applied", async () => {
    await p.m.query(`UPDATE public.schedule SET commented = 1 WHERE id = 1`);
    const other = await (await import("../../support/postgres.js")).connectPostgres(p.slave);
    try {
      await other.query(`BEGIN; LOCK TABLE public.schedule IN ACCESS SHARE MODE`);
      const report = await replicate({ ...p.cfg(), lockTimeoutMs: 300 });
      expect(report.ok).toBe(false);
      expect(report.error).toMatch(/^slave .*truncate: .*lock timeout/);
    } finally {
      await other.end();
    }
    expect(await snapshot(p.s)).toEqual(previous);
    expect((await replicate(p.cfg())).copied.map((c) => c.table)).toEqual(["schedule"]);
    previous = await snapshot(p.s);
  });

  it("schema drift: refused as a whole, every difference named, nothing applied", async () => {
    await p.m.query(
      `UPDATE public.context SET description = 'changed'; ALTER TABLE public.queue ADD COLUMN announce text`,
    );
    await p.s.query(`ALTER TABLE public.userfeatures ADD COLUMN nickname text;
                     ALTER TABLE public.linefeatures ALTER COLUMN device TYPE text;
                     DROP TABLE public.paging;
                     CREATE TABLE public.newthing (id int);
                     CREATE TABLE public.stat_new (id int);`);
    const still = ALL_TABLES.filter((t) => t !== "paging");
    const before = await snapshot(p.s, still);
    const report = await replicate(p.cfg());
    expect(report.ok).toBe(false);
    expect(report.drift).toEqual([
      "column linefeatures.device: type character varying(32) on the master, text on the slave",
      "table newthing: on the slave only",
      "table paging: on the master only",
      "column queue.announce: on the master only (text)",
      "column userfeatures.nickname: on the slave only (text)",
      "sequence paging_id_seq: on the master only",
    ]);
    expect(report.error).toMatch(
      /^schema drift between master and slave \(6 differences\), nothing applied: column linefeatures\.device: /,
    );
    expect(report.copied).toEqual([]);
    expect(await snapshot(p.s, still)).toEqual(before);
  });
});

async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

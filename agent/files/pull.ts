import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe } from "../failback/files.js";
import { runCommand, type CommandResult } from "../services.js";
import type { ResolvedFilesConfig } from "./config.js";

export interface FilesReport {
  startedAt: number;
  ok: boolean;
  durationMs: number;
  /** Regular files rsync wrote (from --stats), when it got that far. */
  filesTransferred: number | null;
  error: string | null;
}

/** With a pinned key line, known_hosts holds it under this alias, whatever the host and port. */
const HOST_KEY_ALIAS = "xivo-ha-master";

/**
 * The ssh command rsync runs. rsync splits `-e` itself (no shell); the paths in it are plain
 * characters (config), so splitting cannot cut one. Host key pinned, key auth only, no
 * prompts, no config file of the machine's that could add a ProxyCommand.
 */
export function sshCommand(c: ResolvedFilesConfig, knownHostsFile: string, alias: boolean): string {
  const o = [
    "ssh",
    "-F",
    "/dev/null",
    "-p",
    String(c.port),
    "-i",
    c.identityFile,
    "-o",
    "IdentitiesOnly=yes",
    "-o",
    "BatchMode=yes",
    "-o",
    "PreferredAuthentications=publickey",
    "-o",
    "StrictHostKeyChecking=yes",
    "-o",
    `UserKnownHostsFile=${knownHostsFile}`,
    "-o",
    "GlobalKnownHostsFile=/dev/null",
    "-o",
    "UpdateHostKeys=no",
    "-o",
    `ConnectTimeout=${Math.ceil(c.connectTimeoutMs / 1000)}`,
    "-o",
    "ServerAliveInterval=15",
    "-o",
    "ServerAliveCountMax=3",
    "-o",
    "LogLevel=ERROR",
  ];
  if (alias) o.push("-o", `HostKeyAlias=${HOST_KEY_ALIAS}`);
  return o.join(" ");
}

/**
 * rsync's argv: the listed paths mirrored under `root` with their full names (-R), deletions
 * applied once everything arrived (--delete-after, as wazo-sync does), a path missing on the
 * master left alone on the slave rather than failing every pull.
 */
export function rsyncArgv(c: ResolvedFilesConfig, ssh: string, root: string): string[] {
  const host = c.host.includes(":") ? `[${c.host}]` : c.host;
  return [
    "rsync",
    "-aR",
    "--delete-after",
    "--ignore-missing-args",
    "--stats",
    `--timeout=${Math.ceil(c.ioTimeoutMs / 1000)}`,
    "-e",
    ssh,
    ...c.exclude.map((p) => `--exclude=${p}`),
    // One connection: the first path names the host, the others continue on it.
    ...c.paths.map((p, i) => (i === 0 ? `${c.user}@${host}:${p}` : `:${p}`)),
    root.endsWith("/") ? root : `${root}/`,
  ];
}

/**
 * One pull. `root` is where the master's `/` lands: `/` on a slave, a temp folder in tests.
 * Aborting kills rsync and its ssh (SIGTERM, SIGKILL at most 500 ms later): a pull never holds up a
 * failover.
 */
export async function pullFiles(
  c: ResolvedFilesConfig,
  opts: { signal?: AbortSignal | undefined; root?: string; now?: () => number } = {},
): Promise<FilesReport> {
  const startedAt = (opts.now ?? Date.now)();
  const t0 = performance.now();
  const done = (ok: boolean, error: string | null, filesTransferred: number | null = null): FilesReport => ({
    startedAt,
    ok,
    durationMs: Math.round(performance.now() - t0),
    filesTransferred,
    error,
  });
  if (opts.signal?.aborted) return done(false, "aborted before it started");
  let dir: string | null = null;
  try {
    let knownHosts = c.knownHosts;
    if (!knownHosts) {
      dir = await mkdtemp(join(tmpdir(), "xivo-ha-files-"));
      knownHosts = join(dir, "known_hosts");
      await writeFile(knownHosts, `${HOST_KEY_ALIAS} ${c.hostKey!.split(" ").slice(0, 2).join(" ")}\n`, {
        mode: 0o600,
      });
    }
    const argv = rsyncArgv(c, sshCommand(c, knownHosts, !c.knownHosts), opts.root ?? "/");
    const r = await runCommand({ argv, timeoutMs: c.timeoutMs }, { signal: opts.signal, killGraceMs: 1_000 });
    const files = /Number of regular files transferred: ([\d,.]+)/.exec(r.output)?.[1];
    const count = files === undefined ? null : Number(files.replace(/[,.]/g, ""));
    if (r.ok) return done(true, null, count);
    if (opts.signal?.aborted) return done(false, "aborted (rsync killed): the verdict left 'up' or an action started");
    return done(false, reason(r, c.timeoutMs));
  } catch (err) {
    return done(false, (err as Error).message);
  } finally {
    if (dir) await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Whether ssh never got rsync a connection (refused, host key, login): rsync exits 255 or, as
 * racily, 12 with nothing received. ssh's own words are in the detail either way.
 */
function reason(r: CommandResult, timeoutMs: number): string {
  const ssh = r.exitCode === 255 || (r.exitCode === 12 && /\(0 bytes received so far\)/.test(r.output));
  return `${ssh ? "ssh to the master failed" : "rsync from the master failed"}: ${describe(r, timeoutMs)}`;
}

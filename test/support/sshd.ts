import { execFile, spawn, type ChildProcess } from "node:child_process";
import { accessSync, constants, existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import net from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";
import { freePort } from "../../scripts/edge.js";
import { until } from "./until.js";

/**
 * A real OpenSSH server on 127.0.0.1 for the file pull: its own host key, one authorized client
 * key, a config of its own (no PAM, key auth only), in the foreground (-D -e) so the test owns
 * the process. It runs as root: sshd's privilege separation needs it. `.ci/run` installs
 * openssh-server and rsync.
 */
const SSHD = "/usr/sbin/sshd";
const run = promisify(execFile);

const onPath = (name: string) =>
  (process.env.PATH ?? "").split(":").some((d) => {
    try {
      accessSync(join(d, name), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });

/** Null when sshd + rsync can run here; else why not. In CI their absence is an install bug, not a skip. */
export function sshdMissing(): string | null {
  const why = !existsSync(SSHD)
    ? `${SSHD} is not installed (apt-get install openssh-server)`
    : !onPath("rsync") || !onPath("ssh") || !onPath("ssh-keygen")
      ? "rsync, ssh or ssh-keygen is not on PATH (apt-get install rsync openssh-client)"
      : process.getuid?.() !== 0
        ? "sshd's privilege separation needs root"
        : null;
  if (why && process.env.CI) throw new Error(`${why}: .ci/run should have installed it`);
  return why;
}

export interface Sshd {
  port: number;
  /** The client's private key, authorized for root. */
  identityFile: string;
  /** A known_hosts file with the server's host key under [127.0.0.1]:port. */
  knownHosts: string;
  /** The server's host key line (`ssh-ed25519 AAAA…`). */
  hostKey: string;
  stop(): Promise<void>;
}

export async function keygen(file: string): Promise<string> {
  await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "xivo-ha-test", "-f", file]);
  return (await readFile(`${file}.pub`, "utf8")).trim();
}

/** Starts sshd with its files in `dir` (which must exist). */
export async function startSshd(dir: string): Promise<Sshd> {
  const hostKey = await keygen(join(dir, "host_key"));
  const clientPub = await keygen(join(dir, "client_key"));
  await writeFile(join(dir, "authorized_keys"), `${clientPub}\n`, { mode: 0o600 });
  // Debian's sshd refuses to start without its privilege separation directory.
  await mkdir("/run/sshd", { recursive: true, mode: 0o755 });
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const config = join(dir, "sshd_config");
    await writeFile(
      config,
      [
        `Port ${port}`,
        "ListenAddress 127.0.0.1",
        `HostKey ${join(dir, "host_key")}`,
        `PidFile ${join(dir, "sshd.pid")}`,
        `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
        "UsePAM no",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PubkeyAuthentication yes",
        "PermitRootLogin prohibit-password",
        // The temp dir is under /tmp (world-writable): the key files are the test's own.
        "StrictModes no",
        "LogLevel ERROR",
        "",
      ].join("\n"),
    );
    const child = spawn(SSHD, ["-D", "-e", "-f", config], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr!.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    let exited = false;
    child.once("exit", () => (exited = true));
    try {
      await until("sshd to answer", async () => exited || (await banner(port)), {
        timeoutMs: 15_000,
        detail: () => stderr,
      });
    } catch (e) {
      child.kill("SIGKILL");
      throw e;
    }
    if (exited) {
      // Most likely the port was taken between freePort and sshd's bind: try another.
      if (attempt < 3 && /Address already in use/.test(stderr)) continue;
      throw new Error(`sshd exited at start: ${stderr}`);
    }
    const knownHosts = join(dir, "known_hosts");
    await writeFile(knownHosts, `[127.0.0.1]:${port} ${hostKey}\n`, { mode: 0o600 });
    return { port, identityFile: join(dir, "client_key"), knownHosts, hostKey, stop: () => stop(child) };
  }
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once("exit", () => resolve());
    child.kill("SIGTERM");
  });
}

/** True once something on the port greets with an SSH banner. */
function banner(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect(port, "127.0.0.1");
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(1_000, () => done(false));
    sock.once("error", () => done(false));
    sock.once("data", (d) => done(d.toString().startsWith("SSH-2.0")));
  });
}

import { execFile } from "node:child_process";
import dgram from "node:dgram";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { formatOptions, newOptionsRequest, SipResponseReader } from "../../protocol/sip.js";

/**
 * A real SIP server for the interop test and bench:failover: Debian's Kamailio with the smallest
 * config that answers OPTIONS (test/fixtures/kamailio.cfg), driven by the same service script the
 * agent uses on the slave (test/fixtures/kamailio-service.sh). `.ci/run` installs the package.
 */
export const KAMAILIO_SERVICE = fileURLToPath(new URL("../fixtures/kamailio-service.sh", import.meta.url));
const run = promisify(execFile);

export const kamailioInstalled = () => ["/usr/sbin/kamailio", "/usr/bin/kamailio"].some((p) => existsSync(p));

/** Null when Kamailio can run here; else why not. In CI its absence is an install bug, not a skip. */
export function kamailioMissing(): string | null {
  if (kamailioInstalled()) return null;
  if (process.env.CI) throw new Error("kamailio is not installed: .ci/run should have installed Debian's kamailio");
  return "kamailio is not installed (apt-get install kamailio; .ci/run does it)";
}

export interface Kamailio {
  host: string;
  port: number;
  /** Ends it cleanly, as `systemctl stop` would. */
  stop(): Promise<void>;
  /** The host dies: every Kamailio process at once, SIGKILL. */
  crash(): Promise<void>;
  /** Sends `sig` to every Kamailio process at once (SIGSTOP: a host gone silent, no reset). */
  signal(sig: NodeJS.Signals): Promise<void>;
}

/** Starts a Kamailio daemon on host:port (UDP and TCP), its files in `dir`. */
export async function startKamailio(dir: string, host: string, port: number): Promise<Kamailio> {
  await run(KAMAILIO_SERVICE, ["start", dir, host, String(port)]);
  return {
    host,
    port,
    stop: () => stopKamailio(dir, host, port),
    crash: () => signalAll(dir, "SIGKILL"),
    signal: (sig) => signalAll(dir, sig),
  };
}

/** Stops the Kamailio of `dir` through the service script, as the agent's `services.stop` does. */
export async function stopKamailio(dir: string, host: string, port: number): Promise<void> {
  await run(KAMAILIO_SERVICE, ["stop", dir, host, String(port)]);
}

/** The slave's address in the tests and benches: a second loopback address beside the master's. */
export const SLAVE_HOST = "127.0.0.2";

/**
 * The agent's `services` for a slave whose telephony is a Kamailio on host:port, its files in
 * `dir`: start, stop and status through the service script; ready once it answers OPTIONS.
 */
export function kamailioServices(
  dir: string,
  host: string,
  port: number,
  ready: { timeoutMs: number; withinMs: number; everyMs?: number },
) {
  const step = (verb: string) => ({ argv: [KAMAILIO_SERVICE, verb, dir, host, String(port)], timeoutMs: 15_000 });
  const { timeoutMs, ...wait } = ready;
  return {
    start: [step("start")],
    stop: [step("stop")],
    status: [step("status")],
    ready: { probe: { kind: "sip", name: "slave-sip", transport: "udp", host, port, timeoutMs }, ...wait },
  };
}

async function signalAll(dir: string, sig: NodeJS.Signals): Promise<void> {
  // Kamailio daemonizes with a double fork and setsid: its process group (field 5 of
  // /proc/PID/stat, not the pid in the pid file) is every Kamailio process.
  const pid = Number(await readFile(join(dir, "kamailio.pid"), "utf8"));
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    const pgid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2]);
    process.kill(-pgid, sig);
  } catch {
    // already gone
  }
}

/** Sends one SIP OPTIONS over UDP; the final status code, or null if nothing answered in time. */
export function sipOptionsUdp(host: string, port: number, timeoutMs = 1000): Promise<number | null> {
  return new Promise((resolve) => {
    const sock = dgram.createSocket("udp4");
    const reader = new SipResponseReader();
    let finished = false;
    const done = (status: number | null) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      sock.close();
      resolve(status);
    };
    const timer = setTimeout(() => done(null), timeoutMs);
    // Connected, so that an ICMP port unreachable (nobody listens) ends the wait at once.
    sock.on("error", () => done(null));
    sock.on("message", (msg) => {
      const final = reader.push(msg.toString("latin1")).find((r) => r.status >= 200);
      if (final) done(final.status);
    });
    sock.connect(port, host, () => sock.send(formatOptions(newOptionsRequest(host, port, "udp"))));
  });
}

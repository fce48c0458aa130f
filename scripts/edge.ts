import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

/**
 * Runs the worker under the real `wrangler dev` (local mode: workerd, local Durable Object
 * storage, no Cloudflare account) on 127.0.0.1. Used by `npm start`, the Node-side tests and
 * the benchmarks, so that all three exercise the same runtime a deployment uses.
 */

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const WRANGLER = path.join(ROOT, "node_modules", "wrangler", "bin", "wrangler.js");

/**
 * wrangler dev would otherwise reach out on its own: metrics, an npm update check (in its
 * banner) and a download of the `Request.cf` object. The edge under test talks to loopback only.
 */
export const OFFLINE = {
  WRANGLER_SEND_METRICS: "false",
  WRANGLER_HIDE_BANNER: "true",
  CLOUDFLARE_CF_FETCH_ENABLED: "false",
  WRANGLER_LOG: "warn",
};

export interface Edge {
  url: string;
  stop(): Promise<void>;
}

export interface EdgeOptions {
  /** Secrets and vars, written to a private env file (never on the command line). */
  vars: Record<string, string>;
  port?: number;
  /** Where Durable Object storage lives; a fresh temp dir (removed on stop) when omitted. */
  persistTo?: string;
  /** Pass wrangler's own output through (npm start) instead of keeping it for error messages. */
  inheritOutput?: boolean;
  /** wrangler's log level instead of "warn" (the scale bench: "log", for the worker's own log lines). */
  logLevel?: string;
  /** Sees wrangler's output as it comes (the scale bench reads the cron's summary lines). */
  onOutput?: (text: string) => void;
}

/** dotenv format: single quotes keep a JSON value (the JWK) literal. */
export function envFileText(vars: Record<string, string>): string {
  return `${Object.entries(vars)
    .map(([k, v]) => {
      if (/['\n]/.test(v)) throw new Error(`${k}: a value may not contain a single quote or a newline`);
      return `${k}='${v}'`;
    })
    .join("\n")}\n`;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export async function startEdge(opts: EdgeOptions): Promise<Edge> {
  const tmp = await mkdtemp(path.join(os.tmpdir(), "xivo-ha-edge-"));
  const envFile = path.join(tmp, "edge.env");
  await writeFile(envFile, envFileText(opts.vars), { mode: 0o600 });
  const port = opts.port ?? (await freePort());
  const args = [
    WRANGLER,
    "dev",
    "--local",
    "--ip",
    "127.0.0.1",
    "--port",
    String(port),
    "--inspector-port",
    String(await freePort()),
    "--env-file",
    envFile,
    "--persist-to",
    opts.persistTo ?? path.join(tmp, "state"),
    "--show-interactive-dev-session=false",
  ];
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, ...OFFLINE, ...(opts.logLevel ? { WRANGLER_LOG: opts.logLevel } : {}) },
    stdio: opts.inheritOutput ? ["ignore", "inherit", "inherit"] : ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const keep = (d: Buffer) => {
    output = (output + d).slice(-8000);
    opts.onOutput?.(String(d));
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    await kill(child);
    await rm(tmp, { recursive: true, force: true });
  };
  try {
    await waitReady(url, child, () => output);
  } catch (err) {
    await stop();
    throw err;
  }
  return { url, stop };
}

async function waitReady(url: string, child: ChildProcess, output: () => string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited with ${child.exitCode}:\n${output()}`);
    try {
      const res = await fetch(`${url}/v1/ping`);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`wrangler dev did not answer on ${url} within ${timeoutMs} ms:\n${output()}`);
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
  await exited;
  clearTimeout(timer);
}

import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { createServer as createTcpServer, type Server as TcpServer } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { testSecrets } from "../support/secrets.js";
import { until } from "../support/until.js";
import { killServices, tempDir } from "./helpers.js";
import { fakeServices } from "./keeper-harness.js";

/**
 * The agent's `run` as systemd starts it (the bin, a real process) against a worker stand-in on
 * loopback that answers every report: what URL the reports reach, how an unusable worker URL is
 * refused, and that a taken status port never stops the daemon.
 */
const BIN = fileURLToPath(new URL("../../bin/xivo-ha-agent.mjs", import.meta.url));

let dir: { path: string; remove: () => Promise<void> };
let worker: Server;
let workerPort: number;
let paths: string[];
const children: ChildProcess[] = [];
const blockers: TcpServer[] = [];

beforeEach(async () => {
  dir = await tempDir();
  paths = [];
  worker = createServer((req, res) => {
    paths.push(`${req.method} ${req.url}`);
    req.resume();
    req.on("end", () => {
      // Reports are accepted; anything else (polls, push upgrades) is refused like an unknown path.
      if (req.method === "POST" && /\/report$/.test(req.url ?? "")) res.writeHead(204).end();
      else
        res.writeHead(404, { "content-type": "application/json" }).end('{"error":{"code":"not_found","message":"no"}}');
    });
  });
  worker.listen(0, "127.0.0.1");
  await once(worker, "listening");
  workerPort = (worker.address() as { port: number }).port;
});

afterEach(async () => {
  for (const c of children.splice(0)) {
    if (c.exitCode === null && c.signalCode === null) {
      c.kill("SIGKILL");
      await once(c, "exit");
    }
  }
  for (const b of blockers.splice(0)) await new Promise((r) => b.close(r));
  await new Promise((r) => worker.close(r));
  await killServices(dir.path);
  await dir.remove();
});

async function writeConfig(extra: { clusterId?: string; worker?: Record<string, unknown>; http?: unknown } = {}) {
  const cfg = {
    clusterId: extra.clusterId ?? "c1",
    worker: {
      url: `http://127.0.0.1:${workerPort}`,
      token: "daemon-url-test-token",
      publicKeys: [(await testSecrets()).publicJwk],
      pollIntervalMs: 500,
      maxVerdictAgeMs: 5000,
      push: false,
      ...extra.worker,
    },
    master: { host: "127.0.0.1" },
    stateDir: join(dir.path, "state"),
    services: fakeServices(dir.path),
    lan: { probes: [{ kind: "tcp", name: "t", port: 9, timeoutMs: 200 }] },
    http: extra.http ?? { host: "127.0.0.1", port: null },
    loop: { intervalMs: 200, enforceEveryMs: 1000, reportEveryMs: 500 },
  };
  const path = join(dir.path, "agent.json");
  await writeFile(path, JSON.stringify(cfg));
  return path;
}

function run(configPath: string, env: NodeJS.ProcessEnv = {}) {
  const child = spawn(process.execPath, [BIN, "run", "--config", configPath], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  const out = { text: "" };
  child.stdout!.on("data", (d) => (out.text += d));
  child.stderr!.on("data", (d) => (out.text += d));
  return { child, out };
}

const events = (text: string, event: string) =>
  text
    .split("\n")
    .filter((l) => l.includes(`"event":"${event}"`))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

const exitOf = (c: ChildProcess) =>
  c.exitCode !== null ? Promise.resolve(c.exitCode) : once(c, "exit").then(([code]) => code as number | null);

describe("the worker URL", () => {
  it("with trailing slashes: every request reaches the cluster's own paths", async () => {
    const { out } = run(
      await writeConfig({ clusterId: "site-a1", worker: { url: `http://127.0.0.1:${workerPort}//` } }),
    );
    await until(
      "a report and a poll",
      async () => paths.some((p) => p.startsWith("POST")) && paths.some((p) => p.startsWith("GET")),
      {
        timeoutMs: 20_000,
        detail: () => `paths: ${paths.join(", ")}\n${out.text.slice(-2000)}`,
      },
    );
    const report = paths.find((p) => p.startsWith("POST"));
    expect(report).toBe("POST /v1/clusters/site-a1/report");
    expect(paths.find((p) => p.startsWith("GET"))).toMatch(/^GET \/v1\/clusters\/site-a1\/verdict\?nonce=/);
    expect(events(out.text, "report.failed")).toEqual([]);
  });

  it("http:// to a host other than loopback is refused at load, naming the field", async () => {
    const { child, out } = run(await writeConfig({ worker: { url: "http://ha.example.net" } }));
    expect(await exitOf(child)).toBe(3);
    expect(out.text).toMatch(/worker\.url: expected https:\/\/.*allowInsecureHttp/);
    expect(out.text).not.toContain("daemon-url-test-token");
  });

  it("worker.allowInsecureHttp: true accepts plain http elsewhere, with a loud warning in the journal", async () => {
    // 0.0.0.0 is not a loopback name, yet a connection to it stays on this machine.
    const { out } = run(await writeConfig({ worker: { url: "http://0.0.0.0:9", allowInsecureHttp: true } }));
    const warning = await until("the warning", async () => events(out.text, "config.insecure-worker-url")[0] ?? null, {
      timeoutMs: 20_000,
      detail: () => out.text.slice(-2000),
    });
    expect(warning).toMatchObject({ level: "error", url: "http://0.0.0.0:9" });
    await until("started", async () => events(out.text, "agent.started").length > 0, { timeoutMs: 20_000 });
  });
});

describe("the local status port", () => {
  it("already taken: the daemon keeps deciding and reporting, says so loudly, and binds once the port is free", async () => {
    const blocker = createTcpServer();
    blocker.listen(0, "127.0.0.1");
    await once(blocker, "listening");
    blockers.push(blocker);
    const port = (blocker.address() as { port: number }).port;
    const { child, out } = run(await writeConfig({ http: { host: "127.0.0.1", port } }));
    const detail = () => out.text.slice(-3000);

    const failed = await until("the bind failure logged", async () => events(out.text, "http.unavailable")[0] ?? null, {
      timeoutMs: 20_000,
      detail,
    });
    expect(failed).toMatchObject({ level: "error", port });
    expect(String(failed.error)).toMatch(/EADDRINUSE/);
    // Still running: keeper passes and reports go on.
    await until("a report", async () => paths.some((p) => p.startsWith("POST")), { timeoutMs: 20_000, detail });
    expect(child.exitCode).toBeNull();
    expect(events(out.text, "decision").length).toBeGreaterThan(0);

    await new Promise((r) => blocker.close(r));
    blockers.splice(0);
    await until("the port bound", async () => events(out.text, "http.listening")[0] ?? null, {
      timeoutMs: 20_000,
      detail,
    });
    const res = await fetch(`http://127.0.0.1:${port}/status`);
    expect(res.status).toBe(200);
    expect(child.exitCode).toBeNull();
  });
});

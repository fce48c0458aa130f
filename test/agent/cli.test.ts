import { spawn } from "node:child_process";
import { once } from "node:events";
import { readFile, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { pidAlive } from "../../agent/proc.js";
import { readState } from "../../agent/state.js";
import { freePort } from "../../scripts/edge.js";
import { until } from "../support/until.js";
import { AGENT_BIN, agentCli } from "../support/agent-cli.js";
import { testSecrets } from "../support/secrets.js";
import { killServices, tempDir } from "./helpers.js";
import { fakeServices } from "./keeper-harness.js";

/** The `xivo-ha-agent` bin as an administrator runs it: a real process, its output, its exit code. */

let dir: { path: string; remove: () => Promise<void> };
beforeEach(async () => (dir = await tempDir()));
afterEach(async () => {
  await killServices(dir.path);
  await dir.remove();
});

const cli = agentCli;

async function config(extra: Record<string, unknown> = {}) {
  const cfg = {
    clusterId: "c1",
    // Port 9 on loopback: nothing listens, so the worker is unreachable.
    worker: {
      url: "http://127.0.0.1:9",
      token: "cli-test-token",
      publicKeys: [(await testSecrets()).publicJwk],
      pollIntervalMs: 500,
      maxVerdictAgeMs: 5000,
    },
    master: { host: "127.0.0.1" },
    stateDir: join(dir.path, "state"),
    services: fakeServices(dir.path),
    lan: { probes: [{ kind: "tcp", name: "t", port: 9, timeoutMs: 200 }] },
    http: { host: "127.0.0.1", port: null },
    ...extra,
  };
  const path = join(dir.path, "agent.json");
  await writeFile(path, JSON.stringify(cfg));
  return path;
}

const running = async () => {
  try {
    return pidAlive(Number(await readFile(join(dir.path, "telephony.pid"), "utf8")));
  } catch {
    return false;
  }
};

describe("xivo-ha-agent CLI", () => {
  it("--help (exit 0) lists the commands and the exit codes; per-command help too", async () => {
    const r = await cli(["--help"]);
    expect(r.code).toBe(0);
    for (const w of ["run", "status", "check-master-status", "manage-slave-services", "Exit codes"])
      expect(r.out).toContain(w);
    expect((await cli(["manage-slave-services", "--help"])).out).toMatch(
      /^Usage: xivo-ha-agent manage-slave-services start\|stop/,
    );
  });

  it.each([
    [["frobnicate"], /command: expected a command/],
    [["manage-slave-services"], /verb: expected "start" or "stop"/],
    [["manage-slave-services", "restart"], /verb: /],
    [["status", "extra"], /unexpected argument "extra"/],
    [["run", "--bogus"], /Unknown option '--bogus'/],
  ])("usage error %j → exit 2 with a message", async (args, message) => {
    const r = await cli(args as string[]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(message);
    expect(r.err).not.toMatch(/\n\s+at /); // no stack trace
  });

  it("a missing or invalid config → exit 3 naming the file and field; no service touched", async () => {
    const missing = await cli(["status", "--config", join(dir.path, "nope.json")]);
    expect(missing.code).toBe(3);
    expect(missing.err).toContain("nope.json");
    const path = await config({ mode: "sometimes" });
    const bad = await cli(["manage-slave-services", "start", "--config", path]);
    expect(bad.code).toBe(3);
    expect(bad.err).toMatch(/mode: /);
    expect(await running()).toBe(false);
  });

  it("manage-slave-services start / stop drives the services and records the role", async () => {
    const path = await config();
    const start = await cli(["manage-slave-services", "start", "--config", path]);
    expect(start).toMatchObject({ code: 0 });
    expect(start.out).toContain("start: done; services running; role active");
    expect(await running()).toBe(true);
    const st = await readState(join(dir.path, "state"));
    expect(st.ok && st.state.lastAction?.reason).toBe("manual `manage-slave-services start`");

    const status = await cli(["status", "--config", path]);
    expect(status.code).toBe(0);
    expect(status.out).toMatch(/role\s+active since .* \(daemon not running\)/);

    const stop = await cli(["manage-slave-services", "stop", "--config", path, "--reason", "maintenance over"]);
    expect(stop.code).toBe(0);
    expect(await running()).toBe(false);
    const json = JSON.parse((await cli(["status", "--config", path, "--json"])).out);
    expect(json).toMatchObject({
      role: "standby",
      lastAction: { kind: "failback", ok: true, reason: "maintenance over" },
    });
  });

  it("a failing start command → exit 1, reported", async () => {
    const path = await config({
      services: { ...fakeServices(dir.path), start: [{ argv: [process.execPath, "-e", "process.exit(7)"] }] },
    });
    const r = await cli(["manage-slave-services", "start", "--config", path]);
    expect(r.code).toBe(1);
    expect(r.out).toContain("start: FAILED");
  });

  it("status asks the running daemon (its local HTTP /status), as text and as JSON", async () => {
    const port = await freePort();
    const path = await config({ http: { host: "127.0.0.1", port } });
    const daemon = spawn(process.execPath, [AGENT_BIN, "run", "--config", path], { stdio: "ignore" });
    try {
      const json = await until("the daemon's status", async () => {
        const r = await cli(["status", "--config", path, "--json"]);
        const s = JSON.parse(r.out);
        return "daemon" in s ? null : s;
      });
      expect(json).toMatchObject({
        clusterId: "c1",
        mode: "auto",
        verdict: null,
        lan: { state: expect.any(String) },
        pushConnected: false,
      });
      const text = await cli(["status", "--config", path]);
      expect(text.code).toBe(0);
      expect(text.out).toMatch(/^cluster\s+c1$/m);
      expect(text.out).toMatch(/^verdict\s+none yet$/m);
      expect(text.out).toMatch(/^LAN\s+(unknown|down): /m);
      expect(text.out).not.toContain("daemon not running");
    } finally {
      daemon.kill("SIGTERM");
      if (daemon.exitCode === null) await once(daemon, "exit");
    }
  });

  it("status: something on the daemon's port answering with another shape → exit 1 naming the field", async () => {
    const port = await freePort();
    const impostor = createServer((_req, res) => res.end(JSON.stringify({ clusterId: "c1", role: "standby" })));
    await new Promise<void>((r) => impostor.listen(port, "127.0.0.1", () => r()));
    try {
      const r = await cli(["status", "--config", await config({ http: { host: "127.0.0.1", port } })]);
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/not with the agent's status \(since: /);
      expect(r.err).not.toMatch(/\n\s+at /);
    } finally {
      await new Promise((r) => impostor.close(r));
    }
  });

  it("check-master-status with the worker unreachable → exit 5, nothing done", async () => {
    const path = await config();
    const r = await cli(["check-master-status", "--config", path]);
    expect(r.code).toBe(5);
    expect(r.err).toMatch(/no fresh, authentic verdict: .*nothing done/);
    expect(await running()).toBe(false);
    expect((await readState(join(dir.path, "state"))).ok).toBe(false);
  });

  it("the worker token may come from the environment, and never shows in output", async () => {
    const path = await config();
    const cfg = JSON.parse(await readFile(path, "utf8"));
    delete cfg.worker.token;
    await writeFile(path, JSON.stringify(cfg));
    const r = await cli(["check-master-status", "--config", path], { XIVO_HA_WORKER_TOKEN: "env-secret-token-xyz" });
    expect(r.code).toBe(5);
    expect(r.out + r.err).not.toContain("env-secret-token-xyz");
  });
});

describe("xivo-ha-agent replicate", () => {
  it("refuses on an active slave (exit 6) and says why; nothing configured → exit 3", async () => {
    const none = await cli(["replicate", "--config", await config()]);
    expect(none.code).toBe(3);
    expect(none.err).toMatch(/none of replication, failback or files is configured/);
    const path = await config({ replication: { slave: { host: "127.0.0.1", port: 9 } } });
    expect((await cli(["manage-slave-services", "start", "--config", path])).code).toBe(0);
    const r = await cli(["replicate", "--config", path]);
    expect(r.code).toBe(6);
    expect(r.err).toMatch(/refused: this slave's role is active, not standby/);
  });

  it("pulls the files section too: a failing pull is said and exits 1", async () => {
    const files = {
      port: await freePort(),
      identityFile: join(dir.path, "id"),
      hostKey: HOST_KEY,
      connectTimeoutMs: 2_000,
    };
    const path = await config({ files });
    expect((await cli(["manage-slave-services", "stop", "--config", path])).code).toBe(0);
    const r = await cli(["replicate", "--config", path]);
    expect(r.out, r.err).toMatch(/^files: FAILED: ssh to the master failed: .*Connection refused/m);
    expect(r.code).toBe(1);
  });
});

/** Any well-formed ed25519 public key: nothing answers on the port, so it is never checked. */
const HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";

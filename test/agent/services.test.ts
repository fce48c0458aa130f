import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { TOKEN_ENV, type Command, type ServicesConfig } from "../../agent/config.js";
import { pidAlive } from "../../agent/proc.js";
import {
  backoffMs,
  checkStatus,
  describeFailure,
  enforce,
  runCommand,
  runWithRetry,
  startServices,
  stopServices,
} from "../../agent/services.js";
import { freePort } from "../../scripts/edge.js";
import { fixture, useServiceDir } from "./helpers.js";

const FAKE = fixture("fake-service.mjs");
const dir = useServiceDir();

const fake = (verb: string, name = "telephony", timeoutMs = 15_000): Command => ({
  argv: [process.execPath, FAKE, verb, dir.path, name],
  timeoutMs,
});
const node = (code: string, timeoutMs = 15_000): Command => ({ argv: [process.execPath, "-e", code], timeoutMs });
const noRetry = { retries: 0, backoffMs: 10, maxBackoffMs: 10 };

/** A legacy-XiVO-shaped pair: asterisk, then monit on start; monit first on stop. */
function xivoLike(): ServicesConfig {
  return {
    start: [fake("start", "asterisk"), fake("start", "monit")],
    stop: [fake("stop", "monit"), fake("stop", "asterisk")],
    status: [fake("status", "asterisk"), fake("status", "monit")],
    retry: { retries: 2, backoffMs: 10, maxBackoffMs: 40 },
  };
}

/** The fake services' call log; none yet when no fake got as far as writing (a loaded machine). */
const calls = async () =>
  (await readFile(join(dir.path, "calls.log"), "utf8").catch(() => "")).trim().split("\n").filter(Boolean);
const daemonPid = async (name: string) => Number(await readFile(join(dir.path, `${name}.pid`), "utf8"));
const failNext = (name: string, verb: string, n: number) =>
  writeFile(join(dir.path, `${name}.${verb}-failures`), String(n));

async function waitDead(pid: number): Promise<boolean> {
  for (const deadline = performance.now() + 10_000; performance.now() < deadline; await sleep(20)) {
    if (!pidAlive(pid)) return true;
  }
  return false;
}

describe("runCommand", () => {
  it("reports exit code and output", async () => {
    const r = await runCommand(node("console.log('hello'); console.error('oops'); process.exit(4)"));
    expect(r).toMatchObject({ ok: false, exitCode: 4, timedOut: false, spawnError: null });
    expect(r.output).toContain("hello");
    expect(r.output).toContain("oops");
    expect((await runCommand(node("0"))).ok).toBe(true);
  });

  it("reports a command that cannot be started", async () => {
    const r = await runCommand({ argv: ["/nonexistent/wazo-service", "start"], timeoutMs: 5_000 });
    expect(r.ok).toBe(false);
    expect(r.spawnError).toMatch(/ENOENT/);
  });

  it("kills a command that outlives its timeout, even one that ignores SIGTERM", async () => {
    // Generous timeouts: the command must get to write its pid file before it is killed.
    const r = await runCommand(fake("hang", "stuck", 3_000), { killGraceMs: 200 });
    expect(r).toMatchObject({ ok: false, timedOut: true, signal: "SIGKILL" });
    expect(await waitDead(await daemonPid("stuck.hang"))).toBe(true);
  });

  it("kills the children a timed-out command left in its process group", async () => {
    const code = `const c = require("child_process").spawn(process.execPath, ["-e", "setInterval(() => {}, 1e9)"], { stdio: "ignore" });
      require("fs").writeFileSync(${JSON.stringify(join(dir.path, "grandchild.pid"))}, String(c.pid));
      setInterval(() => {}, 1e9);`;
    const r = await runCommand(node(code, 3_000), { killGraceMs: 200 });
    expect(r.timedOut).toBe(true);
    expect(await waitDead(await daemonPid("grandchild"))).toBe(true);
  });

  it("does not hand the agent's secrets (worker token, database passwords) to service commands", async () => {
    const secrets = [TOKEN_ENV, "XIVO_HA_PG_PASSWORD", "XIVO_HA_FAILBACK_MASTER_PASSWORD"];
    const saved = secrets.map((k) => process.env[k]);
    for (const k of secrets) process.env[k] = `secret-of-${k}`;
    process.env.XIVO_HA_HARMLESS = "kept";
    try {
      const r = await runCommand(
        node(
          `process.stdout.write(JSON.stringify(Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith("XIVO_HA_")))))`,
        ),
      );
      const seen = JSON.parse(r.output) as Record<string, string>;
      for (const k of secrets) expect(seen[k]).toBeUndefined();
      expect(seen.XIVO_HA_HARMLESS).toBe("kept");
    } finally {
      secrets.forEach((k, i) => (saved[i] === undefined ? delete process.env[k] : (process.env[k] = saved[i])));
      delete process.env.XIVO_HA_HARMLESS;
    }
  });
});

describe("retries", () => {
  it("backs off exponentially up to the cap", () => {
    const p = { retries: 5, backoffMs: 1_000, maxBackoffMs: 5_000 };
    expect([1, 2, 3, 4, 5].map((n) => backoffMs(p, n))).toEqual([1_000, 2_000, 4_000, 5_000, 5_000]);
  });

  it("retries a failing command until it succeeds, reporting every attempt", async () => {
    await failNext("telephony", "start", 2);
    const seen: number[] = [];
    const step = await runWithRetry(
      fake("start"),
      { retries: 2, backoffMs: 10, maxBackoffMs: 20 },
      {
        onAttempt: (_, n) => seen.push(n),
      },
    );
    expect(step.ok).toBe(true);
    expect(step.attempts.map((a) => a.exitCode)).toEqual([1, 1, 0]);
    expect(step.attempts[0]!.output).toContain("simulated start failure");
    expect(seen).toEqual([1, 2, 3]);
    expect(pidAlive(await daemonPid("telephony"))).toBe(true);
  });

  it("gives up after the configured retries", async () => {
    await failNext("telephony", "start", 5);
    const step = await runWithRetry(fake("start"), { retries: 2, backoffMs: 10, maxBackoffMs: 20 });
    expect(step.ok).toBe(false);
    expect(step.attempts).toHaveLength(3);
    expect(await calls()).toEqual(["start telephony", "start telephony", "start telephony"]);
  });
});

describe("start and stop", () => {
  it("start runs the list in order and verifies the services run", async () => {
    const t = await startServices(xivoLike());
    expect(t.ok).toBe(true);
    expect(t.status.state).toBe("running");
    expect(pidAlive(await daemonPid("asterisk"))).toBe(true);
    expect(pidAlive(await daemonPid("monit"))).toBe(true);
    expect((await calls()).slice(0, 2)).toEqual(["start asterisk", "start monit"]);
  });

  it("stop runs the list in order (monit before asterisk) and verifies nothing runs", async () => {
    const cfg = xivoLike();
    await startServices(cfg);
    const pids = [await daemonPid("asterisk"), await daemonPid("monit")];
    const t = await stopServices(cfg);
    expect(t.ok).toBe(true);
    expect(t.status.state).toBe("stopped");
    for (const pid of pids) expect(pidAlive(pid)).toBe(false);
    const log = await calls();
    expect(log.filter((l) => l.startsWith("stop"))).toEqual(["stop monit", "stop asterisk"]);
  });

  it("keeps going after a step fails for good, and reports which one", async () => {
    const cfg = { ...xivoLike(), retry: { retries: 1, backoffMs: 10, maxBackoffMs: 10 } };
    await failNext("asterisk", "start", 10);
    const t = await startServices(cfg);
    expect(t.ok).toBe(false);
    expect(t.steps.map((s) => s.ok)).toEqual([false, true]);
    expect(t.steps[0]!.attempts).toHaveLength(2);
    expect(t.status.state).toBe("partial");
    expect(describeFailure(t)).toMatch(/fake-service.mjs start \S+ asterisk` failed 2x; status is partial/);
  });

  it("does not trust a start command's exit code alone: status must confirm", async () => {
    const cfg: ServicesConfig = { ...xivoLike(), start: [node("0")], retry: noRetry };
    const t = await startServices(cfg);
    expect(t.steps.every((s) => s.ok)).toBe(true);
    expect(t.ok).toBe(false);
    expect(t.status.state).toBe("stopped");
  });

  it("reports a status command that hangs as unknown", async () => {
    const cfg: ServicesConfig = { ...xivoLike(), status: [fake("hang", "status", 300)] };
    const s = await checkStatus(cfg, { killGraceMs: 100 });
    expect(s.state).toBe("unknown");
  });
});

describe("ready check: a start is done when the slave answers SIP, not when the commands return", () => {
  // The demo's stand-in Asterisk: a detached process answering SIP OPTIONS over UDP.
  const TELEPHONY = fileURLToPath(new URL("../../scripts/demo/telephony.mjs", import.meta.url));
  const telephony = (verb: string, port: number): Command => ({
    argv: [process.execPath, TELEPHONY, verb, dir.path, String(port)],
    timeoutMs: 15_000,
  });
  const ready = (port: number, withinMs = 10_000) => ({
    probe: { kind: "sip" as const, name: "slave-sip", critical: true, transport: "udp" as const, port, timeoutMs: 300 },
    withinMs,
    everyMs: 100,
  });

  it("waits for the first answer, including one that comes after the start command returned", async () => {
    const port = await freePort();
    // The start command returns at once; the SIP server comes up 800 ms later (as Asterisk does after systemctl start).
    const late = `require("child_process").spawn(process.execPath, ["-e", ${JSON.stringify(
      `setTimeout(() => require("child_process").spawnSync(process.execPath, ${JSON.stringify([TELEPHONY, "start", dir.path, String(port)])}), 800)`,
    )}], { detached: true, stdio: "ignore" }).unref()`;
    const cfg: ServicesConfig = {
      start: [node(late)],
      stop: [telephony("stop", port)],
      status: [node("0")],
      ready: ready(port),
      retry: noRetry,
    };
    const t = await startServices(cfg);
    expect(t.ok).toBe(true);
    expect(t.ready).toMatchObject({ ok: true, probe: "slave-sip", detail: expect.stringMatching(/200 OK/) });
    expect(t.ready!.afterMs).toBeGreaterThanOrEqual(500); // it really waited for the late server
    await stopServices(cfg);
  });

  it("fails the start when nothing answers within the deadline, and says so", async () => {
    const port = await freePort(); // nobody listens there
    const cfg: ServicesConfig = { ...xivoLike(), ready: ready(port, 700), retry: noRetry };
    const t = await startServices(cfg);
    expect(t.status.state).toBe("running");
    expect(t.ok).toBe(false);
    expect(t.ready).toMatchObject({ ok: false, probe: "slave-sip" });
    expect(describeFailure(t)).toMatch(/slave-sip not answering after \d+ ms/);
  });

  it("on an active slave whose services run, enforce asks once: a hung stack (SIGSTOP) is reported, not restarted", async () => {
    const port = await freePort();
    const cfg: ServicesConfig = {
      start: [telephony("start", port)],
      stop: [telephony("stop", port)],
      status: [telephony("status", port)],
      ready: ready(port),
      retry: noRetry,
    };
    expect((await startServices(cfg)).ok).toBe(true);
    expect(await enforce("active", cfg)).toMatchObject({ action: "none", ok: true, answering: { ok: true } });
    const pid = Number(await readFile(join(dir.path, "telephony.pid"), "utf8"));
    process.kill(pid, "SIGSTOP");
    try {
      const e = await enforce("active", cfg);
      expect(e).toMatchObject({ action: "none", found: "running", ok: false, answering: { ok: false } });
      expect(e.reason).toMatch(/^services running, but slave-sip not answering/);
      expect(await enforce("standby", { ...cfg, stop: [node("0")], status: [node("process.exit(3)")] })).toMatchObject({
        ok: true,
        answering: null,
      });
    } finally {
      process.kill(pid, "SIGCONT");
    }
    expect(pidAlive(pid)).toBe(true);
    await stopServices(cfg);
  });

  it("is not asked on stop, nor after a start whose commands failed", async () => {
    const port = await freePort();
    const cfg: ServicesConfig = { ...xivoLike(), ready: ready(port, 700), retry: noRetry };
    await failNext("asterisk", "start", 1);
    expect((await startServices(cfg)).ready).toBeNull();
    expect((await stopServices(cfg)).ready).toBeNull();
  });
});

describe("enforce", () => {
  it("stops telephony found running on a standby slave", async () => {
    const cfg = xivoLike();
    await startServices(cfg);
    const pid = await daemonPid("asterisk");
    const r = await enforce("standby", cfg);
    expect(r).toMatchObject({ found: "running", action: "stop", ok: true });
    expect(r.reason).toMatch(/found running on a standby slave: stopped/);
    expect(pidAlive(pid)).toBe(false);
    expect((await checkStatus(cfg)).state).toBe("stopped");
  });

  it("starts telephony found dead on the active slave", async () => {
    const cfg = xivoLike();
    await startServices(cfg);
    const crashed = await daemonPid("asterisk");
    process.kill(crashed, "SIGKILL");
    expect(await waitDead(crashed)).toBe(true);
    const r = await enforce("active", cfg);
    expect(r).toMatchObject({ found: "partial", action: "start", ok: true });
    const restarted = await daemonPid("asterisk");
    expect(restarted).not.toBe(crashed);
    expect(pidAlive(restarted)).toBe(true);
  });

  it("starts everything on an active slave where nothing runs", async () => {
    const r = await enforce("active", xivoLike());
    expect(r).toMatchObject({ found: "stopped", action: "start", ok: true });
  });

  it("touches nothing when the services already match the role", async () => {
    const cfg = xivoLike();
    expect(await enforce("standby", cfg)).toMatchObject({ found: "stopped", action: "none", ok: true });
    await startServices(cfg);
    const before = (await calls()).length;
    expect(await enforce("active", cfg)).toMatchObject({ found: "running", action: "none", ok: true });
    expect((await calls()).slice(before)).toEqual(["status asterisk", "status monit"]);
  });

  it("touches nothing when the role or the service status is unknown", async () => {
    const cfg = xivoLike();
    expect(await enforce("unknown", cfg)).toMatchObject({ action: "none", ok: false });
    const hung: ServicesConfig = { ...cfg, status: [fake("hang", "status", 300)] };
    expect(await enforce("active", hung, { killGraceMs: 100 })).toMatchObject({
      found: "unknown",
      action: "none",
      ok: false,
    });
    expect((await calls()).some((l) => l.startsWith("start"))).toBe(false);
  });

  it("reports a failed enforcement with the failing command", async () => {
    const cfg = { ...xivoLike(), retry: noRetry };
    await failNext("asterisk", "start", 1);
    const r = await enforce("active", cfg);
    expect(r).toMatchObject({ action: "start", ok: false });
    expect(r.reason).toMatch(/, but `.*fake-service.mjs start \S+ asterisk` failed 1x/);
  });
});

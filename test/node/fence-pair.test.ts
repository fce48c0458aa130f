import { spawn } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { readState } from "../../agent/state.js";
import { agentEvents, AGENT_TOKEN, role, servicePid, startAgent, until, usePairs } from "../support/pair.js";

/**
 * Fencing on the real pair (test/support/pair.ts): the master goes degraded — its web server, a
 * real child process of this test, still answers while its SIP stops — and the agent's fence
 * command really kills that process before the slave's services start.
 */
const { lab: labOf, pair, cleanups } = usePairs();

/** The master's web server as a process of its own, so a fence command has something to kill. */
async function webServer(): Promise<{ pid: number; port: number; exit: Promise<NodeJS.Signals | null> }> {
  const child = spawn(
    process.execPath,
    [
      "-e",
      "require('http').createServer((q, s) => s.end('ok')).listen(0, '127.0.0.1', function () { console.log(this.address().port) })",
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  cleanups.push(async () => void child.kill("SIGKILL"));
  const exit = new Promise<NodeJS.Signals | null>((r) => child.once("exit", (_code, signal) => r(signal)));
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.once("data", (d) => resolve(Number(String(d).trim())));
    child.once("exit", () => reject(new Error("web server exited")));
  });
  return { pid: child.pid!, port, exit };
}

describe("fencing a degraded master on the real pair", () => {
  it("SIP dies, the web still answers: the agent kills the master's web server, then takes over; history and the worker say so", async () => {
    const web = await webServer();
    const p = await pair();
    const [, sipTcp, sipUdp] = p.lan;
    // The edge probes the web server process (and SIP); the LAN probes it too.
    const put = await labOf().admin("PUT", `/v1/clusters/${p.id}`, {
      master: { host: "127.0.0.1" },
      probes: [
        { kind: "http", name: "web", scheme: "http", port: web.port, timeoutMs: 1000 },
        { kind: "sip", name: "sip", port: sipTcp!.port, timeoutMs: 1000 },
      ],
      intervalSec: 2,
      fall: 2,
      rise: 1,
    });
    expect(put.status).toBe(200);
    const cfg = JSON.parse(await readFile(p.configPath, "utf8"));
    cfg.lan.probes = cfg.lan.probes.map((probe: { name: string }) =>
      probe.name === "web" ? { ...probe, port: web.port } : probe,
    );
    cfg.fence = { commands: [["kill", "-KILL", String(web.pid)]], timeoutMs: 5000 };
    await writeFile(p.configPath, JSON.stringify(cfg));

    startAgent(p);
    await until("standby", async () => (await role(p)) === "standby", p);
    expect(await servicePid(p.dir)).toBeNull();

    // Asterisk dies on a live host: SIP silent, the web server still answering.
    await Promise.all([sipTcp!.set("closed"), sipUdp!.set("closed")]);
    const active = await until(
      "failover after the fence",
      async () => {
        const s = await readState(join(p.dir, "state"));
        return s.ok && s.state.role === "active" && s.state.lastAction?.ok ? s.state : null;
      },
      p,
    );
    // The fence really killed the master's web server, and before the slave's services started.
    expect(await web.exit).toBe("SIGKILL");
    expect(await servicePid(p.dir)).not.toBeNull();
    const out = p.output();
    expect(out.indexOf('"event":"fence.done"')).toBeGreaterThan(-1);
    expect(out.indexOf('"event":"fence.done"')).toBeLessThan(out.indexOf('"event":"failover.start"'));
    expect(agentEvents(p, "fence.done")[0]).toMatchObject({ outcome: "fenced" });

    // History: the role file says what fencing did.
    expect(active.lastAction?.fence).toMatchObject({
      ok: true,
      outcome: "fenced",
      why: expect.stringMatching(/degraded/),
      commands: [{ command: "#1 kill", ok: true, exitCode: 0, timedOut: false }],
    });
    expect(active.lastAction?.reason).toMatch(/master fenced \(the master is degraded/);

    // The worker's failover notification says it too.
    const events = await until(
      "the worker's failover event",
      async () => {
        const res = await fetch(`${labOf().edge.url}/v1/clusters/${p.id}/events?limit=500`, {
          headers: { authorization: `Bearer ${AGENT_TOKEN}` },
        });
        const body = (await res.json()) as {
          events: { type: string; reason: string; data: Record<string, unknown> }[];
        };
        return body.events.some((e) => e.type === "failover.done") ? body.events : null;
      },
      p,
    );
    const done = events.find((e) => e.type === "failover.done")!;
    expect(done.reason).toMatch(
      /master fenced \(the master is degraded: it answers, its telephony fails\): 1 command\(s\) ok/,
    );
    expect(done.data).toMatchObject({ fence: { ok: true, outcome: "fenced" } });
  }, 120_000);
});

import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import http from "node:http";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath } from "node:url";
import { LanProbe } from "../agent/lan/config.js";
import { runLanProbe } from "../agent/lan/probe.js";
import { Webhook } from "standardwebhooks";
import { generateSigningKey } from "../protocol/signing.js";
import { freePort, startEdge, type Edge } from "./edge.js";
import { connectPostgres, startPostgres, type PostgresServer } from "../test/support/postgres.js";
import { endpoint } from "../test/support/wazo-pair-databases.js";
import { createWazoSchema, seedWazo } from "../test/support/wazo-schema.js";
import { createTarget, type Target } from "../test/support/target-client.js";
import { startTargetControl, type TargetControl } from "../test/support/targets.js";
import { until } from "../test/support/until.js";

/**
 * The whole HA pair on this machine, on loopback, with nothing to install and no account:
 * a master stand-in (HTTP and SIP over TCP and UDP, a PostgreSQL with a Wazo-like schema), a
 * slave PostgreSQL, the worker under wrangler dev, and the agent as its own process starting
 * and stopping a real stand-in for the slave's Asterisk. It prints one timeline of what the
 * edge decides, what the agent does and what its database passes copy.
 */

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const AGENT_BIN = path.join(ROOT, "bin", "xivo-ha-agent.mjs");
const TELEPHONY = path.join(ROOT, "scripts", "demo", "telephony.mjs");
const CLUSTER = "demo";
const AGENT_TOKEN = `demo-agent-${crypto.randomUUID()}`;

export interface DemoOptions {
  scenario: "interactive" | "master-crash";
  port?: number;
  out?: (line: string) => void;
}

const stamp = () => new Date().toISOString().slice(11, 23);

export async function runDemo(opts: DemoOptions): Promise<number> {
  const out = opts.out ?? ((l: string) => process.stdout.write(`${l}\n`));
  const say = (who: string, what: string) => out(`${stamp()}  ${who.padEnd(8)} ${what}`);
  const stops: (() => Promise<unknown>)[] = [];
  const work = await mkdtemp(path.join(tmpdir(), "xivo-ha-demo-"));
  stops.push(() => rm(work, { recursive: true, force: true }));
  let agent: ChildProcess | null = null;
  let stopping = false;

  const stopAll = async () => {
    if (stopping) return;
    stopping = true;
    if (agent && agent.exitCode === null) {
      const gone = new Promise((r) => agent!.once("exit", r));
      agent.kill("SIGTERM");
      await gone;
    }
    // The stand-in Asterisk is detached: stop it like the agent would.
    await run(process.execPath, [TELEPHONY, "stop", work]).catch(() => {});
    for (const s of stops.reverse()) await s().catch(() => {});
  };

  try {
    say("demo", "starting the master stand-in, two PostgreSQL servers and the worker…");
    const control: TargetControl = await startTargetControl();
    stops.push(() => control.close());
    const [web, sip, sipUdp] = await Promise.all([
      createTarget(control.port, "http"),
      createTarget(control.port, "sip-tcp"),
      createTarget(control.port, "sip-udp"),
    ]);
    const master: Target[] = [web, sip, sipUdp];

    const [masterDb, slaveDb] = await Promise.all([
      startPostgres({ database: "asterisk" }),
      startPostgres({ database: "asterisk" }),
    ]);
    stops.push(
      () => masterDb.stop(),
      () => slaveDb.stop(),
    );
    await prepareDatabases(masterDb, slaveDb);

    const receiver = await startWebhookReceiver(say);
    stops.push(() => receiver.close());
    const key = await generateSigningKey();
    const admin = `demo-admin-${crypto.randomUUID()}`;
    const edge: Edge = await startEdge({
      vars: { ADMIN_TOKEN: admin, SIGNING_KEY: key.private },
      port: opts.port,
      persistTo: path.join(work, "edge"),
    });
    stops.push(() => edge.stop());
    const put = await fetch(`${edge.url}/v1/clusters/${CLUSTER}`, {
      method: "PUT",
      headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
      body: JSON.stringify({
        master: { host: "127.0.0.1" },
        probes: [
          { kind: "http", name: "web", scheme: "http", port: web.port, timeoutMs: 1000 },
          { kind: "sip", name: "sip", transport: "tcp", port: sip.port, timeoutMs: 1000 },
        ],
        intervalSec: 2,
        fall: 3,
        rise: 2,
        agentToken: AGENT_TOKEN,
        public: true, // the status page opens without a token
        notifications: [{ kind: "webhook", name: "demo", url: receiver.url, secrets: [receiver.secret] }],
      }),
    });
    if (!put.ok) throw new Error(`configuring the demo cluster: HTTP ${put.status} ${await put.text()}`);

    const slaveSip = await freePort();
    const svc = (verb: string) => ({
      argv: [process.execPath, TELEPHONY, verb, work, String(slaveSip)],
      timeoutMs: 10_000,
    });
    const config = {
      clusterId: CLUSTER,
      worker: {
        url: edge.url,
        token: AGENT_TOKEN,
        publicKeys: [key.public],
        pollIntervalMs: 2000,
        maxVerdictAgeMs: 10_000,
      },
      master: { host: "127.0.0.1" },
      failbackHoldDownMs: 8000,
      stateDir: path.join(work, "agent"),
      services: {
        start: [svc("start")],
        stop: [svc("stop")],
        status: [svc("status")],
        // Failover is done when the slave answers SIP, not when the start command returns.
        ready: {
          probe: { kind: "sip", name: "slave-sip", transport: "udp", port: slaveSip, timeoutMs: 500 },
          withinMs: 10_000,
        },
      },
      lan: {
        probes: [
          { kind: "sip", name: "sip-udp", transport: "udp", port: sipUdp.port, timeoutMs: 1000 },
          { kind: "sip", name: "sip-tcp", transport: "tcp", port: sip.port, timeoutMs: 1000, critical: false },
          { kind: "tcp", name: "web", port: web.port, timeoutMs: 1000, critical: false },
        ],
        intervalMs: 1000,
      },
      replication: { everyMs: 20_000, master: endpoint(masterDb), slave: endpoint(slaveDb) },
      failback: {
        master: endpoint(masterDb),
        slave: endpoint(slaveDb),
        tables: [
          { name: "call_log", key: null, idColumn: "id" },
          { name: "call_log_participant", key: ["uuid"], references: [{ column: "call_log_id", table: "call_log" }] },
          { name: "queue_log", key: null, idColumn: "id" },
        ],
      },
      http: { host: "127.0.0.1", port: 0 },
      loop: { intervalMs: 500, enforceEveryMs: 5000, reportEveryMs: 10_000 },
    };
    const configPath = path.join(work, "agent.json");
    await writeFile(configPath, JSON.stringify(config, null, 2), { mode: 0o600 });

    const timeline = new Timeline(say);
    agent = spawn(process.execPath, [AGENT_BIN, "run", "--config", configPath], { stdio: ["ignore", "pipe", "pipe"] });
    readline.createInterface({ input: agent.stdout! }).on("line", (l) => timeline.agentLine(l));
    readline.createInterface({ input: agent.stderr! }).on("line", (l) => say("agent", l));
    agent.once("exit", (code) => !stopping && say("agent", `exited (${code})`));
    const poller = setInterval(() => void timeline.pollEdge(edge.url, AGENT_TOKEN), 500);
    stops.push(async () => clearInterval(poller));

    say(
      "demo",
      `worker ${edge.url}  ·  verdict ${edge.url}/v1/clusters/${CLUSTER}/verdict (agent token in ${configPath})`,
    );
    say("demo", `status page ${edge.url}/status/${CLUSTER}  ·  slave's SIP stand-in 127.0.0.1:${slaveSip}/udp`);
    say("demo", `notifications: signed webhooks to ${receiver.url}, each signature checked on arrival`);

    const slaveAnswers = async () =>
      (
        await runLanProbe(
          LanProbe.parse({ kind: "sip", name: "slave", transport: "udp", port: slaveSip, timeoutMs: 500 }),
          "127.0.0.1",
        )
      ).ok;
    const crash = async () => {
      say("demo", "▼ crashing the master: every listener closed");
      for (const t of master) await t.set("closed");
      await makeCallsOnSlave(slaveDb, timeline);
    };
    const restore = async () => {
      say("demo", "▲ the master is back");
      for (const t of master) await t.set("ok");
    };

    if (opts.scenario === "master-crash") {
      await until(
        "the slave to settle as standby and replicate",
        () => timeline.role === "standby" && timeline.replicated > 0,
        { timeoutMs: 90_000, everyMs: 200 },
      );
      const t0 = Date.now();
      await crash();
      await until("the failover", async () => timeline.role === "active" && (await slaveAnswers()), {
        timeoutMs: 90_000,
        everyMs: 200,
      });
      say("demo", `✔ failover complete in ${((Date.now() - t0) / 1000).toFixed(1)} s: the slave answers SIP`);
      const t1 = Date.now();
      await restore();
      // Done once the slave, standby again, has also replicated after the copy-back: stopping
      // earlier would cut that pass and print it as failed.
      await until(
        "the failback",
        async () => timeline.role === "standby" && timeline.replicatedSinceCopyBack > 0 && !(await slaveAnswers()),
        { timeoutMs: 120_000, everyMs: 200 },
      );
      say(
        "demo",
        `✔ failback complete in ${((Date.now() - t1) / 1000).toFixed(1)} s (hold-down 8 s): calls copied back, slave standby and replicating`,
      );
      await until("the failback notification", () => receiver.verified.has("failback.done"), {
        timeoutMs: 30_000,
        everyMs: 200,
      });
      return 0;
    }

    say("demo", "keys: [k] crash the master  [r] bring it back  [q] quit   (Ctrl-C stops everything)");
    return await new Promise<number>((resolve) => {
      process.once("SIGINT", () => resolve(0));
      process.once("SIGTERM", () => resolve(0));
      if (!process.stdin.isTTY) return;
      readline.emitKeypressEvents(process.stdin);
      process.stdin.setRawMode(true);
      process.stdin.on("keypress", (_s, k: { name?: string; ctrl?: boolean }) => {
        if (k.name === "q" || (k.ctrl && k.name === "c")) resolve(0);
        else if (k.name === "k") void crash();
        else if (k.name === "r") void restore();
      });
    });
  } finally {
    if (process.stdin.isTTY) process.stdin.setRawMode(false);
    process.stdin.pause();
    say("demo", "stopping everything…");
    await stopAll();
  }
}

/**
 * A local webhook receiver, as an operator's would be: it checks each delivery's Standard
 * Webhooks signature and prints it in the timeline (event, signature, attempt). Loopback only.
 */
async function startWebhookReceiver(say: (who: string, what: string) => void) {
  const secret = `whsec_${randomBytes(32).toString("base64")}`;
  const webhook = new Webhook(secret);
  const attempts = new Map<string, number>();
  const verified = new Set<string>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size <= 1024 * 1024) chunks.push(c);
    });
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === "string") headers[k] = v;
      const id = headers["webhook-id"] ?? "?";
      const attempt = (attempts.get(id) ?? 0) + 1;
      attempts.set(id, attempt);
      let type = "?";
      let check: string;
      try {
        const payload = webhook.verify(body, headers) as { type?: string; data?: { reason?: string } };
        type = payload.type ?? "?";
        verified.add(type);
        check = `signature verified, attempt ${attempt}: ${payload.data?.reason ?? ""}`;
      } catch (err) {
        check = `SIGNATURE FAILED (${(err as Error).message}), attempt ${attempt}`;
      }
      say("notify", `${type}  ${check}`);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/hook`,
    secret,
    /** Event types received with a good signature. */
    verified,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Turns the agent's JSON log and the worker's history into one readable timeline. */
class Timeline {
  role = "unknown";
  replicated = 0;
  /** Replication passes done since the last copy-back to the master; -1 before any copy-back. */
  replicatedSinceCopyBack = -1;
  private since = 0;

  constructor(private readonly say: (who: string, what: string) => void) {}

  agentLine(line: string): void {
    let e: Record<string, any>;
    try {
      e = JSON.parse(line);
    } catch {
      return this.say("agent", line);
    }
    switch (e.event) {
      case "agent.started":
        return this.say("agent", `started (role ${e.role})`);
      case "decision":
        return this.say("agent", `decides: ${e.reason}${e.alert ? `  [ALERT ${e.alert}]` : ""}`);
      case "failover.start":
      case "failback.start":
        return this.say(
          "agent",
          `${e.event.split(".")[0]}: ${e.role === "active" ? "starting" : "stopping"} telephony`,
        );
      case "failover.done":
      case "failback.done":
        this.role = e.role;
        return this.say(
          "agent",
          `${e.event.replace(".", " ")}: role ${e.role}${e.readyProbe ? ` (the slave answers SIP ${e.readyAfterMs} ms after its start)` : ""}`,
        );
      case "failover.failed":
      case "failback.failed":
        return this.say("agent", `${e.event.replace(".", " ").toUpperCase()}: ${e.reason}`);
      case "telephony.failing":
        return this.say("agent", `the slave's telephony is not answering: ${e.reason}`);
      case "telephony.recovered":
        return this.say("agent", "the slave's telephony answers again");
      case "enforce":
        return this.say("agent", `enforce: ${e.reason}`);
      case "lan.changed":
        return this.say("agent", `LAN view: ${e.from} → ${e.to}`);
      case "replication.done":
        this.replicated++;
        if (this.replicatedSinceCopyBack >= 0) this.replicatedSinceCopyBack++;
        return this.say(
          "agent",
          `replication: ${e.copied.length ? `copied ${e.copied.join(", ")}` : "nothing changed"} (${e.durationMs} ms, ${e.rows} rows)`,
        );
      case "replication.failed":
        return this.say("agent", `replication FAILED: ${e.error}`);
      case "reconcile.done":
        this.replicatedSinceCopyBack = 0;
        return this.say(
          "agent",
          `copy-back to the master: ${e.tables.map((t: { name: string; copied: number }) => `${t.name} +${t.copied}`).join(", ")}`,
        );
      case "reconcile.failed":
        return this.say("agent", `copy-back FAILED: ${e.error}`);
      case "verdict.rejected":
        return this.say("agent", `rejected a verdict (${e.reason}): ${e.detail}`);
      default:
        if (e.level === "error") this.say("agent", `${e.event}: ${e.message ?? e.error ?? ""}`);
    }
  }

  async pollEdge(url: string, token: string): Promise<void> {
    try {
      const res = await fetch(`${url}/v1/clusters/${CLUSTER}/events?since=${this.since}&limit=100`, {
        headers: { authorization: `Bearer ${token}` },
      });
      const page = (await res.json()) as {
        events: { id: number; type: string; reason: string; data: Record<string, any> }[];
      };
      for (const e of page.events) {
        this.since = e.id;
        if (e.type === "verdict.changed") this.say("edge", `verdict ${e.data.from} → ${e.data.to}: ${e.reason}`);
      }
    } catch {
      // the worker is starting or stopping
    }
  }
}

async function prepareDatabases(master: PostgresServer, slave: PostgresServer): Promise<void> {
  const [m, s] = await Promise.all([connectPostgres(master), connectPostgres(slave)]);
  try {
    await Promise.all([createWazoSchema(m), createWazoSchema(s)]);
    await seedWazo(m, { scale: 1, blobBytes: 4096 });
  } finally {
    await Promise.all([m.end(), s.end()]);
  }
}

/** What the slave's telephony would write while it serves: a few calls, to be copied back. */
async function makeCallsOnSlave(slave: PostgresServer, timeline: Timeline): Promise<void> {
  const until_ = Date.now() + 60_000;
  while (timeline.role !== "active" && Date.now() < until_) await new Promise((r) => setTimeout(r, 200));
  const s = await connectPostgres(slave);
  try {
    await s.query(`INSERT INTO call_log (date, source_exten, destination_exten, user_field)
                   SELECT now(), '1' || g, '2' || g, 'during-failover' FROM generate_series(1, 3) g`);
  } finally {
    await s.end();
  }
}

function run(file: string, args: string[]): Promise<number | null> {
  return new Promise((resolve) => spawn(file, args, { stdio: "ignore" }).once("exit", resolve));
}

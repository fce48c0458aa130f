import { spawn } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { readState } from "../../agent/state.js";
import {
  agentEvents,
  AGENT_TOKEN,
  BIN_PATH as BIN,
  role,
  servicePid,
  startAgent,
  until,
  usePairs,
} from "../support/pair.js";
import { connectPostgres } from "../support/postgres.js";
import { testSecrets } from "../support/secrets.js";
import { endpoint, useWazoDatabases } from "../support/wazo-pair-databases.js";

/** The pair for real (see test/support/pair.ts): failover, failback, databases, maintenance, faults of the agent itself. */
const { lab: labOf, pair, cleanups } = usePairs();

describe.each([
  { channel: "push", push: true },
  { channel: "poll", push: false },
])("the HA pair, verdicts by $channel", ({ push }) => {
  it("kill the master: the slave takes over; bring it back: it gives the service back after the hold-down", async () => {
    const p = await pair({ push });
    startAgent(p);
    // First install, master up: the agent settles as standby with nothing running.
    await until("standby", async () => (await role(p)) === "standby", p);
    expect(await servicePid(p.dir)).toBeNull();

    for (const t of p.master) await t.set("closed");
    const done = async (kind: string) => {
      const s = await readState(join(p.dir, "state"));
      return s.ok && s.state.lastAction?.kind === kind && s.state.lastAction.ok ? s.state : null;
    };
    const active = await until("failover", () => done("failover"), p);
    expect(active.role).toBe("active");
    expect(await servicePid(p.dir)).not.toBeNull();

    for (const t of p.master) await t.set("ok");
    expect((await until("failback", () => done("failback"), p)).role).toBe("standby");
    expect(await servicePid(p.dir)).toBeNull();

    // The verdicts came by the channel under test (the agent's own /metrics says so).
    const http = agentEvents(p, "agent.started")[0]!.http as string;
    const metrics = await (await fetch(`${http}/metrics`)).text();
    const accepted = (ch: string) =>
      Number(new RegExp(`xivo_ha_verdicts_accepted_total\\{channel="${ch}"\\} (\\d+)`).exec(metrics)?.[1] ?? 0);
    if (push) expect(accepted("push")).toBeGreaterThan(5);
    else expect([accepted("push"), accepted("poll")]).toEqual([0, expect.any(Number)]);
    expect(accepted("poll") + accepted("push")).toBeGreaterThan(5);
    expect(metrics).toMatch(/xivo_ha_role\{role="standby"\} 1/);

    // The worker heard all of it.
    const events = (await (
      await fetch(`${labOf().edge.url}/v1/clusters/${p.id}/events?limit=500`, {
        headers: { authorization: `Bearer ${AGENT_TOKEN}` },
      })
    ).json()) as { events: { type: string; data: { role?: string; lastAction?: { kind: string } } }[] };
    const kinds = events.events.filter((e) => e.type === "agent.changed").map((e) => e.data.lastAction?.kind);
    expect(kinds).toContain("failover");
    expect(kinds).toContain("failback");
  });
});

describe("LAN confirmation", () => {
  it("a verdict that the master is down runs a LAN round at once, without waiting for the LAN beat", async () => {
    // The LAN beat is a minute: only the round the verdict asks for can confirm the master down in time.
    const p = await pair();
    const cfg = JSON.parse(await readFile(p.configPath, "utf8"));
    cfg.lan = { ...cfg.lan, intervalMs: 60_000, confirmIntervalMs: 60_000, fall: 1, rise: 1 };
    await writeFile(p.configPath, JSON.stringify(cfg));
    startAgent(p);
    await until("standby", async () => (await role(p)) === "standby", p);
    const mark = p.output().length;
    for (const t of p.master) await t.set("closed");
    await until("failover", async () => (await role(p)) === "active", p, 30_000);
    expect(agentEvents(p, "lan.changed", mark)[0]).toMatchObject({ from: "up", to: "down" });
  });
});

describe("planned maintenance", () => {
  it("the slave takes over for the window while the master is still up, and hands back after it", async () => {
    const p = await pair();
    startAgent(p);
    await until("standby", async () => (await role(p)) === "standby", p);
    const res = await labOf().admin("POST", `/v1/clusters/${p.id}/maintenance`, {
      to: Date.now() + 6000,
      reason: "kernel upgrade",
    });
    expect(res.status).toBe(201);
    const active = await until(
      "planned switchover",
      async () => {
        const s = await readState(join(p.dir, "state"));
        return s.ok && s.state.role === "active" && s.state.lastAction?.ok ? s.state : null;
      },
      p,
    );
    expect(active.lastAction?.reason).toBe("planned switchover: kernel upgrade");
    expect(await servicePid(p.dir)).not.toBeNull();
    // The master never went down: after the window and the hold-down, the service goes back.
    await until(
      "failback after the window",
      async () => (await role(p)) === "standby" && !(await servicePid(p.dir)),
      p,
    );
    const events = (await (await labOf().admin("GET", `/v1/clusters/${p.id}/events?limit=500`)).json()) as {
      events: { type: string }[];
    };
    const types = events.events.map((e) => e.type);
    expect(types).toContain("maintenance.started");
    expect(types).toContain("maintenance.ended");
  });
});

describe("the agent process", () => {
  it("a forged verdict (untrusted key) moves nothing, even with the master dead on the LAN", async () => {
    const other = await testSecrets();
    const p = await pair({ publicKeys: [other.publicJwk] });
    await writeFile(join(p.dir, "calls.log"), "");
    startAgent(p);
    for (const t of p.master) await t.set("closed");
    await until("rejections", async () => /"event":"verdict.rejected".*"reason":"forged"/.test(p.output()), p);
    await new Promise((r) => setTimeout(r, 3000));
    expect(await servicePid(p.dir)).toBeNull();
    expect(await role(p)).toBe("unknown");
  });

  it("a second agent on the same state directory refuses to run (exit 4, names the holder)", async () => {
    const p = await pair();
    const first = startAgent(p);
    await until("first agent up", async () => /"event":"agent.started"/.test(p.output()), p);
    const second = spawn(process.execPath, [BIN, "run", "--config", p.configPath], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let err = "";
    second.stderr!.on("data", (d) => (err += d));
    const code = await new Promise((r) => second.once("exit", r));
    expect(code).toBe(4);
    expect(err).toMatch(new RegExp(`held by pid ${first.pid}`));
  });

  it("kill -9 in the middle of a failover: the restarted agent reconciles", async () => {
    const p = await pair();
    // A start list whose first step is slow, so there is a window to kill the agent in.
    const cfg = JSON.parse(await readFile(p.configPath, "utf8"));
    cfg.services.start = [
      { argv: [process.execPath, "-e", "setTimeout(() => {}, 4000)"], timeoutMs: 15_000 },
      ...cfg.services.start,
    ];
    await writeFile(p.configPath, JSON.stringify(cfg));
    const first = startAgent(p);
    await until("standby", async () => (await role(p)) === "standby", p);
    for (const t of p.master) await t.set("closed");
    await until("failover started", async () => /"event":"failover.start"/.test(p.output()), p);
    first.kill("SIGKILL");
    await new Promise((r) => first.once("exit", r));
    const mid = await readState(join(p.dir, "state"));
    expect(mid.ok && mid.state).toMatchObject({ role: "active", lastAction: { kind: "failover", ok: false } });
    expect(await servicePid(p.dir)).toBeNull();

    startAgent(p);
    await until("services reconciled", async () => servicePid(p.dir), p);
    expect(await role(p)).toBe("active");
  });

  it("an invalid config: exit 3, the field named, no service touched", async () => {
    const p = await pair();
    const cfg = JSON.parse(await readFile(p.configPath, "utf8"));
    cfg.worker.pollIntervalMs = "often";
    await writeFile(p.configPath, JSON.stringify(cfg));
    const child = startAgent(p);
    const code = await new Promise((r) => child.once("exit", r));
    expect(code).toBe(3);
    expect(p.output()).toMatch(/worker\.pollIntervalMs: /);
    await expect(readFile(join(p.dir, "calls.log"), "utf8")).rejects.toThrow();
  });
});

describe("the pair's databases", () => {
  const dbs = useWazoDatabases();

  it("replicates while standby; at failback the slave's call records go back first, then replication resumes", async () => {
    const { master, slave } = dbs;
    const p = await pair({
      extra: {
        replication: { everyMs: 1000, master: endpoint(master), slave: endpoint(slave) },
        failback: {
          master: endpoint(master),
          slave: endpoint(slave),
          tables: [
            { name: "call_log", key: null, idColumn: "id" },
            { name: "call_log_participant", key: ["uuid"], references: [{ column: "call_log_id", table: "call_log" }] },
          ],
        },
      },
    });
    const [m, sl] = await Promise.all([connectPostgres(master), connectPostgres(slave)]);
    cleanups.push(async () => void (await Promise.allSettled([m.end(), sl.end()])));
    const one = async (c: typeof m, sql: string) => (await c.query(sql)).rows[0];
    const users = async (c: typeof m) => Number((await one(c, "SELECT count(*) AS n FROM userfeatures")).n);
    startAgent(p);
    await until(
      "first replication",
      async () => (await users(sl)) === (await users(m)) && (await role(p)) === "standby",
      p,
    );

    for (const t of p.master) await t.set("closed");
    await until("failover", async () => (await role(p)) === "active", p);
    // While active, the slave's telephony records calls; the master's config changes meanwhile.
    await sl.query(
      "INSERT INTO call_log (date, source_exten, destination_exten, user_field) SELECT now(), '10' || g, '20' || g, 'made-on-slave' FROM generate_series(1, 7) g",
    );
    await sl.query(
      "INSERT INTO call_log_participant (uuid, call_log_id, user_uuid, role) SELECT gen_random_uuid(), id, 'slave-user', 'source' FROM call_log WHERE user_field = 'made-on-slave'",
    );
    await m.query("UPDATE userfeatures SET firstname = 'renamed-during-failover' WHERE id = 1");
    const slaveMade = async () =>
      Number((await one(m, "SELECT count(*) AS n FROM call_log WHERE user_field = 'made-on-slave'")).n);
    expect(await slaveMade()).toBe(0);

    for (const t of p.master) await t.set("ok");
    await until("copy-back", async () => (await slaveMade()) === 7, p);
    const linked = await one(
      m,
      "SELECT count(*) AS n FROM call_log_participant cp JOIN call_log c ON c.id = cp.call_log_id WHERE c.user_field = 'made-on-slave'",
    );
    expect(Number(linked.n)).toBe(7);
    await until(
      "replication resumed",
      async () =>
        (await one(sl, "SELECT firstname FROM userfeatures WHERE id = 1")).firstname === "renamed-during-failover",
      p,
    );
    const st = await readState(join(p.dir, "state"));
    expect(st.ok && st.state.reconcilePending).toBe(false);
    // More passes copy nothing twice.
    await new Promise((r) => setTimeout(r, 2500));
    expect(await slaveMade()).toBe(7);
  });
});

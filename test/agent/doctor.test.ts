import { chmod, chown, mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { createServer as createHttpsServer } from "node:https";
import { createServer, type Server } from "node:net";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateSigningKey } from "../../protocol/signing.js";
import { freePort } from "../../scripts/edge.js";
import { agentCli } from "../support/agent-cli.js";
import { startEdgeLab, type EdgeLab } from "../support/edge-lab.js";
import { connectPostgres } from "../support/postgres.js";
import { endpoint, useWazoDatabases } from "../support/wazo-pair-databases.js";
import { tempDir } from "./helpers.js";

/**
 * `xivo-ha-agent doctor` against real parts: the worker under wrangler dev, a PostgreSQL pair
 * with Wazo's schema, real commands, loopback listeners, and a root directory where the test
 * plants cron files, the systemd link and the state directory. One healthy baseline, then each
 * fault it claims to find, made for real, one at a time.
 */
const TOKEN = "doctor-test-agent-token-0123456789abcdef";
const cluster = `doctor-${crypto.randomUUID().slice(0, 8)}`;
let lab: EdgeLab;
let listener: Server;
let port: number;
let dir: Awaited<ReturnType<typeof tempDir>>;
const dbs = useWazoDatabases();

beforeAll(async () => {
  dir = await tempDir();
  listener = createServer((s) => s.destroy());
  await new Promise<void>((r) => listener.listen(0, "127.0.0.1", r));
  port = (listener.address() as AddressInfo).port;
  lab = await startEdgeLab();
  const put = await lab.admin("PUT", `/v1/clusters/${cluster}`, {
    master: { host: "127.0.0.1" },
    probes: [{ kind: "tcp", name: "web", port, timeoutMs: 1000 }],
    intervalSec: 2,
    agentToken: TOKEN,
  });
  expect(put.status).toBe(201);
  const root = join(dir.path, "root");
  await mkdir(join(root, "etc/systemd/system/multi-user.target.wants"), { recursive: true });
  await writeFile(join(root, "etc/systemd/system/multi-user.target.wants/xivo-ha-agent.service"), "[Unit]\n");
  await mkdir(join(root, "etc/cron.d"), { recursive: true });
  await mkdir(join(root, "var/lib/xivo-ha"), { recursive: true, mode: 0o700 });
  // Wazo's own cron file, its lines commented out as the README says to do.
  await writeFile(
    join(root, "etc/cron.d/xivo-ha-slave"),
    "#*/5 * * * * root /usr/sbin/xivo-check-master-status 10.0.0.10\n",
  );
}, 180_000);
afterAll(async () => {
  await lab?.stop();
  listener?.close();
  await dir?.remove();
});

const root = () => join(dir.path, "root");

type Cfg = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
function baseConfig(): Cfg {
  return {
    clusterId: cluster,
    worker: { url: lab.edge.url, token: TOKEN, publicKeys: [lab.secrets.publicJwk] },
    master: { host: "127.0.0.1" },
    stateDir: "/var/lib/xivo-ha",
    services: {
      start: [{ argv: ["true"] }],
      stop: [{ argv: ["true"] }],
      status: [{ argv: ["sh", "-c", "exit 3"], timeoutMs: 5000 }],
      ready: { probe: { kind: "tcp", name: "local", port } },
    },
    lan: { probes: [{ kind: "tcp", name: "web", port, critical: true }] },
    replication: { master: endpoint(dbs.master), slave: endpoint(dbs.slave) },
    failback: { master: endpoint(dbs.master), slave: endpoint(dbs.slave) },
    http: { host: "127.0.0.1", port: null },
  };
}

interface Check {
  name: string;
  outcome: "ok" | "warning" | "failed" | "info";
  detail: string;
  fix?: string;
}

async function doctor(cfg: Cfg | string, env: NodeJS.ProcessEnv = {}) {
  const path = join(dir.path, `agent-${crypto.randomUUID().slice(0, 6)}.json`);
  await writeFile(path, typeof cfg === "string" ? cfg : JSON.stringify(cfg));
  const r = await agentCli(["doctor", "--json", "--config", path, "--root", root()], env);
  expect(r.err).not.toMatch(/\n\s+at /);
  const body = JSON.parse(r.out) as { ok: boolean; checks: Check[] };
  const check = (name: string) => {
    const c = body.checks.find((x) => x.name === name);
    expect(c, `${name} in ${JSON.stringify(body.checks.map((x) => x.name))}`).toBeDefined();
    return c!;
  };
  return { ...r, body, check };
}

const superuser = (s: typeof dbs.master) => connectPostgres(s);

describe("xivo-ha-agent doctor", () => {
  it("a healthy slave: every check passes (plain http to loopback is no warning), exit 0; the text output has one line per check", async () => {
    const d = await doctor(baseConfig());
    const bad = d.body.checks.filter((c) => c.outcome === "failed");
    expect(bad).toEqual([]);
    expect(d.code).toBe(0);
    expect(d.body.ok).toBe(true);
    expect(d.check("worker url")).toMatchObject({
      outcome: "ok",
      detail: expect.stringMatching(/plain http to this machine/),
    });
    for (const name of [
      "config",
      "worker reachable",
      "worker key",
      "worker token",
      "verdict",
      "push",
      "lan probe web",
      "service commands",
      "status command sh -c exit 3",
      "ready probe",
      "replication master login",
      "replication slave login",
      "postgresql versions",
      "replica role reads",
      "replication slave role",
      "slave owns sequences",
      "schema drift",
      "replication master write counters",
      "replication slave write counters",
      "copy-back master login",
      "copy-back slave login",
      "copy-back master writes",
      "copy-back slave reads",
      "other deciders",
      "systemd unit",
      "state directory",
    ]) {
      expect(d.check(name).outcome, name).toBe("ok");
    }
    expect(d.check("clock offset")).toMatchObject({
      outcome: "info",
      detail: expect.stringMatching(/relative to the worker.*decisions never use it/),
    });
    // The test servers run with PostgreSQL's default: no commit timestamps.
    expect(d.check("copy-back master commit times")).toMatchObject({
      outcome: "info",
      detail: expect.stringMatching(/track_commit_timestamp is off: .*keeps the master's value/),
    });
    // The test PostgreSQL serves TLS, and towards the master the default mode is require.
    expect(d.check("replication master tls")).toMatchObject({
      outcome: "ok",
      detail: expect.stringMatching(/^encrypted/),
    });
    expect(d.check("sip registration expiry")).toMatchObject({
      outcome: "info",
      detail: expect.stringMatching(/not checked/),
    });

    const path = join(dir.path, "text.json");
    await writeFile(path, JSON.stringify(baseConfig()));
    const text = await agentCli(["doctor", "--config", path, "--root", root()]);
    expect(text.code).toBe(0);
    expect(text.out).toMatch(/^ok {6}config: .* valid$/m);
    expect(text.out).toMatch(/^ok {6}worker url: .* \(plain http to this machine\)$/m);
    expect(text.out).toMatch(/^0 failed, 0 warning\(s\), \d+ ok$/m);
    expect(text.out + text.err).not.toContain(TOKEN);
  });

  it("an invalid config: one failed line naming the field, exit 1", async () => {
    const d = await doctor({ ...baseConfig(), mode: "sometimes" });
    expect(d.code).toBe(1);
    expect(d.check("config")).toMatchObject({ outcome: "failed", detail: expect.stringMatching(/mode: /) });
  });

  it.each([
    [
      "a wrong token",
      (c: Cfg) => (c.worker.token = "wrong-token-0123456789abcdef0123456789"),
      "worker token",
      /HTTP 401/,
    ],
    // The worker answers an unknown cluster as a refused token, on purpose.
    ["an unknown cluster", (c: Cfg) => (c.clusterId = "no-such-cluster"), "worker token", /HTTP 401/],
    [
      "a worker where nothing listens",
      async (c: Cfg) => (c.worker.url = `http://127.0.0.1:${await freePort()}`),
      "worker reachable",
      /ECONNREFUSED/,
    ],
    [
      "a critical LAN probe with no answer",
      async (c: Cfg) => (c.lan.probes[0].port = await freePort()),
      "lan probe web",
      /refused|ECONNREFUSED/,
    ],
    [
      "a service command that does not exist",
      (c: Cfg) => (c.services.start = [{ argv: ["xivo-ha-no-such-command"] }]),
      "service commands",
      /not found: xivo-ha-no-such-command/,
    ],
    [
      "a status command that hangs",
      (c: Cfg) => (c.services.status = [{ argv: ["sleep", "30"], timeoutMs: 300 }]),
      "status command sleep 30",
      /no answer within 300 ms/,
    ],
    [
      "a ready probe aimed away from the slave",
      (c: Cfg) => (c.services.ready.probe.host = "192.0.2.10"),
      "ready probe",
      /not an address of this slave/,
    ],
    [
      "a wrong replication password",
      (c: Cfg) => (c.replication.master.password = "wrong"),
      "replication master login",
      /password authentication failed/,
    ],
    [
      "a wrong copy-back password",
      (c: Cfg) => (c.failback.slave.password = "wrong"),
      "copy-back slave login",
      /password authentication failed/,
    ],
  ])("%s → failed, exit 1", async (_name, mutate: (c: Cfg) => unknown, check, detail) => {
    const cfg = baseConfig();
    await mutate(cfg);
    const d = await doctor(cfg);
    expect(d.check(check)).toMatchObject({
      outcome: "failed",
      detail: expect.stringMatching(detail),
      fix: expect.any(String),
    });
    expect(d.code).toBe(1);
    expect(d.out).not.toContain(TOKEN);
  });

  it("a key the worker does not serve: the key and the verdict fail", async () => {
    const cfg = baseConfig();
    cfg.worker.publicKeys = [(await generateSigningKey()).public];
    const d = await doctor(cfg);
    expect(d.check("worker key")).toMatchObject({
      outcome: "failed",
      detail: expect.stringMatching(/no configured key is one the worker serves/),
    });
    expect(d.check("verdict")).toMatchObject({
      outcome: "failed",
      detail: expect.stringMatching(/forged: unknown key id/),
    });
    expect(d.code).toBe(1);
  });

  it("a worker certificate this slave does not trust → worker tls failed", async () => {
    const [key, cert] = await Promise.all([
      readFile("test/fixtures/tls/server.key"),
      readFile("test/fixtures/tls/server.pem"),
    ]);
    const server = createHttpsServer({ key, cert }, (_req, res) => res.end("{}"));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    try {
      const cfg = baseConfig();
      cfg.worker.url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const d = await doctor(cfg, { NODE_EXTRA_CA_CERTS: "" });
      expect(d.check("worker tls")).toMatchObject({
        outcome: "failed",
        fix: expect.stringMatching(/certificate is not trusted/),
      });
      expect(d.code).toBe(1);
    } finally {
      server.close();
    }
  });

  it("database rights: a replica role that cannot read, a slave user that may not set session_replication_role nor owns the sequences, a copy-back user that may not insert", async () => {
    const [m, s] = await Promise.all([superuser(dbs.master), superuser(dbs.slave)]);
    try {
      await m.query("CREATE ROLE doctor_weak LOGIN PASSWORD 'weak-pass'");
      await m.query("GRANT SELECT ON ALL TABLES IN SCHEMA public TO doctor_weak");
      await m.query("REVOKE SELECT ON queue FROM doctor_weak");
      await s.query("CREATE ROLE doctor_slave LOGIN PASSWORD 'slave-pass'");
      const cfg = baseConfig();
      cfg.replication.master = { ...cfg.replication.master, user: "doctor_weak", password: "weak-pass" };
      cfg.replication.slave = { ...cfg.replication.slave, user: "doctor_slave", password: "slave-pass" };
      cfg.failback.master = { ...cfg.failback.master, user: "doctor_weak", password: "weak-pass" };
      const d = await doctor(cfg);
      expect(d.check("replica role reads")).toMatchObject({
        outcome: "failed",
        detail: "doctor_weak cannot read: queue",
      });
      expect(d.check("replication slave role")).toMatchObject({
        outcome: "failed",
        detail: expect.stringMatching(/may not set session_replication_role/),
      });
      expect(d.check("slave owns sequences")).toMatchObject({
        outcome: "failed",
        detail: expect.stringMatching(/doctor_slave does not own: .*_seq/),
      });
      expect(d.check("copy-back master writes")).toMatchObject({
        outcome: "failed",
        detail:
          "doctor_weak may not INSERT on (or there is no) public.call_log, public.call_log_participant, public.cel, public.queue_log",
      });
      expect(d.code).toBe(1);
    } finally {
      await m.query("DROP OWNED BY doctor_weak; DROP ROLE doctor_weak").catch(() => undefined);
      await s.query("DROP ROLE doctor_slave").catch(() => undefined);
      await Promise.all([m.end(), s.end()]);
    }
  });

  it("schema drift is found and nothing applied; SIP registration expiry read where the database holds it", async () => {
    const [m, s] = await Promise.all([superuser(dbs.master), superuser(dbs.slave)]);
    try {
      await m.query("ALTER TABLE queue ADD COLUMN doctor_new integer");
      await m.query(`CREATE TABLE staticsip (id serial PRIMARY KEY, commented integer NOT NULL DEFAULT 0, category varchar(128) NOT NULL, var_name varchar(128) NOT NULL, var_val varchar(255));
        INSERT INTO staticsip (category, var_name, var_val) VALUES ('general', 'minexpiry', '60'), ('general', 'maxexpiry', '3600'), ('general', 'defaultexpiry', '120')`);
      // The same table on the slave, so that only the queue column drifts.
      await s.query(
        "CREATE TABLE staticsip (id serial PRIMARY KEY, commented integer NOT NULL DEFAULT 0, category varchar(128) NOT NULL, var_name varchar(128) NOT NULL, var_val varchar(255))",
      );
      const before = (await s.query("SELECT count(*)::int AS n FROM staticsip")).rows[0].n;
      const d = await doctor(baseConfig());
      expect(d.check("schema drift")).toMatchObject({
        outcome: "failed",
        detail: expect.stringMatching(/queue.*doctor_new/),
      });
      expect(d.check("sip registration expiry")).toMatchObject({
        outcome: "warning",
        detail: expect.stringMatching(/minexpiry 60, maxexpiry 3600, defaultexpiry 120/),
        fix: "set minexpiry 20, maxexpiry 120, defaultexpiry 40",
      });
      expect((await s.query("SELECT count(*)::int AS n FROM staticsip")).rows[0].n).toBe(before);

      await m.query(
        "UPDATE staticsip SET var_val = CASE var_name WHEN 'minexpiry' THEN '20' WHEN 'maxexpiry' THEN '120' ELSE '40' END",
      );
      await m.query("ALTER TABLE queue DROP COLUMN doctor_new");
      const good = await doctor(baseConfig());
      expect(good.check("schema drift").outcome).toBe("ok");
      expect(good.check("sip registration expiry")).toMatchObject({
        outcome: "ok",
        detail: "minexpiry 20, maxexpiry 120, defaultexpiry 40",
      });
    } finally {
      await m
        .query("ALTER TABLE queue DROP COLUMN IF EXISTS doctor_new; DROP TABLE IF EXISTS staticsip")
        .catch(() => undefined);
      await s.query("DROP TABLE IF EXISTS staticsip").catch(() => undefined);
      await Promise.all([m.end(), s.end()]);
    }
  });

  it("SIP registration expiry from Wazo's PJSIP tables: each tenant's global template's aor options", async () => {
    const m = await superuser(dbs.master);
    try {
      await m.query(`CREATE TABLE tenant (uuid uuid PRIMARY KEY, global_sip_template_uuid uuid);
        CREATE TABLE endpoint_sip_section (uuid uuid PRIMARY KEY, type text NOT NULL, endpoint_sip_uuid uuid NOT NULL);
        CREATE TABLE endpoint_sip_section_option (uuid uuid PRIMARY KEY DEFAULT gen_random_uuid(), key text NOT NULL, value text NOT NULL, endpoint_sip_section_uuid uuid NOT NULL);
        INSERT INTO tenant VALUES ('00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-0000000000a1');
        INSERT INTO endpoint_sip_section VALUES ('00000000-0000-0000-0000-0000000000b1', 'aor', '00000000-0000-0000-0000-0000000000a1'),
                                                ('00000000-0000-0000-0000-0000000000b2', 'endpoint', '00000000-0000-0000-0000-0000000000a1');
        INSERT INTO endpoint_sip_section_option (key, value, endpoint_sip_section_uuid) VALUES
          ('minimum_expiration', '20', '00000000-0000-0000-0000-0000000000b1'), ('maximum_expiration', '120', '00000000-0000-0000-0000-0000000000b1'),
          ('default_expiration', '40', '00000000-0000-0000-0000-0000000000b1'), ('maximum_expiration', '9999', '00000000-0000-0000-0000-0000000000b2')`);
      const good = await doctor(baseConfig());
      expect(good.check("sip registration expiry")).toMatchObject({
        outcome: "ok",
        detail: "minimum_expiration 20, maximum_expiration 120, default_expiration 40",
      });
      await m.query(
        "UPDATE endpoint_sip_section_option SET value = '3600' WHERE key = 'maximum_expiration' AND value = '120'",
      );
      const long = await doctor(baseConfig());
      expect(long.check("sip registration expiry")).toMatchObject({
        outcome: "warning",
        fix: "set minimum_expiration 20, maximum_expiration 120, default_expiration 40",
      });
    } finally {
      await m
        .query("DROP TABLE IF EXISTS tenant, endpoint_sip_section, endpoint_sip_section_option")
        .catch(() => undefined);
      await m.end();
    }
  });

  it("the filesystem: a rival decider in cron, the unit not enabled, the state directory's mode and owner", async () => {
    const cron = join(root(), "etc/cron.d/xivo-ha-slave");
    const link = join(root(), "etc/systemd/system/multi-user.target.wants/xivo-ha-agent.service");
    const state = join(root(), "var/lib/xivo-ha");
    const saved = await readFile(cron, "utf8");
    try {
      await writeFile(cron, "*/5 * * * * root /usr/sbin/xivo-check-master-status 10.0.0.10\n");
      await mkdir(join(root(), "var/spool/cron/crontabs"), { recursive: true });
      await writeFile(
        join(root(), "var/spool/cron/crontabs/root"),
        "0 * * * * /usr/sbin/xivo-master-slave-db-replication 10.0.0.10\n",
      );
      await rename(link, `${link}.gone`);
      await chmod(state, 0o755);
      let d = await doctor(baseConfig());
      expect(d.check("other deciders")).toMatchObject({
        outcome: "failed",
        detail:
          "two deciders fight: /etc/cron.d/xivo-ha-slave: xivo-check-master-status; /var/spool/cron/crontabs/root: xivo-master-slave-db-replication",
      });
      expect(d.check("systemd unit")).toMatchObject({ outcome: "failed", fix: "systemctl enable --now xivo-ha-agent" });
      expect(d.check("state directory")).toMatchObject({ outcome: "warning", detail: "/var/lib/xivo-ha has mode 755" });
      expect(d.code).toBe(1);

      if (process.getuid?.() === 0) {
        await chown(state, 1, 1);
        d = await doctor(baseConfig());
        expect(d.check("state directory")).toMatchObject({
          outcome: "failed",
          detail: "/var/lib/xivo-ha is owned by uid 1",
        });
      }
    } finally {
      await writeFile(cron, saved);
      await rename(`${link}.gone`, link).catch(() => undefined);
      await chmod(state, 0o700);
      if (process.getuid?.() === 0) await chown(state, 0, 0);
    }
  });
});

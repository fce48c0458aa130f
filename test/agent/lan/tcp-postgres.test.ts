// TCP connect and PostgreSQL login probes, against loopback targets and a real PostgreSQL.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LanPostgresProbe, LanTcpProbe } from "../../../agent/lan/config.js";
import { runLanProbe } from "../../../agent/lan/probe.js";
import { PgTls } from "../../../agent/pg.js";
import { startPostgres, TEST_CA_FILE, type PostgresServer } from "../../support/postgres.js";
import { createTarget, type Target } from "../../support/target-client.js";
import { startTargetControl, type TargetControl } from "../../support/targets.js";

const HOST = "127.0.0.1";
const PASSWORD = "s3cret-Pa55-for-the-asterisk-user";

let control: TargetControl;
beforeAll(async () => {
  control = await startTargetControl();
});
afterAll(async () => {
  await control.close();
});

describe("TCP connect probe", () => {
  let target: Target;
  beforeAll(async () => {
    target = await createTarget(control.port, "tcp");
  });
  afterAll(() => target.remove());
  const tcp = (): LanTcpProbe => ({ kind: "tcp", name: "web", port: target.port, critical: false, timeoutMs: 3000 });

  it("ok when the port accepts, whatever is said after (or not)", async () => {
    for (const mode of ["ok", "silent", "garbage"] as const) {
      await target.set(mode);
      const r = await runLanProbe(tcp(), HOST);
      expect(r).toMatchObject({
        name: "web",
        kind: "tcp",
        critical: false,
        ok: true,
        detail: `connected to port ${target.port}`,
      });
      expect(r.rttMs).toBeGreaterThanOrEqual(0);
    }
  });

  it("fails fast when the port is closed", async () => {
    await target.set("closed");
    const r = await runLanProbe(tcp(), HOST);
    expect(r).toMatchObject({ ok: false, detail: "connection refused" });
    expect(r.rttMs).not.toBeNull();
  });

  it("uses the probe's own host over the master's", async () => {
    await target.set("ok");
    expect(await runLanProbe({ ...tcp(), host: HOST }, "master.invalid")).toMatchObject({ ok: true });
  });
});

describe("PostgreSQL login probe", () => {
  let pg: PostgresServer;
  beforeAll(async () => {
    pg = await startPostgres({ database: "asterisk", user: "asterisk", password: PASSWORD });
  });
  afterAll(() => pg?.stop());

  const login = (extra: Partial<LanPostgresProbe> = {}): LanPostgresProbe => ({
    kind: "postgres",
    name: "postgres",
    port: pg.port,
    database: "asterisk",
    user: "asterisk",
    password: PASSWORD,
    critical: false,
    timeoutMs: 5000,
    ...extra,
  });

  it("logs in and runs SELECT 1", async () => {
    const r = await runLanProbe(login(), HOST);
    expect(r).toMatchObject({
      name: "postgres",
      kind: "postgres",
      critical: false,
      ok: true,
      detail: 'login as "asterisk" to "asterisk" ok',
    });
    expect(r.rttMs).toBeGreaterThan(0);
  });

  it("over TLS: require by default; verify-full checks the CA and the name; a server without TLS is named as such", async () => {
    const caFile = TEST_CA_FILE;
    expect(await runLanProbe(login({ tls: PgTls.parse({ mode: "verify-full", caFile }) }), HOST)).toMatchObject({
      ok: true,
    });
    const wrongName = await runLanProbe(
      login({ tls: PgTls.parse({ mode: "verify-full", caFile, servername: "db.example.org" }) }),
      HOST,
    );
    expect(wrongName).toMatchObject({ ok: false });
    expect(wrongName.detail).toMatch(
      new RegExp(
        `^connecting to master PostgreSQL 127\\.0\\.0\\.1:${pg.port}: its certificate is not valid for servername db\\.example\\.org \\(lan probe "postgres" tls\\.servername\\)`,
      ),
    );
    const plain = await startPostgres({ database: "asterisk", user: "asterisk", password: PASSWORD, tls: false });
    try {
      const r = await runLanProbe(login({ port: plain.port }), HOST);
      expect(r).toMatchObject({ ok: false });
      expect(r.detail).toMatch(
        new RegExp(
          `^connecting to master PostgreSQL 127\\.0\\.0\\.1:${plain.port}: it does not offer TLS but lan probe "postgres" tls\\.mode is require \\(the default\\)`,
        ),
      );
      expect(await runLanProbe(login({ port: plain.port, tls: PgTls.parse({ mode: "off" }) }), HOST)).toMatchObject({
        ok: true,
      });
    } finally {
      await plain.stop();
    }
  });

  it("wrong password: authentication failed, and the password shows nowhere", async () => {
    const wrong = "wrong-Pa55word-xyz";
    const r = await runLanProbe(login({ password: wrong }), HOST);
    expect(r).toMatchObject({ ok: false, detail: 'authentication failed for user "asterisk"' });
    expect(JSON.stringify(r)).not.toContain(wrong);
    expect(JSON.stringify(r)).not.toContain(PASSWORD);
  });

  it("no password configured: says where to put one", async () => {
    const saved = process.env.PGPASSWORD;
    delete process.env.PGPASSWORD; // libpq's variable, which pg honours too
    try {
      const r = await runLanProbe(login({ password: undefined }), HOST);
      expect(r).toMatchObject({
        ok: false,
        detail: "server asks for a password and none is configured (set XIVO_HA_PG_PASSWORD)",
      });
    } finally {
      if (saved !== undefined) process.env.PGPASSWORD = saved;
    }
  });

  it("unknown database", async () => {
    expect(await runLanProbe(login({ database: "nope" }), HOST)).toMatchObject({
      ok: false,
      detail: 'database "nope" does not exist',
    });
  });

  it("something that is not PostgreSQL on the port: fails without waiting for the timeout", async () => {
    const junk = await createTarget(control.port, "tcp", { mode: "garbage" });
    try {
      const started = Date.now();
      const r = await runLanProbe(login({ port: junk.port, timeoutMs: 10_000 }), HOST);
      expect(r).toMatchObject({ ok: false, detail: 'not a PostgreSQL server: "THIS IS JUNK, NOT A PROTOCOL\\r\\n"' });
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      await junk.remove();
    }
  });

  it("a server that accepts and never speaks: timeout, rttMs null", async () => {
    const hung = await createTarget(control.port, "tcp", { mode: "silent" });
    try {
      const r = await runLanProbe(login({ port: hung.port, timeoutMs: 800 }), HOST);
      expect(r).toMatchObject({ ok: false, detail: "timeout after 800 ms (connecting and logging in)", rttMs: null });
    } finally {
      await hung.remove();
    }
  });

  it("server stopped: connection refused", async () => {
    const other = await startPostgres({ database: "asterisk", user: "asterisk", password: PASSWORD });
    const probe = login({ port: other.port });
    expect(await runLanProbe(probe, HOST)).toMatchObject({ ok: true });
    await other.stop();
    expect(await runLanProbe(probe, HOST)).toMatchObject({ ok: false, detail: "connection refused" });
  });
});

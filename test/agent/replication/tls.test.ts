import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfig } from "../../../agent/config.js";
import { PgTls } from "../../../agent/pg.js";
import { generateSigningKey, type PublicJwk } from "../../../protocol/signing.js";
import { ReplicationConfig } from "../../../agent/replication/config.js";
import { replicate } from "../../../agent/replication/run.js";
import { startPostgres, TEST_CA_FILE, TLS_FIXTURES, type PostgresServer } from "../../support/postgres.js";
import { REPLICATED_TABLES } from "../../support/wazo-schema.js";
import { checksums, REPLICA_PASSWORD, startPair, type Pair } from "./helpers.js";

const verifyFull = (extra: Record<string, string> = {}) =>
  PgTls.parse({ mode: "verify-full", caFile: TEST_CA_FILE, ...extra });

describe("replication over TLS", () => {
  let p: Pair;
  let plain: PostgresServer;
  beforeAll(async () => {
    [p, plain] = await Promise.all([
      startPair({ scale: 1, blobBytes: 1024 }),
      startPostgres({ database: "asterisk", tls: false }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([p?.stop(), plain?.stop()]);
  });

  it("verify-full against the test CA: the run goes through, both nodes over TLS", async () => {
    const base = p.cfg();
    const cfg = {
      ...base,
      master: { ...base.master, tls: verifyFull() },
      slave: { ...base.slave, tls: verifyFull({ servername: "localhost" }) },
    };
    const report = await replicate(cfg);
    expect(report.error).toBeNull();
    expect(await checksums(p.s, REPLICATED_TABLES)).toEqual(await checksums(p.m, REPLICATED_TABLES));
  });

  it("a certificate not valid for the servername: refused, naming the node, the name and the field", async () => {
    const base = p.cfg();
    const report = await replicate({
      ...base,
      master: { ...base.master, tls: verifyFull({ servername: "db.example.org" }) },
    });
    expect(report.ok).toBe(false);
    expect(report.error).toMatch(
      new RegExp(
        `^connecting to master PostgreSQL 127\\.0\\.0\\.1:${p.master.port}: its certificate is not valid for servername db\\.example\\.org \\(replication\\.master\\.tls\\.servername\\)`,
      ),
    );
    expect(report.error).not.toContain(REPLICA_PASSWORD);
  });

  it("a certificate from another CA: refused as untrusted", async () => {
    const base = p.cfg();
    // The server's own certificate as the only "CA": its real issuer is then unknown.
    const report = await replicate({
      ...base,
      master: { ...base.master, tls: verifyFull({ caFile: join(TLS_FIXTURES, "server.pem") }) },
    });
    expect(report.error).toMatch(
      /^connecting to master PostgreSQL 127\.0\.0\.1:\d+: its certificate is not trusted by replication\.master\.tls\.caFile \/\S+\/server\.pem \(\w+\)$/,
    );
  });

  it("the default (require) against a master without TLS: refused, saying what to change", async () => {
    const base = p.cfg();
    const report = await replicate({ ...base, master: { ...base.master, port: plain.port } });
    expect(report.error).toBe(
      `connecting to master PostgreSQL 127.0.0.1:${plain.port}: it does not offer TLS but replication.master.tls.mode is require (the default): turn ssl on in its postgresql.conf, or set replication.master.tls.mode to "off" to accept cleartext`,
    );
  });

  it("mode off against a master that accepts TLS logins only (hostssl): refused, saying so", async () => {
    const hba = join(p.master.dataDir, "pg_hba.conf");
    const saved = await readFile(hba, "utf8");
    await writeFile(hba, "local all all scram-sha-256\nhostssl all all 127.0.0.1/32 scram-sha-256\n");
    await p.m.query("SELECT pg_reload_conf()");
    try {
      const base = p.cfg();
      const report = await replicate({ ...base, master: { ...base.master, tls: PgTls.parse({ mode: "off" }) } });
      expect(report.error).toMatch(
        /^connecting to master PostgreSQL 127\.0\.0\.1:\d+: it refuses cleartext logins \(pg_hba\.conf: hostssl\) but replication\.master\.tls\.mode is off/,
      );
      expect((await replicate(base)).error).toBeNull(); // the default, require, gets in
    } finally {
      await writeFile(hba, saved);
      await p.m.query("SELECT pg_reload_conf()");
    }
  });
});

describe("the tls setting", () => {
  let key: PublicJwk;
  beforeAll(async () => {
    key = (await generateSigningKey()).public;
  });
  const agent = (replication: unknown) => ({
    clusterId: "c1",
    worker: { url: "https://w.example", token: "t", publicKeys: [key] },
    master: { host: "10.0.0.1" },
    services: { preset: "wazo" },
    replication,
  });
  const errorOf = (replication: unknown) => {
    try {
      parseConfig(agent(replication), {}, "agent.json");
    } catch (e) {
      return (e as Error).message;
    }
    return null;
  };

  it("absent: require towards the master, off towards the slave; the CA file read at load", () => {
    const c = parseConfig(
      agent({ master: { tls: { mode: "verify-full", caFile: TEST_CA_FILE, servername: "db1" } } }),
      {},
      "agent.json",
    );
    expect(c.replication?.master.tls).toMatchObject({ mode: "verify-full", servername: "db1" });
    expect(c.replication?.master.tls?.ca).toContain("-----BEGIN CERTIFICATE-----");
    expect(ReplicationConfig.parse({}).master.tls).toBeUndefined();
  });

  it("errors name the field: a missing CA file, a CA file that is no PEM, verify-full without one, a servername that would not be checked, an unknown mode", () => {
    expect(errorOf({ master: { tls: { mode: "verify-full", caFile: "/nonexistent/ca.pem" } } })).toBe(
      "invalid config agent.json:\n  replication.master.tls.caFile: cannot read /nonexistent/ca.pem (ENOENT)",
    );
    expect(errorOf({ slave: { tls: { mode: "verify-full", caFile: join(TLS_FIXTURES, "README.md") } } })).toMatch(
      /replication\.slave\.tls\.caFile: \/\S+README\.md holds no PEM certificate/,
    );
    expect(errorOf({ master: { tls: { mode: "verify-full" } } })).toMatch(
      /replication\.master\.tls\.caFile: expected the CA's PEM file with mode verify-full/,
    );
    expect(errorOf({ master: { tls: { mode: "require", servername: "db1" } } })).toMatch(
      /replication\.master\.tls\.servername: only checked with mode verify-full \(mode is require\)/,
    );
    expect(errorOf({ master: { tls: { mode: "prefer" } } })).toMatch(/replication\.master\.tls\.mode: /);
    expect(errorOf({ master: { tls: { mode: "verify-full", caFile: "ca.pem" } } })).toMatch(
      /replication\.master\.tls\.caFile: expected an absolute path/,
    );
  });
});

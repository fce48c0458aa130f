import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, FailbackError } from "../../../agent/failback/db.js";
import { PgTls } from "../../../agent/pg.js";
import { startPostgres, TEST_CA_FILE, type PostgresServer } from "../../support/postgres.js";

/** Copy-back's connections honour the same tls setting as replication's. */
describe("failback connections over TLS", () => {
  let withTls: PostgresServer;
  let plain: PostgresServer;
  beforeAll(async () => {
    [withTls, plain] = await Promise.all([startPostgres(), startPostgres({ tls: false })]);
  });
  afterAll(async () => {
    await Promise.all([withTls?.stop(), plain?.stop()]);
  });
  const endpoint = (s: PostgresServer, tls?: unknown) => ({
    host: s.host,
    port: s.port,
    database: s.database,
    user: s.user,
    password: s.password,
    ...(tls ? { tls: PgTls.parse(tls) } : {}),
  });
  const limits = { connectTimeoutMs: 5_000, statementTimeoutMs: 5_000 };

  it("verify-full: connected over TLS", async () => {
    const c = await connect("master", endpoint(withTls, { mode: "verify-full", caFile: TEST_CA_FILE }), limits);
    try {
      expect((await c.query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")).rows[0].ssl).toBe(true);
    } finally {
      await c.end();
    }
  });

  it("the master's default is require, the slave's off; a disagreement names the node and the field, never the password", async () => {
    const err = await connect("master", endpoint(plain), limits).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(FailbackError);
    expect((err as Error).message).toBe(
      `connecting to master PostgreSQL 127.0.0.1:${plain.port}: it does not offer TLS but failback.master.tls.mode is require (the default): turn ssl on in its postgresql.conf, or set failback.master.tls.mode to "off" to accept cleartext`,
    );
    expect((err as Error).message).not.toContain(plain.password);
    const slave = await connect("slave", endpoint(plain), limits);
    expect((await slave.query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")).rows[0].ssl).toBe(false);
    await slave.end();
  });
});

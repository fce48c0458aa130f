import { afterAll, beforeAll } from "vitest";
import { connectPostgres, startPostgres, type PostgresServer } from "./postgres.js";
import { createWazoSchema, seedWazo } from "./wazo-schema.js";

/**
 * A master and a slave PostgreSQL with Wazo's schema, the master seeded, for the describe block
 * that calls it: what the agent's `replication` and `failback` sections point at.
 */
export function useWazoDatabases() {
  const dbs = {} as { master: PostgresServer; slave: PostgresServer };
  beforeAll(async () => {
    [dbs.master, dbs.slave] = await Promise.all([
      startPostgres({ database: "asterisk" }),
      startPostgres({ database: "asterisk" }),
    ]);
    const [m, sl] = await Promise.all([connectPostgres(dbs.master), connectPostgres(dbs.slave)]);
    await Promise.all([createWazoSchema(m), createWazoSchema(sl)]);
    await seedWazo(m, { scale: 1, blobBytes: 1024 });
    await Promise.all([m.end(), sl.end()]);
  }, 120_000);
  afterAll(async () => {
    await Promise.allSettled([dbs.master?.stop(), dbs.slave?.stop()]);
  });
  return dbs;
}

/** A server as the agent's config names it. */
export const endpoint = (p: PostgresServer) => ({
  host: p.host,
  port: p.port,
  database: "asterisk",
  user: p.user,
  password: p.password,
});

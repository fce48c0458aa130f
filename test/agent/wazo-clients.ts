import type pg from "pg";
import { afterAll, beforeAll } from "vitest";
import { connectPostgres } from "../support/postgres.js";
import { useWazoDatabases } from "../support/wazo-pair-databases.js";

/**
 * The Wazo pair's databases (useWazoDatabases) and a client on each, open for the whole file:
 * `servers` for the agent's config, `m` (master) and `s` (slave) for the test's own SQL.
 */
export function useWazoClients() {
  const c = { servers: useWazoDatabases() } as {
    servers: ReturnType<typeof useWazoDatabases>;
    m: pg.Client;
    s: pg.Client;
  };
  beforeAll(async () => {
    [c.m, c.s] = await Promise.all([connectPostgres(c.servers.master), connectPostgres(c.servers.slave)]);
  });
  afterAll(async () => {
    await Promise.allSettled([c.m?.end(), c.s?.end()]);
  });
  return c;
}

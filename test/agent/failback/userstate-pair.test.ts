import type pg from "pg";
import { beforeAll, describe, expect, it } from "vitest";
import { agentEvents, role, startAgent, until, usePairs } from "../../support/pair.js";
import { connectPostgres } from "../../support/postgres.js";
import { endpoint, useWazoDatabases } from "../../support/wazo-pair-databases.js";
import { USER_SERVICE_COLUMNS } from "./wazo.js";

/**
 * The pair for real (test/support/pair.ts: the worker under wrangler dev, the agent as its own
 * process, real PostgreSQL master and slave): a user sets DND and a forward on the active slave;
 * after failback the master has them, and replication leaves them in place.
 */
const { pair, cleanups } = usePairs();
const dbs = useWazoDatabases();

// The columns of Wazo's userfeatures the shared fixture may not have yet.
beforeAll(async () => {
  for (const server of [dbs.master, dbs.slave]) {
    const c = await connectPostgres(server);
    await c.query(USER_SERVICE_COLUMNS);
    await c.end();
  }
});

describe("the pair: the users' own settings at failback", () => {
  it("DND and a forward set on the active slave are on the master after failback; replication leaves them", async () => {
    const p = await pair({
      extra: {
        replication: { everyMs: 1000, master: endpoint(dbs.master), slave: endpoint(dbs.slave) },
        failback: { master: endpoint(dbs.master), slave: endpoint(dbs.slave) },
      },
    });
    const [m, s] = await Promise.all([connectPostgres(dbs.master), connectPostgres(dbs.slave)]);
    cleanups.push(async () => void (await Promise.allSettled([m.end(), s.end()])));
    const alice = (await m.query<{ uuid: string }>("SELECT uuid::text FROM userfeatures ORDER BY id LIMIT 1")).rows[0]!
      .uuid;
    const settings = async (c: pg.Client) =>
      (await c.query("SELECT enablednd, enableunc, destunc FROM userfeatures WHERE uuid::text = $1", [alice]))
        .rows[0] as Record<string, unknown> | undefined;
    startAgent(p);
    await until("first replication", async () => (await role(p)) === "standby" && !!(await settings(s)), p);

    for (const t of p.master) await t.set("closed");
    await until("failover", async () => (await role(p)) === "active", p);
    expect(agentEvents(p, "userstate.baseline")).toHaveLength(1);
    await s.query(
      "UPDATE userfeatures SET enablednd = 1, enableunc = 1, destunc = '0611223344' WHERE uuid::text = $1",
      [alice],
    );

    for (const t of p.master) await t.set("ok");
    const want = { enablednd: 1, enableunc: 1, destunc: "0611223344" };
    await until("copy-back", async () => (await settings(m))?.enablednd === 1, p);
    expect(await settings(m)).toEqual(want);
    // Any replication logged from now on ran after the copy-back committed.
    const mark = p.output().length;
    await until("replication after the copy-back", async () => agentEvents(p, "replication.done", mark).length >= 1, p);
    expect(await settings(s)).toEqual(want);
    expect(await settings(m)).toEqual(want);
  }, 150_000);
});

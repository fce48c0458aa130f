import type pg from "pg";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FailbackConfig } from "../../../agent/failback/config.js";
import { offlineKeeper } from "../../../agent/keeper.js";
import { ReplicationConfig, resolveReplicationSecrets } from "../../../agent/replication/config.js";
import { StandbySync } from "../../../agent/standby-sync.js";
import { writeState } from "../../../agent/state.js";
import { endpoint } from "../../support/wazo-pair-databases.js";
import { tempDir } from "../helpers.js";
import { useWazoClients } from "../wazo-clients.js";

/**
 * The whole path as the daemon runs it, on Wazo's fixture: the keeper's failover records the
 * baseline, a user changes DND and a forward on the active slave, the keeper's failback, then the
 * standby's pass copies back (user state included) and replication resumes — and leaves them.
 */
const db = useWazoClients();
const dbs = db.servers;
let dir: { path: string; remove: () => Promise<void> };

beforeEach(async () => (dir = await tempDir()));
afterEach(async () => dir.remove());

describe("user state through the keeper and the standby's pass", () => {
  it("DND and a forward set on the active slave are on the master after failback, and replication keeps them", async () => {
    const events: string[] = [];
    const log = (e: string) => void events.push(e);
    const failback = FailbackConfig.parse({ master: endpoint(dbs.master), slave: endpoint(dbs.slave) });
    const keeper = offlineKeeper(
      {
        mode: "auto",
        requireLanConfirmation: true,
        failbackHoldDownMs: 60_000,
        noVerdictAlertMs: 60_000,
        stateDir: dir.path,
        lockWaitMs: 0,
        services: { start: [], stop: [], status: [], retry: { retries: 0, backoffMs: 1, maxBackoffMs: 1 } },
        failback,
      },
      log,
    );
    const sync = new StandbySync({
      keeper,
      stateDir: dir.path,
      replication: resolveReplicationSecrets(
        ReplicationConfig.parse({ master: endpoint(dbs.master), slave: endpoint(dbs.slave) }),
        {},
      ),
      failback,
      masterUp: () => true,
      log,
    });
    await writeState(dir.path, { v: 1, role: "standby", since: 1, lastAction: null, reconcilePending: false });
    expect(await sync.run()).toBe("replicated");
    const [alice, bob] = (await db.s.query<{ uuid: string }>("SELECT uuid::text FROM userfeatures ORDER BY id LIMIT 2"))
      .rows;
    const services = (c: pg.Client, uuid: string) =>
      c
        .query("SELECT firstname, enablednd, enableunc, destunc FROM userfeatures WHERE uuid::text = $1", [uuid])
        .then((r) => r.rows[0]);

    await keeper.load();
    await keeper.changeRole("active", "failover", "master down");
    expect(events).toContain("userstate.baseline");
    // On the active slave, Alice turns DND on and forwards her calls; on the master meanwhile an
    // administrator renames Bob.
    await db.s.query(
      "UPDATE userfeatures SET enablednd = 1, enableunc = 1, destunc = '0611223344' WHERE uuid::text = $1",
      [alice!.uuid],
    );
    await db.m.query("UPDATE userfeatures SET firstname = 'Robert' WHERE uuid::text = $1", [bob!.uuid]);
    await keeper.changeRole("standby", "failback", "master back");

    expect(await sync.run()).toBe("replicated");
    expect(sync.lastReconcile?.userState?.tables[0]).toMatchObject({ changedOnSlave: 1, applied: 1 });
    const want = { enablednd: 1, enableunc: 1, destunc: "0611223344" };
    expect(await services(db.m, alice!.uuid)).toMatchObject(want);
    // Replication ran after the copy-back: the slave keeps Alice's settings and has Bob's new name.
    expect(await services(db.s, alice!.uuid)).toMatchObject(want);
    expect(await services(db.s, bob!.uuid)).toMatchObject({ firstname: "Robert" });
    expect(keeper.reconcilePending).toBe(false);
    // And the next passes change nothing.
    expect(await sync.run()).toBe("replicated");
    expect(await services(db.s, alice!.uuid)).toMatchObject(want);
  });
});

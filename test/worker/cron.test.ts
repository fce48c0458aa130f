import { createExecutionContext, env, runInDurableObject, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { Env } from "../../worker/env.js";
import { rearmOverdue } from "../../worker/cron.js";
import worker from "../../worker/index.js";
import { LEASE_GRACE_MS, LEASE_MS, REGISTRY_SHARDS, RENEW_BEFORE_MS, renewal, shardOf } from "../../worker/lease.js";
import { registryShards } from "../../worker/registry.js";
import { until } from "../support/until.js";
import { ADMIN, api, clusterConfig, stubOf, uniqueId, waitForSeq } from "./helpers.js";

const tcpProbe = { kind: "tcp", name: "pg", port: 1, timeoutMs: 200 };
/** What a run may call beyond one call per overdue loop: a read and a write per registry shard. */
const CONSTANT = 2 * REGISTRY_SHARDS;

/** The worker's env with every Durable Object call counted, independently of what the cron reports. */
function counted(base: Env, vars: Partial<Env> = {}): { env: Env; calls: () => number } {
  let calls = 0;
  // Stubs are proxies of the runtime's own: every method read off one is a call to the object.
  const countStub = (stub: object) =>
    new Proxy(stub, {
      get(target, name) {
        const member = Reflect.get(target, name) as unknown;
        if (typeof member !== "function") return member;
        return (...args: unknown[]) => {
          calls++;
          return (member as (...a: unknown[]) => unknown)(...args);
        };
      },
    });
  const countNs = (ns: object): any =>
    new Proxy(ns, {
      get(target, name) {
        const member = Reflect.get(target, name) as unknown;
        if (typeof member !== "function") return member;
        const method = (member as (...a: unknown[]) => unknown).bind(target);
        return name === "get" ? (id: DurableObjectId) => countStub(method(id) as object) : method;
      },
    });
  return {
    env: { ...base, ...vars, CLUSTER: countNs(base.CLUSTER), REGISTRY: countNs(base.REGISTRY) },
    calls: () => calls,
  };
}

/** Clusters with a one-hour interval, each past its first round and the lease that round wrote. */
async function clusters(n: number): Promise<string[]> {
  const ids = Array.from({ length: n }, () => uniqueId("cron"));
  for (const id of ids)
    expect((await api("PUT", `/v1/clusters/${id}`, { body: clusterConfig([tcpProbe]) })).status).toBe(201);
  for (const id of ids) {
    await waitForSeq(id, 1);
    // The first round renews the lease past the next round, an hour away: wait for that write.
    await until(`${id}'s lease past its next round`, async () => ((await dueOf(id)) ?? 0) > Date.now() + 3_000_000);
  }
  return ids;
}

const shardStub = (id: string) => registryShards(env)[shardOf(id)]!;

/** The lease the registry holds for `id`; null when it has no row. */
const dueOf = (id: string) =>
  runInDurableObject(shardStub(id), (_, state) => {
    const row = state.storage.sql.exec<{ due: number }>("SELECT due FROM clusters WHERE id = ?", id).toArray()[0];
    return row?.due ?? null;
  });

/** Makes loops read as overdue, in this order (the longest overdue first), as a stopped loop would. */
async function makeOverdue(ids: string[]) {
  for (const [i, id] of ids.entries()) await shardStub(id).renew([{ id, due: 1 + i }]);
}

const dropAlarm = (id: string) => runInDurableObject(stubOf(id), (_, state) => state.storage.deleteAlarm());
const alarmOf = (id: string) => runInDurableObject(stubOf(id), (_, state) => state.storage.getAlarm());

describe("cron re-arm", () => {
  it("with nothing overdue, a run only reads the registry shards, however many clusters exist", async () => {
    await clusters(3);
    // Leases written by this file's other tests may be overdue: shift "now" back before them all.
    const { env: e, calls } = counted(env);
    const run = await rearmOverdue(e, 1);
    expect(run.checked).toBe(0);
    expect(calls()).toBe(REGISTRY_SHARDS);
    expect(run.calls).toBe(calls());
  });

  it("re-arms a lost alarm, renews an overdue loop that is fine, counts one call per overdue loop plus a constant", async () => {
    const [lost, late] = await clusters(2);
    await dropAlarm(lost!);
    const lateAlarm = await alarmOf(late!);
    await makeOverdue([lost!, late!]);
    const { env: e, calls } = counted(env);
    const run = await rearmOverdue(e);
    expect(run.rearmed).toContain(lost);
    expect(run.renewed).toContain(late);
    expect(calls()).toBe(run.calls);
    expect(calls()).toBeLessThanOrEqual(run.checked + CONSTANT);
    // The fine loop keeps its alarm; both leases now run past their next round.
    expect(await alarmOf(late!)).toBe(lateAlarm);
    for (const id of [lost!, late!]) expect(await dueOf(id)).toBeGreaterThan(Date.now());
    // Re-armed for "now": the loop resumes with the next round, and arms the one after.
    await waitForSeq(lost!, 2);
    expect(await until("the next round armed", () => alarmOf(lost!))).toBeGreaterThan(Date.now());
  });

  it("checks at most what one invocation may call and carries the rest to the next runs", async () => {
    const ids = await clusters(5);
    for (const id of ids) await dropAlarm(id);
    await makeOverdue(ids);
    // A limit that leaves two loops a run once the shards are read and written.
    const { env: e, calls } = counted(env, { CRON_SUBREQUESTS: String(CONSTANT + 2) });
    const first = await rearmOverdue(e);
    expect(first.rearmed).toEqual(ids.slice(0, 2)); // the longest overdue first
    expect(first.carried).toBeGreaterThanOrEqual(1); // a lower bound: each shard is read up to the budget
    expect(calls()).toBeLessThanOrEqual(CONSTANT + 2);
    const second = await rearmOverdue(e);
    expect(second.rearmed).toEqual(ids.slice(2, 4));
    const third = await rearmOverdue(e);
    expect(third.rearmed).toContain(ids[4]);
    for (const id of ids) await waitForSeq(id, 2);
  });

  it("a failing cluster does not hold up the others, even at the bound", async () => {
    const [broken, lost] = await clusters(2);
    await dropAlarm(lost!);
    // Damaged storage: its ensureAlarm throws.
    await runInDurableObject(stubOf(broken!), (_, state) => {
      state.storage.sql.exec("DROP TABLE kv");
    });
    await makeOverdue([broken!, lost!]);
    const one = counted(env, { CRON_SUBREQUESTS: String(CONSTANT + 1) }).env;
    const first = await rearmOverdue(one);
    expect(first.failed).toEqual([broken]);
    // Retried a lease later: the next run gets to the loop behind it.
    expect(await dueOf(broken!)).toBeGreaterThanOrEqual(Date.now() + LEASE_MS - 5_000);
    const second = await rearmOverdue(one);
    expect(second.rearmed).toEqual([lost]);
    await waitForSeq(lost!, 2);
  });

  it("drops a registry row with no cluster behind it (a deletion racing a renewal)", async () => {
    const ghost = uniqueId("ghost");
    await shardStub(ghost).renew([{ id: ghost, due: 1 }]);
    const run = await rearmOverdue(env);
    expect(run.gone).toContain(ghost);
    expect(await dueOf(ghost)).toBeNull();
  });

  it("the scale bench's test-only route drops an alarm, only under its config", async () => {
    const [id] = await clusters(1);
    const drop = async (vars: Partial<Env>) => {
      const ctx = createExecutionContext();
      const req = new Request(`https://edge.test/v1/clusters/${id}/alarm`, {
        method: "DELETE",
        headers: { authorization: `Bearer ${ADMIN}` },
      });
      const res = await worker.fetch(req, { ...env, ...vars }, ctx);
      await waitOnExecutionContext(ctx);
      return res.status;
    };
    expect(await drop({})).toBe(404);
    expect(await alarmOf(id!)).not.toBeNull();
    expect(await drop({ TEST_ALARM_DROP: "enabled" })).toBe(204);
    expect(await alarmOf(id!)).toBeNull();
  });

  it("creation and deletion keep the registry in step", async () => {
    const [id] = await clusters(1);
    expect((await api("DELETE", `/v1/clusters/${id}`)).status).toBe(204);
    expect(await dueOf(id!)).toBeNull();
  });
});

describe("the loop's lease", () => {
  /** Registry writes over `rounds` rounds of a loop at `intervalSec`, each round renewing if it must. */
  function writes(intervalSec: number, rounds: number): number {
    let held: number | null = null;
    let n = 0;
    for (let i = 0; i < rounds; i++) {
      const now = i * intervalSec * 1000;
      const lease = renewal(held, now + intervalSec * 1000, now);
      if (lease !== null) {
        held = lease;
        n++;
      }
      // A loop that is running never reads as overdue between its rounds.
      expect(held).toBeGreaterThanOrEqual(now + intervalSec * 1000 + LEASE_GRACE_MS);
    }
    return n;
  }

  it("writes to the registry for a fraction of the rounds at short intervals, each round at long ones", () => {
    expect(writes(10, 120)).toBe(20); // one round in six (once a minute) at the default interval
    expect(writes(2, 300)).toBeLessThanOrEqual(300 / 10);
    expect(writes(60, 10)).toBe(10);
  });

  it("a loop that stops shows up overdue within a lease, or its interval and the grace", () => {
    const now = 1_000_000;
    expect(renewal(null, now + 10_000, now)).toBe(now + LEASE_MS);
    expect(renewal(null, now + 60_000, now)).toBe(now + 60_000 + LEASE_GRACE_MS);
    // RENEW_BEFORE_MS left: kept; less: renewed.
    expect(renewal(now + RENEW_BEFORE_MS, now + 1_000, now)).toBeNull();
    expect(renewal(now + RENEW_BEFORE_MS - 1, now + 1_000, now)).toBe(now + LEASE_MS);
  });

  it("spreads ids over the shards", () => {
    const counts = new Array(REGISTRY_SHARDS).fill(0);
    for (let i = 0; i < 4000; i++) counts[shardOf(`pbx-${i}`)]++;
    for (const c of counts) expect(c).toBeGreaterThan((4000 / REGISTRY_SHARDS) * 0.8);
  });
});

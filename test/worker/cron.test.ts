import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { rearmAll } from "../../worker/index.js";
import { until } from "../support/until.js";
import { api, clusterConfig, stubOf, uniqueId, waitForSeq } from "./helpers.js";

const tcpProbe = { kind: "tcp", name: "pg", port: 1, timeoutMs: 200 };

describe("cron re-arm", () => {
  it("tries every cluster: one that throws is logged and counted, the others are re-armed", async () => {
    // Ids sort: the broken one comes first in the registry's list.
    const broken = `a0-${uniqueId("broken")}`;
    const lost = `z9-${uniqueId("lost")}`;
    for (const id of [broken, lost])
      expect((await api("PUT", `/v1/clusters/${id}`, { body: clusterConfig([tcpProbe]) })).status).toBe(201);
    await waitForSeq(lost, 1);
    await waitForSeq(broken, 1);
    await runInDurableObject(stubOf(lost), (_, state) => state.storage.deleteAlarm());
    // A cluster whose storage is damaged: its ensureAlarm throws.
    await runInDurableObject(stubOf(broken), (_, state) => {
      state.storage.sql.exec("DROP TABLE kv");
    });
    const result = await rearmAll(env);
    expect(result.rearmed).toContain(lost);
    expect(result.failed).toContain(broken);
    // Re-armed for "now": the loop resumes with the next round, and arms the one after.
    await waitForSeq(lost, 2);
    expect(
      await until("the next round armed", () =>
        runInDurableObject(stubOf(lost), (_, state) => state.storage.getAlarm()),
      ),
    ).toBeGreaterThan(Date.now());
  });
});

import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { api, clusterConfig, events, getVerdict, runRound, stubOf, uniqueId, webAndSipCluster } from "./helpers.js";

/**
 * Confirmation rounds through the real alarm handler: the interval is an hour, the confirmation
 * spacing 60 s (long enough that no round comes on its own while a test drives them), so where
 * the alarm is armed after each round says whether the next is a confirmation.
 */
async function cluster(extra: Record<string, unknown> = {}) {
  return webAndSipCluster("confirm", { confirmIntervalSec: 60, ...extra });
}

/** Milliseconds until the armed alarm. */
const alarmIn = async (id: string) =>
  (await runInDurableObject(stubOf(id), (_, state) => state.storage.getAlarm()))! - Date.now();

describe("confirmation rounds", () => {
  it("a bad round while up brings the next rounds early until the verdict moves, then the interval resumes", async () => {
    const { id, web, sip } = await cluster();
    // Round 1 (up, verdict unknown) asked for a confirmation: round 2 is one, and brings up.
    const second = await runRound(id);
    expect(second).toMatchObject({ state: "up", lastRound: { confirmation: true } });
    expect(await alarmIn(id)).toBeGreaterThan(3_000_000); // agrees: the hour again
    await web.set("closed");
    await sip.set("closed");
    const first = await runRound(id);
    expect(first.state).toBe("up");
    expect(first.lastRound.confirmation).toBeUndefined(); // came at the normal interval
    expect(await alarmIn(id)).toBeLessThanOrEqual(60_000);
    expect((await runRound(id)).lastRound.confirmation).toBe(true);
    expect(await alarmIn(id)).toBeLessThanOrEqual(60_000);
    const down = await runRound(id);
    expect(down).toMatchObject({ state: "down", lastRound: { class: "down", confirmation: true } });
    expect(down.reason).toMatch(
      /^down after 3 consecutive bad rounds \(fall 3\), 2 of them confirmation rounds 60 s apart: nothing answers/,
    );
    expect(await alarmIn(id)).toBeGreaterThan(3_000_000); // the verdict moved: the hour again
    const change = (await events(id)).filter((e) => e.type === "verdict.changed").at(-1);
    expect(change.data).toMatchObject({ from: "up", to: "down", confirmations: 2, confirmIntervalSec: 60 });
  });

  it("a lone bad round: one confirmation that agrees again, then the normal interval", async () => {
    const { id, sip } = await cluster();
    await runRound(id); // up
    await sip.set("ok", { script: ["closed"] }); // the next connection only is refused
    await sip.set("closed");
    expect((await runRound(id)).lastRound.class).toBe("degraded");
    expect(await alarmIn(id)).toBeLessThanOrEqual(60_000);
    await sip.set("ok");
    const back = await runRound(id);
    expect(back).toMatchObject({ state: "up", lastRound: { class: "up", confirmation: true } });
    expect(await alarmIn(id)).toBeGreaterThan(3_000_000);
  });

  it("recovery from down is confirmed quickly too", async () => {
    const { id, web, sip } = await cluster({ fall: 1, rise: 3 });
    await runRound(id); // round 2
    await web.set("closed");
    await sip.set("closed");
    expect((await runRound(id)).state).toBe("down"); // fall 1
    expect(await alarmIn(id)).toBeGreaterThan(3_000_000);
    await web.set("ok");
    await sip.set("ok");
    expect((await runRound(id)).state).toBe("down");
    expect(await alarmIn(id)).toBeLessThanOrEqual(60_000);
    expect((await runRound(id)).state).toBe("down");
    const up = await runRound(id);
    expect(up.state).toBe("up");
    expect(up.reason).toContain("3 consecutive good rounds (rise 3), 2 of them confirmation rounds 60 s apart");
  });

  it("confirmIntervalSec is bounded: at most intervalSec, at least 1 s; a 400 names the field", async () => {
    for (const [extra, field] of [
      [{ intervalSec: 10, confirmIntervalSec: 11 }, "confirmIntervalSec"],
      [{ confirmIntervalSec: 0.5 }, "confirmIntervalSec"],
    ] as const) {
      const res = await api("PUT", `/v1/clusters/${uniqueId()}`, {
        body: clusterConfig([{ kind: "tcp", name: "t", port: 1 }], extra),
      });
      expect(res.status).toBe(400);
      expect(res.json.error.field).toBe(field);
    }
    const ok = await api("PUT", `/v1/clusters/${uniqueId()}`, {
      body: clusterConfig([{ kind: "tcp", name: "t", port: 1 }], { intervalSec: 5, confirmIntervalSec: undefined }),
    });
    expect(ok.status).toBe(201);
    expect(ok.json.config.confirmIntervalSec).toBe(2);
  });

  it("the status page's gap detection does not take confirmation spacing for anything odd", async () => {
    const { id, web, sip } = await cluster();
    await web.set("closed");
    await sip.set("closed");
    for (let i = 0; i < 4; i++) await runRound(id);
    const stored = await runInDurableObject(stubOf(id), (_, state) => ({
      rounds: state.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM rounds").one().n,
      gaps: state.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM gaps").one().n,
    }));
    // Stored: the first round and the first down one (rounds are sampled: a class change at
    // once, the same class again only per sample). No gap, though rounds came 1 s apart.
    expect(stored).toEqual({ rounds: 2, gaps: 0 });
    expect((await getVerdict(id)).verdict.state).toBe("down");
  });
});

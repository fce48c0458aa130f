import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { readState } from "../../agent/state.js";
import {
  agentEvents,
  AGENT_TOKEN,
  quiet,
  role,
  servicePid,
  startAgent,
  until,
  usePairs,
  type Pair,
} from "../support/pair.js";
import { startMitm } from "../support/mitm.js";

/**
 * Faults of time and of the verdicts themselves, injected into the running pair: the agent's
 * wall clock off by ±10 minutes (libfaketime under the agent process only), and signed verdicts
 * replayed (and forged) by a man in the middle between the worker and the agent. The unit-level
 * versions are in test/agent/intake/clock-skew.test.ts and fake-worker.test.ts.
 */
const { lab, pair, cleanups } = usePairs();

const LIBFAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
const events = agentEvents;
const rows = (p: Pair, from = 0) => events(p, "decision", from).map((d) => d.row);
const setAll = async (targets: Pair["master"], mode: "ok" | "closed") => {
  for (const t of targets) await t.set(mode);
};

describe("12. the agent's clock skewed by ±10 minutes", () => {
  it.for([
    { skew: "+10m", ms: 10 * 60_000 },
    { skew: "-10m", ms: -10 * 60_000 },
  ])("$skew: the same decisions as on time, failover and failback", { timeout: 150_000 }, async ({ skew, ms }, ctx) => {
    if (!existsSync(LIBFAKETIME)) {
      // CI installs it (.ci/run): there, a missing library is a failure, not a skip.
      if (process.env.CI) throw new Error(`${LIBFAKETIME} is missing (Debian package libfaketime)`);
      ctx.skip(`${LIBFAKETIME} is missing: apt-get install libfaketime`);
    }
    // The edge and the LAN get listeners of their own, so the LAN can be failed first and then
    // the edge: the rows then come in one order only, the one asserted below.
    const p = await pair({ separate: true });
    // Only the wall clock moves: timers and performance.now() stay on the real monotonic clock.
    startAgent(p, ["run"], { FAKETIME: skew, FAKETIME_DONT_FAKE_MONOTONIC: "1", LD_PRELOAD: LIBFAKETIME });
    await until("standby", async () => (await role(p)) === "standby" && rows(p).includes("standby-steady"), p);
    // The skew is really in effect: the agent stamps its journal ~10 minutes off ours.
    const started = events(p, "agent.started")[0]!;
    expect(Math.abs(Date.parse(started.ts as string) - Date.now() - ms)).toBeLessThan(60_000);

    await setAll(p.lan, "closed");
    await until("the LAN alert", async () => rows(p).includes("standby-lan-failing"), p);
    await setAll(p.edge, "closed");
    await until("failover", async () => (await role(p)) === "active" && (await servicePid(p.dir)), p);
    // The state file's stamps are on the agent's (skewed) clock too.
    const active = await readState(join(p.dir, "state"));
    expect(active.ok && active.state.lastAction?.kind).toBe("failover");
    if (active.ok) expect(Math.abs(active.state.lastAction!.at - Date.now() - ms)).toBeLessThan(60_000);

    // The master comes back, LAN view first: the failback waits for the hold-down, on the worker's clock.
    const mark = p.output().length;
    await setAll(p.lan, "ok");
    await until("the LAN view up", async () => events(p, "lan.changed", mark).some((e) => e.to === "up"), p);
    await setAll(p.edge, "ok");
    await until(
      "failback",
      async () => (await role(p)) === "standby" && !(await servicePid(p.dir)) && rows(p).at(-1) === "standby-steady",
      p,
    );

    // What an agent on time does (boot rows vary with timing: from the first steady standby on).
    const seq = rows(p);
    expect(seq.slice(seq.indexOf("standby-steady"))).toEqual([
      "standby-steady",
      "standby-lan-failing",
      "failover",
      "active-master-down",
      "failback-hold-down",
      "failback",
      "standby-steady",
    ]);
    expect(p.output()).not.toMatch(/"event":"verdict.rejected"/);
  });
});

describe("13. verdicts replayed and forged between the worker and the agent", () => {
  it("recorded 'down' verdicts, sent again by push and as poll answers, are refused: no failover", {
    timeout: 180_000,
  }, async () => {
    const mitm = await startMitm(lab().edge.url);
    cleanups.push(() => mitm.close()); // runs after the pair's own cleanup has stopped the agent
    const p = await pair({
      separate: true,
      extra: {
        worker: {
          url: mitm.url,
          token: AGENT_TOKEN,
          publicKeys: [lab().secrets.publicJwk],
          pollIntervalMs: 1000,
          maxVerdictAgeMs: 10_000,
        },
      },
    });
    startAgent(p);
    await until("standby", async () => (await role(p)) === "standby", p);
    const http = events(p, "agent.started")[0]!.http as string;
    const rejectedTotal = async (reason: string) => {
      const text = await (await fetch(`${http}/metrics`)).text();
      return Number(new RegExp(`xivo_ha_verdicts_rejected_total\\{reason="${reason}"\\} (\\d+)`).exec(text)?.[1] ?? 0);
    };

    // A real outage, recorded as it passes: "down" pushes, then (push shut) "down" poll answers.
    await setAll(p.master, "closed");
    const downs = (channel: "push" | "poll") =>
      mitm.seen.filter((s) => s.channel === channel && s.verdict.state === "down");
    await until("failover", async () => (await role(p)) === "active" && (await servicePid(p.dir)), p);
    await until(
      "two rounds of 'down' pushes",
      async () => new Set(downs("push").map((s) => s.verdict.seq)).size >= 2,
      p,
    );
    mitm.blockPush(true);
    await until("a recorded 'down' poll answer", async () => downs("poll").length > 0, p);
    mitm.blockPush(false);
    await setAll(p.master, "ok");
    await until("failback", async () => (await role(p)) === "standby" && !(await servicePid(p.dir)), p);

    // Now the slave's LAN view fails while the edge sees the master up: one accepted "down"
    // verdict is all a failover would take, and every recorded one would pass the signature check.
    await setAll(p.lan, "closed");
    await until("the LAN alert", async () => rows(p).at(-1) === "standby-lan-failing", p);
    await until("push back", async () => mitm.pushSockets() > 0, p);
    const attack = p.output().length;
    // Wait for the agent's answer to an injection: its rejections, or a failover (the failure).
    const answered = (what: string, enough: () => boolean) =>
      until(what, async () => enough() || events(p, "failover.start", attack).length > 0, p).then(() =>
        expect(events(p, "failover.start", attack), "failed over on an injected verdict").toEqual([]),
      );
    const before = { replayed: await rejectedTotal("replayed"), forged: await rejectedTotal("forged") };

    // (a) On the push channel: every recorded "down" push again (older seqs), a poll answer
    // pushed (it carries a nonce), and a forgery (the last push's payload edited, signature kept).
    let mark = p.output().length;
    for (const s of downs("push")) mitm.injectPush(s.text);
    mitm.injectPush(JSON.stringify({ type: "verdict", envelope: JSON.parse(downs("poll")[0]!.text) }));
    const last = mitm.seen.filter((s) => s.channel === "push").at(-1)!;
    const env = JSON.parse(last.text).envelope;
    const edited = JSON.stringify({
      ...JSON.parse(env.payload),
      state: "down",
      reason: "forged",
      seq: last.verdict.seq + 1,
    });
    mitm.injectPush(JSON.stringify({ type: "verdict", envelope: { ...env, payload: edited } }));
    const n = downs("push").length + 2;
    await answered("the push rejections", () => events(p, "verdict.rejected", mark).length >= n);
    const pushed = events(p, "verdict.rejected", mark);
    expect(pushed.every((e) => e.channel === "push")).toBe(true);
    expect(pushed.slice(0, n - 2).map((e) => e.reason)).toEqual(Array(n - 2).fill("replayed"));
    for (const e of pushed.slice(0, n - 2))
      expect(e.detail).toMatch(/^seq \d+ is not after the last accepted seq \d+$/);
    expect(pushed[n - 2]).toMatchObject({ reason: "replayed", detail: "a push must not carry a nonce" });
    expect(pushed[n - 1]).toMatchObject({ reason: "forged" });

    // (b) On the poll channel: push shut again, and every poll answered with an old "down" answer.
    mark = p.output().length;
    mitm.answerPolls(downs("poll").at(-1)!.text);
    mitm.blockPush(true);
    await answered(
      "three poll rejections",
      () => events(p, "verdict.rejected", mark).filter((e) => e.channel === "poll").length >= 3,
    );
    for (const e of events(p, "verdict.rejected", mark).filter((e) => e.channel === "poll")) {
      expect(e).toMatchObject({ reason: "replayed", detail: "the poll answer does not echo the nonce sent" });
    }

    // Nothing moved: still standby, nothing started, no failover considered; and it was counted.
    await quiet(3000);
    expect(await role(p)).toBe("standby");
    expect(await servicePid(p.dir)).toBeNull();
    expect(rows(p, attack)).not.toContain("failover");
    expect(events(p, "failover.start", attack)).toEqual([]);
    expect(events(p, "verdict.accepted", attack).filter((e) => e.state !== "up")).toEqual([]);
    expect(await rejectedTotal("replayed")).toBeGreaterThanOrEqual(before.replayed + n - 1 + 3);
    expect(await rejectedTotal("forged")).toBe(before.forged + 1);
  });
});

import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { applyRound, initialTracker } from "../../protocol/hysteresis.js";
import type { RoundClass, RoundSummary } from "../../protocol/verdict.js";
import {
  CHECKPOINT_MS,
  capStreaks,
  initialMonitor,
  type MonitorRecord,
  monitorToStore,
  type ReportRecord,
  reportToStore,
  SEQ_BLOCK,
  STREAK_CAP,
} from "../../worker/cluster/records.js";
import { Meter } from "../../worker/cluster/meter.js";
import { ClusterStore } from "../../worker/cluster/store.js";
import { ClusterConfig } from "../../worker/config.js";
import { createStatusTables, recordRound, ROUND_SAMPLE_MS } from "../../worker/status/store.js";
import { stubOf, uniqueId } from "./helpers.js";

const T0 = 1_700_000_000_000;
const INTERVAL = 10_000;
const PARAMS = { fall: 3, rise: 2, graceUntil: 0 };

const summary = (at: number, c: RoundClass, rtt = 5): RoundSummary => ({
  at,
  durationMs: 12,
  class: c,
  probes: [{ name: "pg", kind: "tcp", critical: true, ok: c !== "down", detail: "", rttMs: c === "down" ? null : rtt }],
});

const monitor = (over: Partial<MonitorRecord> = {}): MonitorRecord => ({ ...initialMonitor(T0, T0), ...over });

/** A small deterministic generator: long calm stretches with bursts of bad rounds. */
function classes(n: number, seed: number): RoundClass[] {
  let x = seed;
  const next = () => (x = (x * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
  const out: RoundClass[] = [];
  while (out.length < n) {
    const r = next();
    const kind: RoundClass = r < 0.7 ? "up" : r < 0.85 ? "down" : "degraded";
    const run = kind === "up" ? 1 + Math.floor(next() * 150) : 1 + Math.floor(next() * 5);
    for (let i = 0; i < run && out.length < n; i++) out.push(kind);
  }
  return out;
}

describe("which monitor records must be written at once", () => {
  it("with streaks counted to max(fall, rise), an hour of good rounds writes once per checkpoint", () => {
    let m = monitor({ tracker: { ...initialTracker(T0), state: "up" } });
    let stored = monitorToStore(null, m)!;
    let writes = 0;
    for (let i = 1; i <= 360; i++) {
      const at = T0 + i * INTERVAL;
      const { tracker } = applyRound(m.tracker, { class: "up", reason: "ok", at }, PARAMS);
      m = { ...m, tracker: capStreaks(tracker, 3), seq: i, lastRound: summary(at, "up") };
      const w = monitorToStore(stored, m);
      if (w) [stored, writes] = [w, writes + 1];
    }
    // Three while the up streak climbs to the cap, then one per CHECKPOINT_MS.
    expect(writes).toBe(3 + (360 * INTERVAL) / CHECKPOINT_MS - 1);
  });

  it("a steady verdict writes nothing until the seq reservation or the checkpoint is used up", () => {
    let stored = monitorToStore(null, monitor())!;
    expect(stored.seq).toBe(SEQ_BLOCK); // the first write reserves a block
    let m = monitor();
    let writes = 0;
    for (let i = 1; i <= 400; i++) {
      const at = T0 + i * INTERVAL;
      m = {
        ...m,
        ...applyRound(m.tracker, { class: "up", reason: "ok", at }, PARAMS),
        seq: i,
        lastRound: summary(at, "up"),
      };
      const w = monitorToStore(stored, m);
      if (w) [stored, writes] = [w, writes + 1];
    }
    // Streaks change until the cap, then one write per checkpoint.
    expect(writes).toBeLessThanOrEqual(STREAK_CAP + Math.ceil((400 * INTERVAL) / CHECKPOINT_MS) + 1);
    expect(writes).toBeGreaterThan(0);
    // After the cap, steady rounds are not written...
    const next = { ...m, seq: m.seq + 1, lastRound: summary(m.lastRound!.at + INTERVAL, "up") };
    expect(monitorToStore(stored, next)).toBeNull();
    // ...but a bad round is, at once.
    const bad = applyRound(m.tracker, { class: "down", reason: "x", at: next.lastRound.at }, PARAMS);
    expect(monitorToStore(stored, { ...next, tracker: bad.tracker })).not.toBeNull();
    // So is the start of a confirmation run, or a round without a quorum of vantages.
    expect(monitorToStore(stored, { ...next, confirming: true })).not.toBeNull();
    expect(monitorToStore(stored, { ...next, silentRounds: 1 })).not.toBeNull();
    // And so is a seq at the reservation.
    expect(monitorToStore(stored, { ...next, seq: stored.seq })!.seq).toBe(stored.seq + SEQ_BLOCK);
  });

  it("the streak cap is at least every fall and rise a config accepts", () => {
    const base = { master: { host: "127.0.0.1" }, probes: [{ kind: "tcp", name: "pg", port: 1 }] };
    expect(ClusterConfig.safeParse({ ...base, fall: STREAK_CAP, rise: STREAK_CAP }).success).toBe(true);
    expect(ClusterConfig.safeParse({ ...base, fall: STREAK_CAP + 1 }).success).toBe(false);
    expect(ClusterConfig.safeParse({ ...base, rise: STREAK_CAP + 1 }).success).toBe(false);
  });

  it("a restart at any round resumes the same verdicts, and seq never goes back", () => {
    for (const params of [PARAMS, { fall: 1, rise: 1, graceUntil: 0 }, { fall: 5, rise: 4, graceUntil: 0 }]) {
      const list = classes(1500, params.fall * 7 + params.rise);
      // Without restarts: the reference run.
      const reference: string[] = [];
      let t = initialTracker(T0);
      for (const [i, c] of list.entries()) {
        t = applyRound(t, { class: c, reason: c, at: T0 + (i + 1) * INTERVAL }, params).tracker;
        reference.push(`${t.state}@${t.since}`);
      }
      // With the write-behind rule, and a restart (memory lost) every 37 rounds.
      let stored = monitorToStore(null, monitor({ tracker: initialTracker(T0) }))!;
      let m = stored;
      let lastSeq = -1;
      for (const [i, c] of list.entries()) {
        if (i % 37 === 36) m = stored; // restart: what storage holds
        const at = T0 + (i + 1) * INTERVAL;
        const next = applyRound(m.tracker, { class: c, reason: c, at }, params);
        // As the object does: streaks counted up to max(fall, rise) only.
        const tracker = capStreaks(next.tracker, Math.max(params.fall, params.rise));
        m = { ...m, tracker, seq: m.seq + 1, lastRound: summary(at, c) };
        expect(m.seq).toBeGreaterThan(lastSeq);
        lastSeq = m.seq;
        stored = monitorToStore(stored, m) ?? stored;
        expect(`${m.tracker.state}@${m.tracker.since}`).toBe(reference[i]);
      }
    }
  });
});

const rec = (receivedAt: number, over: Partial<ReportRecord["report"]> = {}): ReportRecord => ({
  receivedAt,
  report: {
    role: "standby",
    mode: "auto",
    at: receivedAt,
    lastAction: null,
    lan: null,
    verdictSeq: 1,
    alerts: [],
    counters: {},
    ...over,
  },
});

describe("which reports must be written at once", () => {
  it("a heartbeat waits; a change of what the report says, or the checkpoint, does not", () => {
    const stored = rec(T0);
    expect(reportToStore(null, stored)).toEqual(stored);
    expect(reportToStore(stored, rec(T0 + 15_000, { counters: { polls: 3 }, verdictSeq: 9 }))).toBeNull();
    expect(reportToStore(stored, rec(T0 + 15_000, { role: "active" }))).not.toBeNull();
    expect(reportToStore(stored, rec(T0 + 15_000, { alerts: ["disk"] }))).not.toBeNull();
    expect(reportToStore(stored, rec(T0 + CHECKPOINT_MS))).not.toBeNull();
  });
});

describe("the cluster store in a Durable Object", () => {
  it("writes an unchanged record never, a write-behind one by its rule, and a restart sees a safe state", async () => {
    await runInDurableObject(stubOf(uniqueId("wb")), async (_, state) => {
      const meter = new Meter();
      const sql = meter.sql(state.storage.sql);
      const store = new ClusterStore(sql);
      store.createTables();
      const written = () => meter.snapshot().rowsWritten["INSERT kv"] ?? 0;

      store.put("roundAt", null);
      const afterFirst = written();
      store.put("roundAt", null);
      expect(written()).toBe(afterFirst); // unchanged: no row

      store.put("monitor", monitor());
      const base = written();
      const steady = monitorToStore(null, monitor())!.tracker;
      for (let i = 1; i <= 5; i++) store.put("monitor", monitor({ tracker: steady, seq: i }));
      expect(written()).toBe(base); // same tracker, seq inside the reservation: memory only
      expect(store.get("monitor")!.seq).toBe(5); // memory holds the newest

      // A restart: a new store on the same storage. Seq resumes past every seq handed out.
      const restarted = new ClusterStore(sql);
      expect(restarted.get("monitor")!.seq).toBeGreaterThan(5);

      // A row edited behind the store's back wins over what it holds.
      state.storage.sql.exec(
        "UPDATE kv SET value = ? WHERE key = 'monitor'",
        JSON.stringify(monitor({ seq: 77, tracker: steady })),
      );
      expect(store.get("monitor")!.seq).toBe(77);
    });
  });

  it("after a restart, the agent's last report time is the latest it may have been until it reports again", async () => {
    await runInDurableObject(stubOf(uniqueId("wb")), async (_, state) => {
      const sql = state.storage.sql;
      const store = new ClusterStore(sql);
      store.createTables();
      const old = Date.now() - 10 * 60_000;
      store.put("report", rec(old));
      store.put("report", rec(old + 60_000)); // a heartbeat: memory only
      expect(store.lastReportAt()).toBe(old + 60_000);

      const restarted = new ClusterStore(sql);
      // Storage holds `old`; the agent may have reported up to CHECKPOINT_MS later.
      expect(restarted.get("report")!.receivedAt).toBe(old);
      expect(restarted.lastReportAt()).toBe(old + CHECKPOINT_MS);
      // A report since the restart is the truth again.
      restarted.put("report", rec(Date.now()));
      expect(restarted.lastReportAt()).toBeGreaterThan(old + CHECKPOINT_MS);
    });
  });
});

describe("round samples for the status page", () => {
  it("stores a round when its class changes, and otherwise once per ROUND_SAMPLE_MS", async () => {
    await runInDurableObject(stubOf(uniqueId("wb")), async (_, state) => {
      const sql = state.storage.sql;
      createStatusTables(sql);
      let previous: number | null = null;
      const classesAt: [number, RoundClass][] = [];
      for (let i = 0; i < 60; i++) classesAt.push([T0 + i * INTERVAL, i >= 40 && i < 43 ? "down" : "up"]);
      for (const [at, c] of classesAt) {
        recordRound(sql, summary(at, c), previous, 10);
        previous = at;
      }
      const rows = sql.exec<{ at: number; class: string }>("SELECT at, class FROM rounds ORDER BY at").toArray();
      // Up from 0 (sampled every 18 rounds), down at 40 (a change), up again at 43.
      expect(rows.map((r) => [(r.at - T0) / INTERVAL, r.class])).toEqual([
        [0, "up"],
        [ROUND_SAMPLE_MS / INTERVAL, "up"],
        [(2 * ROUND_SAMPLE_MS) / INTERVAL, "up"],
        [40, "down"],
        [43, "up"],
      ]);
      expect(sql.exec<{ n: number }>("SELECT count(*) AS n FROM probe_sets").one().n).toBe(1);
      expect(sql.exec<{ n: number }>("SELECT count(*) AS n FROM gaps").one().n).toBe(0);
    });
  });
});

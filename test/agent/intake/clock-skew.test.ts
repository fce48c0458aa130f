import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { VerdictSource } from "../../../agent/intake/source.js";
import { makeVerdict, ok, pushFrame, startFakeWorker, type FakeWorker } from "./fake-worker.js";

/**
 * Freshness rests on two things only: the age the worker measured on its own clock, and the
 * agent's monotonic clock since receipt. Neither wall clock enters: skew the agent's Date by
 * ±10 minutes (and the worker's the other way) and every acceptance and freshness stays identical.
 */

const CLUSTER = "skew-cluster";
const TOKEN = "agent-token-skew-0123456789abcdef0123";
const MAX_AGE = 5_000;
const TEN_MIN = 10 * 60_000;

let fake: FakeWorker;
beforeAll(async () => {
  fake = await startFakeWorker();
});
afterAll(async () => {
  await fake?.close();
});
afterEach(() => {
  vi.useRealTimers();
});

const waitFor = <T>(fn: () => T) => vi.waitFor(fn, { timeout: 15_000, interval: 20 });

/** One run with the agent's wall clock at real + skew; its monotonic clock is a manual counter. */
async function observe(skewMs: number) {
  const realNow = Date.now();
  vi.setSystemTime(realNow + skewMs);
  expect(Math.abs(Date.now() - (realNow + skewMs))).toBeLessThan(1_000);
  // The worker's clock is off the other way: its epoch stamps must not matter either.
  const workerNow = realNow - skewMs;
  const stamps = { issuedAt: workerNow, since: workerNow - 3_600_000 };
  let t = 1_000_000;
  const clock = { mono: () => t };
  const base = {
    url: fake.url,
    clusterId: CLUSTER,
    token: TOKEN,
    publicKeys: [fake.publicJwk],
    pollIntervalMs: 100,
    maxVerdictAgeMs: MAX_AGE,
    lastSeq: null,
    clock,
  };

  // Poll: ageMs 2000 accepted; then an answer 1 ms over the bound is stale.
  fake.onPoll = async (req) =>
    ok(await fake.signer.sign(makeVerdict({ clusterId: CLUSTER, seq: 3, nonce: req.nonce, ageMs: 2_000, ...stamps })));
  fake.onConnect = () => {};
  const poll = new VerdictSource({ ...base, push: false });
  poll.start();
  await waitFor(() => expect(poll.latest()).not.toBeNull());
  fake.onPoll = async (req) =>
    ok(
      await fake.signer.sign(
        makeVerdict({ clusterId: CLUSTER, seq: 4, nonce: req.nonce, ageMs: MAX_AGE + 1, ...stamps }),
      ),
    );
  await waitFor(() => expect(poll.counters().rejected.stale).toBeGreaterThanOrEqual(1));
  await poll.stop();

  // Push: ageMs 1500 accepted; a stale one rejected.
  fake.onPoll = () => ({ status: 503, body: "{}" });
  fake.onConnect = async (ws) => {
    ws.send(await pushFrame(fake.signer, makeVerdict({ clusterId: CLUSTER, seq: 7, ageMs: 1_500, ...stamps })));
    ws.send(await pushFrame(fake.signer, makeVerdict({ clusterId: CLUSTER, seq: 8, ageMs: MAX_AGE + 1, ...stamps })));
  };
  const push = new VerdictSource({ ...base, push: true });
  push.start();
  await waitFor(() => expect(push.counters().rejected.stale).toBe(1));
  await push.stop();

  const p = poll.latest()!;
  const q = push.latest()!;
  const at = (src: VerdictSource, dt: number) => src.freshness(t + dt);
  const result = {
    poll: {
      channel: p.channel,
      seq: p.verdict.seq,
      ageAtReceiptMs: p.ageAtReceiptMs,
      rejected: poll.counters().rejected,
    },
    pollFreshness: [0, 2_999, 3_000, 3_001, 60_000].map((dt) => at(poll, dt)),
    push: {
      channel: q.channel,
      seq: q.verdict.seq,
      ageAtReceiptMs: q.ageAtReceiptMs,
      rejected: push.counters().rejected,
    },
    pushFreshness: [0, 3_500, 3_501].map((dt) => at(push, dt)),
  };
  // And with the manual clock moved on, freshness() without an argument agrees.
  t += 3_001;
  return { ...result, pollNow: poll.freshness(), pushNow: push.freshness() };
}

describe("clock skew", () => {
  it("±10 minutes on either wall clock changes no acceptance and no freshness", async () => {
    const straight = await observe(0);
    expect(straight).toEqual({
      poll: { channel: "poll", seq: 3, ageAtReceiptMs: 2_000, rejected: { stale: straight.poll.rejected.stale } },
      pollFreshness: ["fresh", "fresh", "fresh", "stale", "stale"],
      push: { channel: "push", seq: 7, ageAtReceiptMs: 1_500, rejected: { stale: 1 } },
      pushFreshness: ["fresh", "fresh", "stale"],
      pollNow: "stale",
      pushNow: "fresh",
    });
    const normalise = (r: typeof straight) => ({ ...r, poll: { ...r.poll, rejected: Object.keys(r.poll.rejected) } });
    for (const skew of [TEN_MIN, -TEN_MIN]) {
      expect(normalise(await observe(skew))).toEqual(normalise(straight));
    }
  });
});

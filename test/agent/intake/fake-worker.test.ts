import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { generateSigningKey, importSigner, type Signer } from "../../../protocol/signing.js";
import { pollOnce } from "../../../agent/intake/one-shot.js";
import { VerdictSource, type AcceptedVerdict, type VerdictSourceOptions } from "../../../agent/intake/source.js";
import { makeVerdict, ok, pushFrame, startFakeWorker, type FakeWorker, type Reply } from "./fake-worker.js";

/**
 * The verdict client against a fake worker on loopback that the test steers: every kind of bad
 * answer, on both channels, is rejected and counted, leaves latest() alone and throws nothing.
 */

const TOKEN = "agent-token-SECRET-0123456789abcdef-fake";
const CLUSTER = "fake-cluster";
const MAX_AGE = 5_000;

let fake: FakeWorker;
let forger: Signer;
const sources: VerdictSource[] = [];
const allLogs: { event: string; fields: Record<string, unknown> }[] = [];

beforeAll(async () => {
  fake = await startFakeWorker();
  forger = await importSigner((await generateSigningKey()).private);
});
afterAll(async () => {
  await fake?.close();
});
beforeEach(() => {
  fake.onPoll = () => ({ status: 503, body: '{"error":{"code":"no_verdict","message":"not yet"}}' });
  fake.onUpgrade = () => null;
  fake.onConnect = () => {};
});
afterEach(async () => {
  await Promise.all(sources.splice(0).map((s) => s.stop()));
  fake.dropAll();
});

function source(opts: Partial<VerdictSourceOptions> = {}) {
  const logs: { event: string; fields: Record<string, unknown> }[] = [];
  const rejected: string[] = [];
  const verdicts: AcceptedVerdict[] = [];
  const src = new VerdictSource({
    url: fake.url,
    clusterId: CLUSTER,
    token: TOKEN,
    publicKeys: [fake.publicJwk],
    pollIntervalMs: 150,
    maxVerdictAgeMs: MAX_AGE,
    lastSeq: null,
    push: false,
    reconnect: { initialMs: 50, maxMs: 300 },
    log: (event, fields) => {
      logs.push({ event, fields });
      allLogs.push({ event, fields });
    },
    ...opts,
  });
  src.on("rejected", (r) => rejected.push(r.reason));
  src.on("verdict", (v) => verdicts.push(v));
  sources.push(src);
  return { src, logs, rejected, verdicts };
}

const totalRejected = (src: VerdictSource) => Object.values(src.counters().rejected).reduce((a, b) => a + b, 0);
const waitFor = <T>(fn: () => T, timeout = 15_000) => vi.waitFor(fn, { timeout, interval: 20 });

/** A poll handler signing an authentic answer that echoes the nonce. */
const goodPoll =
  (seq: number, signer: () => Signer = () => fake.signer) =>
  async (req: { nonce: string | null }) =>
    ok(await signer().sign(makeVerdict({ clusterId: CLUSTER, seq, nonce: req.nonce })));

describe("poll channel", () => {
  it("accepts an authentic answer echoing its nonce, with the token in the header only", async () => {
    fake.onPoll = goodPoll(7);
    const { src, verdicts } = source();
    src.start();
    await waitFor(() => expect(src.latest()).not.toBeNull());
    const got = src.latest()!;
    expect(got).toMatchObject({ channel: "poll", verdict: { seq: 7, clusterId: CLUSTER } });
    expect(got.verdict.nonce).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(got.ageAtReceiptMs).toBeGreaterThanOrEqual(100); // worker ageMs + the round trip
    expect(src.freshness()).toBe("fresh");
    expect(src.seq()).toBe(7);
    expect(verdicts[0]).toBe(got);
    const seen = fake.polls.at(-1)!;
    expect(seen.authorization).toBe(`Bearer ${TOKEN}`);
    expect(seen.clusterId).toBe(CLUSTER);
    // A fresh nonce each time.
    await waitFor(() => expect(fake.polls.length).toBeGreaterThanOrEqual(3));
    const nonces = fake.polls.map((p) => p.nonce);
    expect(new Set(nonces).size).toBe(nonces.length);
  });

  // Each bad answer comes after a good one: it must change nothing but counters.
  const bad: [
    string,
    "forged" | "replayed" | "stale" | "malformed" | "wrong-cluster",
    (nonce: string | null, first: string) => Promise<Reply>,
  ][] = [
    [
      "signed by another key",
      "forged",
      async (nonce) => ok(await forger.sign(makeVerdict({ clusterId: CLUSTER, seq: 9, nonce }))),
    ],
    [
      "echoing an old nonce",
      "replayed",
      async (_nonce, first) => ok(await fake.signer.sign(makeVerdict({ clusterId: CLUSTER, seq: 9, nonce: first }))),
    ],
    [
      "without a nonce (a push replayed as a poll answer)",
      "replayed",
      async () => ok(await fake.signer.sign(makeVerdict({ clusterId: CLUSTER, seq: 9 }))),
    ],
    [
      "too old (worker ageMs)",
      "stale",
      async (nonce) =>
        ok(await fake.signer.sign(makeVerdict({ clusterId: CLUSTER, seq: 9, nonce, ageMs: MAX_AGE + 1 }))),
    ],
    [
      "before any round (ageMs null)",
      "stale",
      async (nonce) => ok(await fake.signer.sign(makeVerdict({ clusterId: CLUSTER, seq: 9, nonce, ageMs: null }))),
    ],
    ["not JSON", "malformed", async () => ({ status: 200, body: "{ this is not json" })],
    ["JSON but no envelope", "malformed", async () => ok({ verdict: "up" })],
    [
      "a signed payload that is not a verdict",
      "malformed",
      async (nonce) => ok(await fake.signer.sign({ v: 1, clusterId: CLUSTER, nonce })),
    ],
    [
      "for another cluster",
      "wrong-cluster",
      async (nonce) => ok(await fake.signer.sign(makeVerdict({ clusterId: "other", seq: 9, nonce }))),
    ],
  ];
  it.each(bad)("rejects an answer %s as %s", async (_name, reason, answer) => {
    fake.onPoll = goodPoll(5);
    const { src, rejected } = source();
    src.start();
    await waitFor(() => expect(src.latest()).not.toBeNull());
    const before = src.latest();
    const first = fake.polls.at(-1)!.nonce!;
    fake.onPoll = (req) => answer(req.nonce, first);
    await waitFor(() => expect(src.counters().rejected[reason] ?? 0).toBeGreaterThanOrEqual(2));
    expect(rejected.every((r) => r === reason)).toBe(true);
    expect(src.latest()).toBe(before);
    expect(src.seq()).toBe(5);
    expect(src.counters().accepted.poll).toBe(1);
  });

  const errors: [string, Reply][] = [
    ["401 (bad token)", { status: 401, body: '{"error":{"code":"unauthorized","message":"agent token required"}}' }],
    [
      "404 (unknown cluster)",
      { status: 404, body: '{"error":{"code":"unknown_cluster","message":"no such cluster"}}' },
    ],
    ["503", { status: 503, body: '{"error":{"code":"no_verdict","message":"not yet"}}' }],
    ["500 without a JSON body", { status: 500, body: "oops" }],
    ["no answer within the timeout", { status: 200, body: "{}", delayMs: 2_000 }],
  ];
  it.each(errors)("counts and logs %s as a poll error", async (_name, reply) => {
    fake.onPoll = goodPoll(5);
    const { src, logs } = source();
    src.start();
    await waitFor(() => expect(src.latest()).not.toBeNull());
    const before = src.latest();
    fake.onPoll = () => reply;
    await waitFor(() => expect(src.counters().pollErrors).toBeGreaterThanOrEqual(2));
    expect(src.latest()).toBe(before);
    expect(totalRejected(src)).toBe(0);
    const line = logs.find((l) => l.event === "poll.http-error" || l.event === "poll.error")!;
    if (reply.status === 401) {
      expect(line.fields).toMatchObject({ status: 401, code: "unauthorized", hint: expect.stringContaining("token") });
    }
  });

  it("never lowers lastSeq, but may raise it and persists the rise", async () => {
    const persisted: number[] = [];
    fake.onPoll = goodPoll(3);
    const { src } = source({ lastSeq: 50, onSeq: (s) => void persisted.push(s) });
    src.start();
    await waitFor(() => expect(src.latest()?.verdict.seq).toBe(3)); // authentic and fresh: accepted
    expect(src.seq()).toBe(50);
    fake.onPoll = goodPoll(60);
    await waitFor(() => expect(src.seq()).toBe(60));
    expect(persisted).toEqual([60]);
  });

  it("keeps latest() over an answer from an older round, but follows a worker whose seq restarted", async () => {
    // The same round answered again, older by the worker's measure: counted, not logged (routine while polling).
    fake.onPoll = async (req) =>
      ok(await fake.signer.sign(makeVerdict({ clusterId: CLUSTER, seq: 20, nonce: req.nonce, ageMs: 0 })));
    const { src, logs } = source();
    src.start();
    await waitFor(() => expect(src.latest()?.verdict.seq).toBe(20));
    const before = src.latest();
    fake.onPoll = async (req) =>
      ok(await fake.signer.sign(makeVerdict({ clusterId: CLUSTER, seq: 20, nonce: req.nonce, ageMs: 4_000 })));
    await waitFor(() => expect(src.counters().ignored.older).toBeGreaterThanOrEqual(2));
    expect(logs.filter((l) => l.event === "verdict.older")).toEqual([]);
    const sameRound = src.counters().ignored.older;
    // Lower seq and an older round (by the worker-measured age): nothing new.
    fake.onPoll = async (req) =>
      ok(await fake.signer.sign(makeVerdict({ clusterId: CLUSTER, seq: 19, nonce: req.nonce, ageMs: 4_000 })));
    await waitFor(() => expect(src.counters().ignored.older).toBeGreaterThanOrEqual(sameRound + 2));
    expect(src.latest()).toBe(before);
    expect(logs.filter((l) => l.event === "verdict.older").length).toBeGreaterThanOrEqual(2);
    // Lower seq but a younger round, nonce-fresh: the worker lost its storage and counts again.
    fake.onPoll = async (req) =>
      ok(await fake.signer.sign(makeVerdict({ clusterId: CLUSTER, seq: 1, nonce: req.nonce, ageMs: 0 })));
    await waitFor(() => expect(src.latest()?.verdict.seq).toBe(1));
    expect(src.seq()).toBe(20);
  });

  it("the one-shot pollOnce judges like the source and never throws", async () => {
    const cfg = (token: string) => ({
      clusterId: CLUSTER,
      worker: { url: fake.url, token, publicKeys: [fake.publicJwk], pollIntervalMs: 1000, maxVerdictAgeMs: MAX_AGE },
    });
    fake.onPoll = goodPoll(4);
    expect(await pollOnce(cfg(TOKEN))).toMatchObject({ ok: true, accepted: { channel: "poll", verdict: { seq: 4 } } });
    fake.onPoll = async (req) => ok(await forger.sign(makeVerdict({ clusterId: CLUSTER, seq: 4, nonce: req.nonce })));
    expect(await pollOnce(cfg(TOKEN))).toMatchObject({ ok: false, reason: "forged" });
    fake.onPoll = () => ({ status: 401, body: '{"error":{"code":"unauthorized","message":"agent token required"}}' });
    expect(await pollOnce(cfg("wrong-token-0123456789abcdef0123456789"))).toMatchObject({
      ok: false,
      reason: "http-error",
      detail: expect.stringContaining("401"),
    });
    const closed = { ...cfg(TOKEN), worker: { ...cfg(TOKEN).worker, url: "http://127.0.0.1:9" } };
    expect(await pollOnce(closed)).toMatchObject({ ok: false, reason: "unreachable" });
  });
});

describe("push channel", () => {
  const frame = (fields: Partial<Parameters<typeof makeVerdict>[0]> & { seq: number }, signer: Signer = fake.signer) =>
    pushFrame(signer, makeVerdict({ clusterId: CLUSTER, ...fields }));

  it("accepts pushes with a rising seq, persists each rise, and says when it is connected", async () => {
    const persisted: number[] = [];
    const pushEvents: boolean[] = [];
    fake.onConnect = async (ws) => ws.send(await frame({ seq: 10 }));
    const { src, verdicts } = source({ push: true, onSeq: (s) => void persisted.push(s) });
    src.on("push", (p) => pushEvents.push(p.connected));
    src.start();
    await waitFor(() => expect(src.latest()?.verdict.seq).toBe(10));
    fake.send(await frame({ seq: 11 }));
    fake.send(await frame({ seq: 13 }));
    await waitFor(() => expect(src.latest()?.verdict.seq).toBe(13));
    expect(verdicts.filter((v) => v.channel === "push").map((v) => v.verdict.seq)).toEqual([10, 11, 13]);
    expect(persisted).toEqual([10, 11, 13]);
    expect(src.counters()).toMatchObject({ pushConnected: true, accepted: { push: 3 } });
    expect(pushEvents).toEqual([true]);
    expect(src.freshness()).toBe("fresh");
  });

  it("rejects every bad frame, counts it, and keeps latest()", async () => {
    fake.onConnect = async (ws) => ws.send(await frame({ seq: 10 }));
    const { src, rejected } = source({ push: true, lastSeq: 8 });
    src.start();
    await waitFor(() => expect(src.latest()?.verdict.seq).toBe(10));
    const before = src.latest();
    const frames: [string, string | Buffer][] = [
      ["forged", await frame({ seq: 11 }, forger)],
      ["replayed", await frame({ seq: 9 })], // seq below lastSeq
      ["replayed", await frame({ seq: 2 })],
      ["replayed", await frame({ seq: 12, nonce: "a-poll-answer-nonce" })], // a poll answer replayed as a push
      ["stale", await frame({ seq: 14, ageMs: MAX_AGE + 1 })],
      ["malformed", "{ not json"],
      ["malformed", JSON.stringify({ type: "verdict", envelope: { kid: "x" } })],
      ["malformed", JSON.stringify({ type: "hello" })],
      ["malformed", Buffer.from([1, 2, 3])],
      ["wrong-cluster", await pushFrame(fake.signer, makeVerdict({ clusterId: "other", seq: 15 }))],
    ];
    for (const [, data] of frames) fake.send(data);
    await waitFor(() => expect(totalRejected(src)).toBe(frames.length));
    expect(rejected).toEqual(frames.map(([r]) => r));
    expect(src.counters().rejected).toEqual({ forged: 1, replayed: 3, stale: 1, malformed: 4, "wrong-cluster": 1 });
    expect(src.latest()).toBe(before);
    expect(src.seq()).toBe(10);

    // A repeat of the last seq (what the worker sends at reconnect when no round ran) is not news, not an attack.
    fake.send(await frame({ seq: 10 }));
    await waitFor(() => expect(src.counters().ignored.duplicate).toBe(1));
    // The worker's own error message is counted apart.
    fake.send(JSON.stringify({ type: "error", code: "signing_unavailable", message: "no key" }));
    await waitFor(() => expect(src.counters().pushErrors).toBe(1));
    expect(totalRejected(src)).toBe(frames.length);
    expect(src.latest()).toBe(before);

    // Nothing is wedged: the next real verdict goes through.
    fake.send(await frame({ seq: 11 }));
    await waitFor(() => expect(src.latest()?.verdict.seq).toBe(11));
  });

  it("a refused upgrade (401) is logged as a config error, retried slowly, and polling covers meanwhile", async () => {
    fake.onUpgrade = () => ({
      status: 401,
      body: '{"error":{"code":"unauthorized","message":"agent token required"}}',
    });
    fake.onPoll = goodPoll(30);
    const { src, logs } = source({ push: true, reconnect: { initialMs: 50, maxMs: 400 } });
    src.start();
    await waitFor(() => expect(src.counters().pushErrors).toBeGreaterThanOrEqual(2));
    const refused = logs.find((l) => l.event === "push.refused")!;
    expect(refused.fields).toMatchObject({ status: 401, code: "unauthorized", hint: expect.stringContaining("token") });
    expect(src.counters()).toMatchObject({ pushConnected: false });
    expect(src.counters().reconnects).toBeGreaterThanOrEqual(1);
    expect(src.latest()).toMatchObject({ channel: "poll", verdict: { seq: 30 } });
    expect(totalRejected(src)).toBe(0);
    // Slow: at the cap (200..400 ms here), never the 50 ms first step.
    const retries = logs.filter((l) => l.event === "push.retry").map((l) => l.fields.inMs as number);
    expect(Math.min(...retries)).toBeGreaterThanOrEqual(200);
  });

  it("reconnects after the socket is dropped, with events both ways", async () => {
    let seq = 40;
    fake.onConnect = async (ws) => ws.send(await frame({ seq: ++seq }));
    const pushEvents: boolean[] = [];
    const { src } = source({ push: true });
    src.on("push", (p) => pushEvents.push(p.connected));
    src.start();
    await waitFor(() => expect(src.latest()?.verdict.seq).toBe(41));
    fake.dropAll();
    await waitFor(() => expect(src.latest()?.verdict.seq).toBe(42));
    expect(src.counters().reconnects).toBeGreaterThanOrEqual(1);
    expect(pushEvents.slice(0, 3)).toEqual([true, false, true]);
    expect(src.counters().pushConnected).toBe(true);
  });

  it("drops a socket that stays silent for maxVerdictAgeMs and reconnects", async () => {
    const upgrades = fake.upgrades;
    const { src, logs } = source({ push: true, maxVerdictAgeMs: 600, pollIntervalMs: 200 });
    src.start();
    await waitFor(() => expect(fake.upgrades - upgrades).toBeGreaterThanOrEqual(2));
    expect(logs.some((l) => l.event === "push.drop")).toBe(true);
    expect(src.counters().reconnects).toBeGreaterThanOrEqual(1);
  });

  it("does not poll while push is healthy, and polls when it is not", async () => {
    fake.onPoll = goodPoll(1);
    let seq = 100;
    const { src } = source({ push: true, pollIntervalMs: 400 });
    src.start();
    const pusher = setInterval(async () => fake.send(await frame({ seq: ++seq })), 100);
    try {
      await waitFor(() => expect(src.counters().accepted.push).toBeGreaterThanOrEqual(3));
      const pollsBefore = fake.polls.length;
      await new Promise((r) => setTimeout(r, 2_000));
      // Five intervals went by; a healthy push leaves at most a poll or two (scheduling slack).
      expect(fake.polls.length - pollsBefore).toBeLessThanOrEqual(2);
    } finally {
      clearInterval(pusher);
    }
    // Push goes quiet (still connected): polling takes over.
    const pollsBefore = fake.polls.length;
    await waitFor(() => expect(fake.polls.length - pollsBefore).toBeGreaterThanOrEqual(2));
  });

  it("stop() closes the socket and every timer", async () => {
    fake.onPoll = goodPoll(1);
    fake.onConnect = async (ws) => ws.send(await frame({ seq: 1 }));
    const { src } = source({ push: true });
    src.start();
    await waitFor(() => expect(fake.sockets.size).toBe(1));
    await src.stop();
    await waitFor(() => expect(fake.sockets.size).toBe(0));
    const polls = fake.polls.length;
    const upgrades = fake.upgrades;
    await new Promise((r) => setTimeout(r, 800));
    expect(fake.polls.length).toBe(polls);
    expect(fake.upgrades).toBe(upgrades);
    expect(src.counters().pushConnected).toBe(false);
  });
});

it("never logs the token", () => {
  expect(allLogs.length).toBeGreaterThan(50);
  expect(JSON.stringify(allLogs)).not.toContain(TOKEN);
});

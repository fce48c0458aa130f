import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { VerdictSource, type VerdictSourceOptions } from "../../../agent/intake/source.js";
import type { Verdict } from "../../../protocol/verdict.js";
import { makeVerdict, ok, pushFrame, startFakeWorker, type FakeWorker } from "./fake-worker.js";

/**
 * A cluster deleted and created again restarts its seq at 0 under a later `incarnation`. The
 * agent, over real sockets against a worker stand-in: follows it once a poll (fresh by its
 * nonce) confirms it, refuses an older one, never lets a push alone lower its replay floor, and
 * keeps working with verdicts that carry no incarnation.
 */
const CLUSTER = "recreated";
const OLD = 1_700_000_000_000;
const NEW = OLD + 86_400_000;
let fake: FakeWorker;
const sources: VerdictSource[] = [];

beforeAll(async () => (fake = await startFakeWorker()));
afterAll(() => fake?.close());
beforeEach(() => {
  fake.onPoll = () => ({ status: 503, body: '{"error":{"code":"no_verdict","message":"not yet"}}' });
  fake.onConnect = () => {};
});
afterEach(async () => {
  await Promise.all(sources.splice(0).map((s) => s.stop()));
  fake.dropAll();
});

function source(opts: Partial<VerdictSourceOptions>) {
  const persisted: [number, number | null][] = [];
  const rejected: string[] = [];
  const src = new VerdictSource({
    url: fake.url,
    clusterId: CLUSTER,
    token: "t0ken-incarnation-test",
    publicKeys: [fake.publicJwk],
    pollIntervalMs: 150,
    maxVerdictAgeMs: 5_000,
    lastSeq: null,
    push: true,
    reconnect: { initialMs: 50, maxMs: 300 },
    onSeq: (seq, inc) => void persisted.push([seq, inc]),
    ...opts,
  });
  src.on("rejected", (r) => rejected.push(r.reason));
  sources.push(src);
  return { src, persisted, rejected };
}

const v = (fields: Partial<Verdict> & { seq: number }) => makeVerdict({ clusterId: CLUSTER, ...fields });
const pollAnswer = (fields: Partial<Verdict> & { seq: number }) => async (req: { nonce: string | null }) =>
  ok(await fake.signer.sign(v({ ...fields, nonce: req.nonce })));
const waitFor = <T>(fn: () => T) => vi.waitFor(fn, { timeout: 10_000, interval: 20 });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("cluster incarnation", () => {
  it("a recreated cluster (seq back at 0): a poll confirms the new incarnation, then pushes are accepted again", async () => {
    fake.onPoll = pollAnswer({ seq: 1, incarnation: NEW });
    const { src, persisted } = source({ lastSeq: 40, incarnation: OLD });
    src.start();
    await waitFor(() => expect(src.counters().pushConnected).toBe(true));
    await waitFor(() => expect(src.seq()).toBe(1));
    fake.send(await pushFrame(fake.signer, v({ seq: 2, incarnation: NEW })));
    await waitFor(() => expect(src.counters().accepted.push).toBe(1));
    expect(src.latest()?.verdict).toMatchObject({ seq: 2, incarnation: NEW });
    expect(persisted).toContainEqual([2, NEW]);
  });

  it("an agent that never saw an incarnation takes one from a poll answer, even with a lower seq", async () => {
    fake.onPoll = pollAnswer({ seq: 3, incarnation: NEW });
    const { src, persisted } = source({ lastSeq: 40, incarnation: null, push: false });
    src.start();
    await waitFor(() => expect(persisted).toContainEqual([3, NEW]));
  });

  it("a push alone never moves the agent to another incarnation, whatever its seq", async () => {
    const { src, rejected } = source({ lastSeq: 40, incarnation: OLD });
    src.start();
    await waitFor(() => expect(src.counters().pushConnected).toBe(true));
    fake.send(await pushFrame(fake.signer, v({ seq: 1, incarnation: NEW })));
    fake.send(await pushFrame(fake.signer, v({ seq: 50, incarnation: NEW })));
    await waitFor(() => expect(rejected).toEqual(["replayed", "replayed"]));
    expect(src.seq()).toBe(40);
    expect(src.latest()).toBeNull();
  });

  it("an older incarnation is refused on both channels", async () => {
    fake.onPoll = pollAnswer({ seq: 99, incarnation: OLD });
    const { src, rejected } = source({ lastSeq: 5, incarnation: NEW });
    src.start();
    await waitFor(() => expect(src.counters().pushConnected).toBe(true));
    fake.send(await pushFrame(fake.signer, v({ seq: 100, incarnation: OLD })));
    await waitFor(() => expect(rejected.length).toBeGreaterThanOrEqual(3));
    await sleep(300);
    expect(new Set(rejected)).toEqual(new Set(["replayed"]));
    expect(src.latest()).toBeNull();
    expect(src.seq()).toBe(5);
  });

  it("verdicts without an incarnation (an older worker) are judged on seq as before", async () => {
    const { src, rejected } = source({ lastSeq: 3, incarnation: OLD });
    src.start();
    await waitFor(() => expect(src.counters().pushConnected).toBe(true));
    fake.send(await pushFrame(fake.signer, v({ seq: 2 })));
    fake.send(await pushFrame(fake.signer, v({ seq: 4 })));
    await waitFor(() => expect(src.counters().accepted.push).toBe(1));
    expect(rejected).toEqual(["replayed"]);
    expect(src.seq()).toBe(4);
  });
});

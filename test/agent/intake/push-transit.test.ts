import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { VerdictSource } from "../../../agent/intake/source.js";
import { makeVerdict, ok, pushFrame, startFakeWorker, type FakeWorker } from "./fake-worker.js";

/**
 * A push frame signed by the worker but delivered late — what a stream held back in transit
 * delivers — carries a small signed `ageMs`: its age must count the transit, bounded by the
 * worker's clock as the last poll answer (fresh by its nonce) showed it.
 */
const CLUSTER = "transit";
const MAX_AGE = 5_000;
let fake: FakeWorker;
let src: VerdictSource | null = null;

beforeAll(async () => (fake = await startFakeWorker()));
afterAll(() => fake?.close());
afterEach(async () => {
  await src?.stop();
  fake.dropAll();
});

const waitFor = <T>(fn: () => T) => vi.waitFor(fn, { timeout: 10_000, interval: 20 });

describe("a pushed verdict's age", () => {
  it("counts the time the frame spent in transit: one held back past maxVerdictAgeMs is stale, a prompt one is fresh", async () => {
    fake.onPoll = async (req) =>
      ok(await fake.signer.sign(makeVerdict({ clusterId: CLUSTER, seq: 1, nonce: req.nonce })));
    const rejected: { reason: string; detail: string }[] = [];
    src = new VerdictSource({
      url: fake.url,
      clusterId: CLUSTER,
      token: "t0ken-transit-test",
      publicKeys: [fake.publicJwk],
      pollIntervalMs: 150,
      maxVerdictAgeMs: MAX_AGE,
      lastSeq: null,
      push: true,
      reconnect: { initialMs: 50, maxMs: 300 },
    });
    src.on("rejected", (r) => rejected.push(r));
    src.start();
    await waitFor(() => expect(src!.counters().pushConnected && src!.counters().accepted.poll > 0).toBe(true));

    // Signed now, with a round 100 ms old; delivered 5.5 s later.
    const held = await pushFrame(
      fake.signer,
      makeVerdict({ clusterId: CLUSTER, seq: 5, issuedAt: Date.now(), ageMs: 100 }),
    );
    await new Promise((r) => setTimeout(r, MAX_AGE + 500));
    fake.send(held);
    await waitFor(() => expect(rejected.map((r) => r.reason)).toContain("stale"));
    expect(rejected.find((r) => r.reason === "stale")!.detail).toMatch(/transit included/);
    expect(src.latest()?.verdict.seq).not.toBe(5);

    const accepted: { seq: number; ageAtReceiptMs: number }[] = [];
    src.on(
      "verdict",
      (a) => a.channel === "push" && accepted.push({ seq: a.verdict.seq, ageAtReceiptMs: a.ageAtReceiptMs }),
    );
    fake.send(
      await pushFrame(fake.signer, makeVerdict({ clusterId: CLUSTER, seq: 6, issuedAt: Date.now(), ageMs: 100 })),
    );
    await waitFor(() => expect(accepted.map((a) => a.seq)).toEqual([6]));
    expect(accepted[0]!.ageAtReceiptMs).toBeLessThan(1_000);
    expect(rejected.filter((r) => r.reason === "stale")).toHaveLength(1);
  }, 30_000);
});

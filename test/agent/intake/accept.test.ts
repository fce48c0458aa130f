import { beforeAll, describe, expect, it } from "vitest";
import { acceptVerdict, type IntakeContext } from "../../../agent/intake/accept.js";
import { isFresh } from "../../../agent/intake/age.js";
import { generateSigningKey, importSigner, type PublicJwk, type Signer } from "../../../protocol/signing.js";
import type { Verdict } from "../../../protocol/verdict.js";

let signer: Signer;
let other: Signer;
let trusted: PublicJwk[];

beforeAll(async () => {
  const key = await generateSigningKey();
  signer = await importSigner(key.private);
  other = await importSigner((await generateSigningKey()).private);
  trusted = [key.public];
});

const NONCE = "poll-nonce-0123456789";

function verdict(over: Partial<Verdict> = {}): Verdict {
  return {
    v: 1,
    clusterId: "acme",
    state: "down",
    since: 1_700_000_000_000,
    reason: "3 failing rounds",
    seq: 42,
    issuedAt: 1_700_000_005_000,
    ageMs: 1_000,
    lastRound: null,
    nonce: NONCE,
    maintenance: null,
    ...over,
  };
}

function ctx(over: Partial<IntakeContext> = {}): IntakeContext {
  return {
    publicKeys: trusted,
    clusterId: "acme",
    maxVerdictAgeMs: 30_000,
    channel: { kind: "poll", nonce: NONCE },
    ...over,
  };
}

describe("acceptVerdict", () => {
  it("accepts an authentic, fresh poll answer that echoes the nonce", async () => {
    const r = await acceptVerdict(await signer.sign(verdict()), ctx());
    expect(r).toMatchObject({ ok: true, kid: signer.kid, ageMs: 1_000, verdict: { state: "down", seq: 42 } });
  });

  it("accepts a push whose seq is newer than the last accepted", async () => {
    const r = await acceptVerdict(
      await signer.sign(verdict({ nonce: null, seq: 43 })),
      ctx({ channel: { kind: "push", lastSeq: 42 } }),
    );
    expect(r.ok).toBe(true);
  });

  it("accepts the first push when no seq was accepted yet", async () => {
    const r = await acceptVerdict(
      await signer.sign(verdict({ nonce: null, seq: 0 })),
      ctx({ channel: { kind: "push", lastSeq: null } }),
    );
    expect(r.ok).toBe(true);
  });

  it("rejects a verdict signed by an untrusted key as forged", async () => {
    const r = await acceptVerdict(await other.sign(verdict()), ctx());
    expect(r).toMatchObject({ ok: false, reason: "forged" });
  });

  it("rejects a verdict signed by another key under the trusted key id as forged", async () => {
    const env = await other.sign(verdict());
    const r = await acceptVerdict({ ...env, kid: signer.kid }, ctx());
    expect(r).toMatchObject({ ok: false, reason: "forged", detail: "bad signature" });
  });

  it("rejects a tampered payload as forged", async () => {
    const env = await signer.sign(verdict({ state: "up" }));
    const tampered = { ...env, payload: env.payload.replace('"state":"up"', '"state":"down"') };
    expect(tampered.payload).not.toBe(env.payload);
    const r = await acceptVerdict(tampered, ctx());
    expect(r).toMatchObject({ ok: false, reason: "forged" });
  });

  it("rejects a poll answer carrying another nonce as replayed", async () => {
    const r = await acceptVerdict(await signer.sign(verdict({ nonce: "an-older-poll-nonce" })), ctx());
    expect(r).toMatchObject({ ok: false, reason: "replayed" });
  });

  it("rejects a push answer (no nonce) offered as a poll answer", async () => {
    const r = await acceptVerdict(await signer.sign(verdict({ nonce: null })), ctx());
    expect(r).toMatchObject({ ok: false, reason: "replayed" });
  });

  it("rejects a push whose seq is not newer (same or older) as replayed", async () => {
    for (const seq of [42, 41, 0]) {
      const r = await acceptVerdict(
        await signer.sign(verdict({ nonce: null, seq })),
        ctx({ channel: { kind: "push", lastSeq: 42 } }),
      );
      expect(r).toMatchObject({ ok: false, reason: "replayed" });
    }
  });

  it("rejects a poll answer replayed as a push", async () => {
    const r = await acceptVerdict(
      await signer.sign(verdict({ seq: 99 })),
      ctx({ channel: { kind: "push", lastSeq: 42 } }),
    );
    expect(r).toMatchObject({ ok: false, reason: "replayed" });
  });

  it("rejects a verdict older than maxVerdictAgeMs as stale", async () => {
    const r = await acceptVerdict(await signer.sign(verdict({ ageMs: 30_001 })), ctx());
    expect(r).toMatchObject({ ok: false, reason: "stale" });
    const edge = await acceptVerdict(await signer.sign(verdict({ ageMs: 30_000 })), ctx());
    expect(edge.ok).toBe(true);
  });

  it("counts the agent's own holding time, not its wall clock", async () => {
    // issuedAt far in the past by the agent's wall clock does not matter; ageMs + held time does.
    const env = await signer.sign(verdict({ issuedAt: 0, since: 0, ageMs: 20_000 }));
    expect((await acceptVerdict(env, ctx())).ok).toBe(true);
    expect(await acceptVerdict(env, ctx({ heldForMs: 10_001 }))).toMatchObject({ ok: false, reason: "stale" });
  });

  it("rejects a verdict from before the first probe round as stale", async () => {
    const r = await acceptVerdict(await signer.sign(verdict({ ageMs: null, state: "unknown" })), ctx());
    expect(r).toMatchObject({ ok: false, reason: "stale" });
  });

  it("rejects a verdict for another cluster", async () => {
    const r = await acceptVerdict(await signer.sign(verdict({ clusterId: "other" })), ctx());
    expect(r).toMatchObject({ ok: false, reason: "wrong-cluster" });
  });

  it("rejects malformed input: not an envelope, or a signed payload that is not a verdict", async () => {
    for (const junk of [
      null,
      "text",
      { kid: "x" },
      { kid: signer.kid, alg: "RS256", payload: "{}", signature: "AA" },
    ]) {
      expect(await acceptVerdict(junk, ctx())).toMatchObject({ ok: false, reason: "malformed" });
    }
    const notVerdict = await signer.sign({ ...verdict(), state: "sideways" });
    const r = await acceptVerdict(notVerdict, ctx());
    expect(r).toMatchObject({ ok: false, reason: "malformed" });
    expect(r.ok || r.detail).toMatch(/state/);
  });
});

describe("isFresh", () => {
  it("adds agent-measured elapsed time to the accepted age", () => {
    expect(isFresh(10_000, 20_000, 30_000)).toBe(true);
    expect(isFresh(10_000, 20_001, 30_000)).toBe(false);
  });
});

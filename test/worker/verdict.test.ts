import { describe, expect, it } from "vitest";
import { SignedEnvelope, verifyEnvelope } from "../../protocol/signing.js";
import { Verdict } from "../../protocol/verdict.js";
import { api, clusterConfig, getVerdict, runRound, target, uniqueId, waitForSeq } from "./helpers.js";

async function keys() {
  const res = await api("GET", "/v1/keys", { token: null });
  expect(res.status).toBe(200);
  return res.json.keys;
}

async function cluster() {
  const t = await target("tcp");
  const id = uniqueId("v");
  await api("PUT", `/v1/clusters/${id}`, { body: clusterConfig([{ kind: "tcp", name: "pg", port: t.port }]) });
  await waitForSeq(id, 1);
  return id;
}

describe("signed verdict", () => {
  it("verifies with the published key and matches the schema; the nonce is echoed", async () => {
    const id = await cluster();
    const { envelope } = await getVerdict(id, "nonce-abcdef-123");
    expect(SignedEnvelope.parse(envelope).alg).toBe("EdDSA");
    const check = await verifyEnvelope(envelope, await keys());
    expect(check.ok).toBe(true);
    const verdict = Verdict.parse((check as { payload: unknown }).payload);
    expect(verdict).toMatchObject({ v: 1, clusterId: id, nonce: "nonce-abcdef-123", seq: 1 });
    expect(verdict.ageMs).toBe(verdict.issuedAt - verdict.lastRound!.at);
    expect(verdict.lastRound!.probes[0]).toMatchObject({ name: "pg", ok: true });
  });

  it("a tampered payload, a swapped signature or an unknown key fails verification", async () => {
    const id = await cluster();
    const { envelope } = await getVerdict(id, "nonce-abcdef-123");
    const trusted = await keys();
    const tampered = { ...envelope, payload: envelope.payload.replace('"state":"unknown"', '"state":"down"') };
    expect(tampered.payload).not.toBe(envelope.payload);
    expect(await verifyEnvelope(tampered, trusted)).toEqual({ ok: false, reason: "bad signature" });
    const other = await getVerdict(id, "nonce-zzzzzz-999");
    expect(await verifyEnvelope({ ...envelope, signature: other.envelope.signature }, trusted)).toMatchObject({
      ok: false,
    });
    expect(await verifyEnvelope({ ...envelope, kid: "0000000000000000" }, trusted)).toMatchObject({
      ok: false,
      reason: expect.stringContaining("unknown key id"),
    });
  });

  it("seq increases with every round and never goes back", async () => {
    const id = await cluster();
    const seqs = [(await getVerdict(id)).verdict.seq];
    for (let i = 0; i < 3; i++) seqs.push((await runRound(id)).seq);
    expect(seqs).toEqual([1, 2, 3, 4]);
  });
});

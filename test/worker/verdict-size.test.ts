// Whatever the probes return, the signed verdict fits what the agent accepts: 16 SIP probes
// (the most a cluster may have), each failing on a final response whose reason phrase fills
// the header block with characters JSON escapes, through a real round in workerd.
import { describe, expect, it } from "vitest";
import { SignedEnvelope } from "../../protocol/signing.js";
import { Verdict } from "../../protocol/verdict.js";
import { api, clusterConfig, getVerdict, target, uniqueId, waitForSeq } from "./helpers.js";

/** The agent's limit on a verdict envelope's payload (protocol/signing.ts), in characters. */
const PAYLOAD_LIMIT = 256 * 1024;

describe("verdict size", () => {
  it("16 probes with maximal details still give a verdict the agent accepts", async () => {
    const t = await target("sip-tcp", "long-reason");
    const probes = Array.from({ length: 16 }, (_, i) => ({
      kind: "sip",
      name: `sip-${String(i).padStart(2, "0")}-${"n".repeat(33)}`,
      port: t.port,
      acceptCodes: [404], // the 200 fails: its whole status line lands in the detail and the reason
      timeoutMs: 5000,
    }));
    const id = uniqueId("big");
    const put = await api("PUT", `/v1/clusters/${id}`, { body: clusterConfig(probes, { fall: 1 }) });
    expect(put.status, put.text).toBe(201);
    await waitForSeq(id, 1, 30_000);
    const { envelope } = await getVerdict(id);
    const verdict = JSON.parse(envelope.payload);
    expect(verdict.state).toBe("down");
    expect(verdict.lastRound.probes).toHaveLength(16);
    expect(verdict.lastRound.probes.every((p: { ok: boolean }) => !p.ok)).toBe(true);
    expect(envelope.payload.length).toBeLessThan(PAYLOAD_LIMIT);
    expect(SignedEnvelope.safeParse(envelope).success).toBe(true);
    expect(Verdict.safeParse(verdict).success).toBe(true);
  }, 60_000);
});

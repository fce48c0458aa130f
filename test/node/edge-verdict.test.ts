import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifyEnvelope, type PublicJwk } from "../../protocol/signing.js";
import { Verdict } from "../../protocol/verdict.js";
import { testSecrets } from "../support/secrets.js";
import { startEdgeLab, type EdgeLab } from "../support/edge-lab.js";
import { createTarget } from "../support/target-client.js";

/**
 * The agent's side of the contract, from plain Node: the worker runs under the real
 * `wrangler dev`, and its verdict is verified with Node's own WebCrypto and the key the worker
 * publishes at /v1/keys — exactly what the agent on a slave will do.
 */
let lab: EdgeLab;
const AGENT = "agent-token-node-side-0123456789abcdef";

beforeAll(async () => (lab = await startEdgeLab()), 90_000);
afterAll(() => lab?.stop());

describe("verdict verified in Node", () => {
  it("publishes the key it signs with; a poll verifies, echoes its nonce and reports the round", async () => {
    const keys = (await (await fetch(`${lab.edge.url}/v1/keys`)).json()) as { keys: PublicJwk[] };
    expect(keys.keys).toEqual([lab.secrets.publicJwk]);

    const sip = await createTarget(lab.control.port, "sip-tcp");
    const put = await lab.call("PUT", "/v1/clusters/node-side", lab.secrets.adminToken, {
      master: { host: "127.0.0.1" },
      probes: [{ kind: "sip", name: "sip", port: sip.port, timeoutMs: 1000 }],
      intervalSec: 2,
      rise: 1,
      agentToken: AGENT,
    });
    expect(put.status).toBe(201);

    // The alarm loop runs on its own under wrangler dev: wait for the verdict to turn up.
    let verdict: Verdict | null = null;
    for (let i = 0; i < 100 && verdict?.state !== "up"; i++) {
      const nonce = `n-${crypto.randomUUID()}`;
      const res = await lab.call("GET", `/v1/clusters/node-side/verdict?nonce=${nonce}`, AGENT);
      expect(res.status).toBe(200);
      const check = await verifyEnvelope(await res.json(), keys.keys);
      if (!check.ok) throw new Error(check.reason);
      verdict = Verdict.parse(check.payload);
      expect(verdict.nonce).toBe(nonce);
      if (verdict.state !== "up") await new Promise((r) => setTimeout(r, 200));
    }
    expect(verdict).toMatchObject({ state: "up", clusterId: "node-side" });
    expect(verdict!.lastRound!.probes[0]).toMatchObject({ ok: true, detail: "SIP/2.0 200 OK" });

    // The loop keeps going by itself: a dead SIP stack turns the verdict down within a few intervals.
    await sip.set("closed");
    for (let i = 0; i < 150 && verdict!.state !== "down"; i++) {
      await new Promise((r) => setTimeout(r, 200));
      const res = await lab.call("GET", "/v1/clusters/node-side/verdict", AGENT);
      const check = await verifyEnvelope(await res.json(), keys.keys);
      verdict = Verdict.parse((check as { payload: unknown }).payload);
    }
    expect(verdict!.state).toBe("down");
  });

  it("a verdict signed by another key does not verify against the published one", async () => {
    const other = await testSecrets();
    const res = await lab.call("GET", "/v1/clusters/node-side/verdict", AGENT);
    expect(res.status).toBe(200);
    expect(await verifyEnvelope(await res.json(), [other.publicJwk])).toMatchObject({ ok: false });
  });
});

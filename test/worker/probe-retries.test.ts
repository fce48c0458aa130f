import { describe, expect, it } from "vitest";
import { SipProbe } from "../../worker/config.js";
import { runProbe } from "../../worker/probe/index.js";
import { target } from "./helpers.js";

// Retries inside a round, with real loopback SIP responders (test/support/targets.ts) whose
// `script` decides, connection by connection, whether to reset, stay silent or answer.
const sip = (port: number, extra: object = {}) =>
  SipProbe.parse({ kind: "sip", name: "sip", port, timeoutMs: 1000, ...extra });

async function timed<T>(fn: () => Promise<T>): Promise<{ r: T; ms: number }> {
  const t0 = Date.now();
  const r = await fn();
  return { r, ms: Date.now() - t0 };
}

describe("probe retries inside a round", () => {
  it("a connection reset once is tried again at once: ok, in two attempts", async () => {
    const t = await target("sip-tcp");
    await t.set("ok", { script: ["closed"] });
    const { r, ms } = await timed(() => runProbe(sip(t.port), "127.0.0.1"));
    expect(r).toMatchObject({ ok: true, detail: "SIP/2.0 200 OK", attempts: 2 });
    expect((await t.info()).connections).toBe(2);
    expect(ms).toBeLessThan(1000 / 3); // retried after the reset, not at the hedge time
  });

  it("a first connection never answered is hedged by a second one inside the same timeout", async () => {
    const t = await target("sip-tcp");
    await t.set("ok", { script: ["silent"] });
    const { r, ms } = await timed(() => runProbe(sip(t.port, { retries: 1 }), "127.0.0.1"));
    expect(r).toMatchObject({ ok: true, attempts: 2 });
    expect(ms).toBeGreaterThanOrEqual(450); // the second attempt starts at budget / 2
    expect(ms).toBeLessThan(1000);
    expect(r.rttMs).toBeLessThan(450); // the successful attempt's own time, not the wait
  });

  it("fails only when every attempt fails, and says how many it made", async () => {
    const t = await target("sip-tcp");
    await t.set("ok", { script: ["closed", "closed", "closed"] });
    const { r, ms } = await timed(() => runProbe(sip(t.port), "127.0.0.1"));
    expect(r).toMatchObject({ ok: false, detail: expect.stringMatching(/^connection /), attempts: 3 });
    expect((await t.info()).connections).toBe(3);
    expect(ms).toBeLessThan(1000); // fast failures: no waiting for the timeout
  });

  it("a blackholed master fails after one timeout, not attempts × timeout", async () => {
    const t = await target("sip-tcp", "silent");
    const { r, ms } = await timed(() => runProbe(sip(t.port, { retries: 3 }), "127.0.0.1"));
    expect(r).toMatchObject({ ok: false, detail: "timeout after 1000 ms", rttMs: null, attempts: 4 });
    expect((await t.info()).connections).toBe(4);
    expect(ms).toBeGreaterThanOrEqual(1000);
    expect(ms).toBeLessThan(1500);
  });

  it("retries 0 is the single attempt of old", async () => {
    const t = await target("sip-tcp");
    await t.set("ok", { script: ["closed"] });
    expect(await runProbe(sip(t.port, { retries: 0 }), "127.0.0.1")).toMatchObject({ ok: false, attempts: 1 });
    expect((await t.info()).connections).toBe(1);
  });

  it("retries default to 2 and are bounded, the error naming the field", () => {
    expect(sip(5060).retries).toBe(2);
    for (const retries of [-1, 4, 1.5]) {
      const parsed = SipProbe.safeParse({ kind: "sip", name: "sip", retries });
      expect(parsed.success).toBe(false);
      expect(parsed.error?.issues[0]?.path).toEqual(["retries"]);
    }
  });
});

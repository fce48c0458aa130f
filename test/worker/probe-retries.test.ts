import { describe, expect, it } from "vitest";
import { SipProbe } from "../../worker/config.js";
import { runProbe } from "../../worker/probe/index.js";
import { target } from "./helpers.js";

// Retries inside a round, with real loopback SIP responders (test/support/targets.ts) whose
// `script` decides, connection by connection, whether to reset, stay silent or answer.
//
// The responders run in Node beside a busy suite, so the bounds are fractions of the probe's
// timeout with room for a loaded machine: a case expecting answers gets a budget far above what
// loopback needs, and says what a wrong schedule would cost (a retry waiting for its hedge time,
// attempts waiting for each other's timeout) rather than how fast loopback is.
const sip = (port: number, timeoutMs: number, extra: object = {}) =>
  SipProbe.parse({ kind: "sip", name: "sip", port, timeoutMs, ...extra });

/** A budget nothing on loopback comes near unless the probe waits for a hedge or the timeout. */
const ANSWERED_MS = 15_000;

async function timed<T>(fn: () => Promise<T>): Promise<{ r: T; ms: number }> {
  const t0 = Date.now();
  const r = await fn();
  return { r, ms: Date.now() - t0 };
}

describe("probe retries inside a round", () => {
  it("a connection reset once is tried again at once: ok, in two attempts", async () => {
    const t = await target("sip-tcp");
    await t.set("ok", { script: ["closed"] });
    const { r, ms } = await timed(() => runProbe(sip(t.port, ANSWERED_MS), "127.0.0.1"));
    expect(r).toMatchObject({ ok: true, detail: "SIP/2.0 200 OK", attempts: 2 });
    expect((await t.info()).connections).toBe(2);
    expect(ms).toBeLessThan(ANSWERED_MS / 3); // retried after the reset, not at the first hedge time
  });

  it("a first connection never answered is hedged by a second one inside the same timeout", async () => {
    const timeoutMs = 4000; // waited for in part: the hedge comes at half of it
    const t = await target("sip-tcp");
    await t.set("ok", { script: ["silent"] });
    const { r, ms } = await timed(() => runProbe(sip(t.port, timeoutMs, { retries: 1 }), "127.0.0.1"));
    expect(r).toMatchObject({ ok: true, attempts: 2 });
    expect((await t.info()).connections).toBe(2);
    expect(ms).toBeGreaterThanOrEqual(timeoutMs / 2); // the second attempt starts at budget / 2
    expect(ms).toBeLessThan(timeoutMs);
    expect(r.rttMs).toBeLessThan(timeoutMs / 2); // the successful attempt's own time, not the wait
  });

  it("fails only when every attempt fails, and says how many it made", async () => {
    const t = await target("sip-tcp");
    await t.set("ok", { script: ["closed", "closed", "closed"] });
    const { r, ms } = await timed(() => runProbe(sip(t.port, ANSWERED_MS), "127.0.0.1"));
    expect(r).toMatchObject({ ok: false, detail: expect.stringMatching(/^connection /), attempts: 3 });
    expect((await t.info()).connections).toBe(3);
    expect(ms).toBeLessThan(ANSWERED_MS / 3); // each retry at the failure before it, no hedge waited for
  });

  it("a blackholed master fails after one timeout, not attempts × timeout", async () => {
    const timeoutMs = 4000; // waited for in full
    const t = await target("sip-tcp", "silent");
    const { r, ms } = await timed(() => runProbe(sip(t.port, timeoutMs, { retries: 3 }), "127.0.0.1"));
    expect(r).toMatchObject({ ok: false, detail: `timeout after ${timeoutMs} ms`, rttMs: null, attempts: 4 });
    expect((await t.info()).connections).toBe(4);
    expect(ms).toBeGreaterThanOrEqual(timeoutMs);
    expect(ms).toBeLessThan(2 * timeoutMs); // one budget, not one per attempt
  });

  it("retries 0 is the single attempt of old", async () => {
    const t = await target("sip-tcp");
    await t.set("ok", { script: ["closed"] });
    const r = await runProbe(sip(t.port, ANSWERED_MS, { retries: 0 }), "127.0.0.1");
    expect(r).toMatchObject({ ok: false, detail: expect.stringMatching(/^connection /), attempts: 1 });
    expect((await t.info()).connections).toBe(1);
  });

  it("retries default to 2 and are bounded, the error naming the field", () => {
    expect(sip(5060, ANSWERED_MS).retries).toBe(2);
    for (const retries of [-1, 4, 1.5]) {
      const parsed = SipProbe.safeParse({ kind: "sip", name: "sip", retries });
      expect(parsed.success).toBe(false);
      expect(parsed.error?.issues[0]?.path).toEqual(["retries"]);
    }
  });
});

import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { VerdictSource, type AcceptedVerdict, type VerdictSourceOptions } from "../../../agent/intake/source.js";
import { freePort, startEdge, type Edge } from "../../../scripts/edge.js";
import { testSecrets } from "../../support/secrets.js";
import { createTarget, type Target } from "../../support/target-client.js";
import { startTargetControl, type TargetControl } from "../../support/targets.js";

/**
 * The verdict client against the real worker under `wrangler dev` on loopback, probing a
 * loopback SIP target we can kill: push delivers every round, polling covers when push is off,
 * an edge outage leaves latest() alone until it goes stale, and push comes back with the edge.
 */

const CLUSTER = "intake-edge";
const TOKEN = "agent-token-intake-edge-0123456789abcdef";
const secrets = await testSecrets();
const vars = { ADMIN_TOKEN: secrets.adminToken, SIGNING_KEY: secrets.signingKey };

let control: TargetControl;
let edge: Edge;
let sip: Target;
let port: number;
let persistTo: string;
const sources: VerdictSource[] = [];

beforeAll(async () => {
  control = await startTargetControl();
  port = await freePort();
  persistTo = await mkdtemp(path.join(os.tmpdir(), "xivo-ha-intake-edge-"));
  edge = await startEdge({ vars, port, persistTo });
  sip = await createTarget(control.port, "sip-tcp");
  const res = await fetch(`${edge.url}/v1/clusters/${CLUSTER}`, {
    method: "PUT",
    headers: { authorization: `Bearer ${secrets.adminToken}`, "content-type": "application/json" },
    body: JSON.stringify({
      master: { host: "127.0.0.1" },
      probes: [{ kind: "sip", name: "sip", port: sip.port, timeoutMs: 1000 }],
      intervalSec: 2,
      rise: 1,
      fall: 1,
      agentToken: TOKEN,
    }),
  });
  expect(res.status).toBe(201);
}, 120_000);
afterAll(async () => {
  await Promise.all(sources.splice(0).map((s) => s.stop()));
  await edge?.stop();
  await control?.close();
  if (persistTo) await rm(persistTo, { recursive: true, force: true });
}, 60_000);
afterEach(async () => {
  await Promise.all(sources.splice(0).map((s) => s.stop()));
});

function source(opts: Partial<VerdictSourceOptions> = {}) {
  const verdicts: AcceptedVerdict[] = [];
  const logs: { event: string; fields: Record<string, unknown> }[] = [];
  const src = new VerdictSource({
    url: edge.url,
    clusterId: CLUSTER,
    token: TOKEN,
    publicKeys: [secrets.publicJwk],
    pollIntervalMs: 1_000,
    maxVerdictAgeMs: 10_000,
    lastSeq: null,
    reconnect: { initialMs: 200, maxMs: 2_000 },
    log: (event, fields) => logs.push({ event, fields }),
    ...opts,
  });
  src.on("verdict", (v) => verdicts.push(v));
  sources.push(src);
  return { src, verdicts, logs };
}

const waitFor = <T>(fn: () => T, timeout = 45_000) => vi.waitFor(fn, { timeout, interval: 50 });
const pushed = (vs: AcceptedVerdict[]) => vs.filter((v) => v.channel === "push");

describe("verdict client against the real worker", () => {
  it("push delivers each round's verdict with a rising seq", async () => {
    const persisted: number[] = [];
    const { src, verdicts } = source({ onSeq: (s) => void persisted.push(s) });
    src.start();
    await waitFor(() => expect(pushed(verdicts).length).toBeGreaterThanOrEqual(3));
    await waitFor(() => expect(src.latest()?.verdict.state).toBe("up"));
    const seqs = pushed(verdicts).map((v) => v.verdict.seq);
    for (let i = 1; i < seqs.length; i++) expect(seqs[i]!).toBeGreaterThan(seqs[i - 1]!);
    expect(pushed(verdicts).every((v) => v.verdict.nonce === null && v.verdict.clusterId === CLUSTER)).toBe(true);
    expect(src.counters()).toMatchObject({ pushConnected: true, rejected: {} });
    expect(src.freshness()).toBe("fresh");
    // Every rise was handed to the caller, in order.
    for (let i = 1; i < persisted.length; i++) expect(persisted[i]!).toBeGreaterThan(persisted[i - 1]!);
    expect(persisted.at(-1)).toBe(src.seq());
  });

  it("the master's SIP going dead and back arrives by push", async () => {
    const { src, verdicts } = source();
    src.start();
    await waitFor(() => expect(src.latest()?.verdict.state).toBe("up"));
    await sip.set("closed");
    try {
      await waitFor(() => expect(pushed(verdicts).some((v) => v.verdict.state === "down")).toBe(true));
      expect(src.latest()!.verdict.state).toBe("down");
    } finally {
      await sip.set("ok");
    }
    const downSeq = src.latest()!.verdict.seq;
    await waitFor(() =>
      expect(pushed(verdicts).some((v) => v.verdict.state === "up" && v.verdict.seq > downSeq)).toBe(true),
    );
  });

  it("with push off, polling delivers (nonce-protected)", async () => {
    const { src, verdicts } = source({ push: false });
    src.start();
    await waitFor(() => expect(verdicts.length).toBeGreaterThanOrEqual(2));
    expect(verdicts.every((v) => v.channel === "poll" && typeof v.verdict.nonce === "string")).toBe(true);
    expect(src.counters()).toMatchObject({ accepted: { push: 0 }, pushConnected: false, reconnects: 0, rejected: {} });
    expect(src.freshness()).toBe("fresh");
  });

  it("edge down: errors counted, latest() kept until stale; push back with the edge", async () => {
    const maxVerdictAgeMs = 6_000;
    const { src, verdicts } = source({ maxVerdictAgeMs });
    src.start();
    await waitFor(() => expect(pushed(verdicts).length).toBeGreaterThanOrEqual(1));
    await waitFor(() => expect(src.counters().pushConnected).toBe(true));

    await edge.stop();
    const kept = src.latest()!;
    const before = src.counters();
    expect(src.freshness()).toBe("fresh");
    await waitFor(() => {
      const c = src.counters();
      expect(c.pushConnected).toBe(false);
      expect(c.pollErrors - before.pollErrors).toBeGreaterThanOrEqual(2);
      expect(c.reconnects - before.reconnects).toBeGreaterThanOrEqual(2);
    });
    await waitFor(() => expect(src.freshness()).toBe("stale"), maxVerdictAgeMs + 15_000);
    // It went stale no sooner than the bound allows.
    expect(kept.ageAtReceiptMs + performance.now() - kept.receivedAtMono).toBeGreaterThan(maxVerdictAgeMs);
    expect(src.latest()).toBe(kept);
    expect(src.counters().rejected).toEqual({});

    // Same port, same Durable Object storage: the seq continues where it was.
    edge = await startEdge({ vars, port, persistTo });
    await waitFor(() => expect(src.counters().pushConnected).toBe(true), 60_000);
    await waitFor(() => expect(src.latest()!.verdict.seq).toBeGreaterThan(kept.verdict.seq), 60_000);
    await waitFor(() => expect(pushed(verdicts).some((v) => v.verdict.seq > kept.verdict.seq)).toBe(true), 60_000);
    expect(src.freshness()).toBe("fresh");
  }, 180_000);
});

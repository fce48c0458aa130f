// SIP OPTIONS probes over UDP and TCP against real loopback sockets.
import dgram from "node:dgram";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LanSipProbe } from "../../../agent/lan/config.js";
import { runLanProbe } from "../../../agent/lan/probe.js";
import { MAX_DETAIL_CHARS } from "../../../protocol/verdict.js";
import { createTarget, type Target } from "../../support/target-client.js";
import { startTargetControl, type TargetControl } from "../../support/targets.js";

const HOST = "127.0.0.1";

let control: TargetControl;
beforeAll(async () => {
  control = await startTargetControl();
});
afterAll(async () => {
  await control.close();
});

function sip(transport: "udp" | "tcp", port: number, extra: Partial<LanSipProbe> = {}): LanSipProbe {
  return { kind: "sip", name: `sip-${transport}`, transport, port, critical: true, timeoutMs: 3000, ...extra };
}

describe.each(["udp", "tcp"] as const)("SIP OPTIONS over %s", (transport) => {
  let target: Target;
  beforeAll(async () => {
    target = await createTarget(control.port, transport === "udp" ? "sip-udp" : "sip-tcp");
  });
  afterAll(() => target.remove());

  it("ok: a 200 proves the stack alive, and the request is well formed", async () => {
    await target.set("ok");
    const r = await runLanProbe(sip(transport, target.port), HOST);
    expect(r).toMatchObject({
      name: `sip-${transport}`,
      kind: "sip",
      critical: true,
      ok: true,
      detail: "SIP/2.0 200 OK",
    });
    expect(r.rttMs).toBeGreaterThanOrEqual(0);
    const req = (await target.info()).requests.at(-1)!;
    expect(req.method).toBe("OPTIONS");
    expect(req.requestUri).toBe(`sip:${HOST}:${target.port};transport=${transport}`);
    const via = req.headers.find(([n]) => n === "Via")![1];
    expect(via).toMatch(
      new RegExp(`^SIP/2\\.0/${transport.toUpperCase()} xivo-ha\\.invalid;branch=z9hG4bK[0-9a-f]+;rport$`),
    );
  });

  it("error: any final response (503) is an answering stack by default", async () => {
    await target.set("error");
    expect(await runLanProbe(sip(transport, target.port), HOST)).toMatchObject({
      ok: true,
      detail: "SIP/2.0 503 Service Unavailable",
    });
  });

  it("error: acceptCodes narrows what counts as alive", async () => {
    await target.set("error");
    const r = await runLanProbe(sip(transport, target.port, { acceptCodes: [200, 404] }), HOST);
    expect(r).toMatchObject({ ok: false, detail: "SIP/2.0 503 Service Unavailable, expected 200/404" });
    expect(r.rttMs).not.toBeNull();
  });

  it("garbage: fails at once with what was seen", async () => {
    await target.set("garbage");
    const started = Date.now();
    const r = await runLanProbe(sip(transport, target.port, { timeoutMs: 10_000 }), HOST);
    expect(r).toMatchObject({ ok: false, detail: 'not a SIP response: "GARBAGE NOT SIP\\r\\n\\r\\n"' });
    expect(Date.now() - started).toBeLessThan(5000); // not the 10 s timeout
  });

  it("silent: times out, says what it waited for, rttMs null", async () => {
    await target.set("silent");
    const r = await runLanProbe(sip(transport, target.port, { timeoutMs: 800 }), HOST);
    const waited = transport === "udp" ? "2 OPTIONS sent, no response" : "connected, no SIP response";
    expect(r).toMatchObject({ ok: false, detail: `timeout after 800 ms (${waited})`, rttMs: null });
  });

  it("closed: nothing listens, fails fast", async () => {
    await target.set("closed");
    const started = Date.now();
    const r = await runLanProbe(sip(transport, target.port, { timeoutMs: 10_000 }), HOST);
    const why =
      transport === "udp" ? `port unreachable: nothing listens on UDP port ${target.port}` : "connection refused";
    expect(r).toMatchObject({ ok: false, detail: why });
    expect(r.rttMs).not.toBeNull();
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it("long reason phrase: the detail stays short (it travels in the agent's report)", async () => {
    await target.set("long-reason");
    const r = await runLanProbe(sip(transport, target.port), HOST);
    expect(r).toMatchObject({ ok: true, detail: expect.stringMatching(/^SIP\/2\.0 200 /) });
    expect(r.detail.length).toBeLessThanOrEqual(MAX_DETAIL_CHARS);
  });

  it("a provisional response is not an answer: waits for the final one", async () => {
    await target.set("ok", { status: 100 });
    const r = await runLanProbe(sip(transport, target.port, { timeoutMs: 800 }), HOST);
    expect(r).toMatchObject({ ok: false, detail: "timeout after 800 ms (100 Trying, no final response)", rttMs: null });
  });
});

describe("SIP over TCP: a responder that never stops talking", () => {
  let target: Target;
  beforeAll(async () => {
    target = await createTarget(control.port, "sip-tcp");
  });
  afterAll(() => target.remove());

  it.each([
    ["huge-body", /body too large: Content-Length 1000000000/],
    ["endless-headers", /header block too large/],
  ] as const)("%s: fails at once, naming it, without reading what is announced", async (mode, why) => {
    await target.set(mode);
    const started = Date.now();
    const r = await runLanProbe(sip("tcp", target.port, { timeoutMs: 10_000 }), HOST);
    expect(r).toMatchObject({ ok: false, detail: expect.stringMatching(why) });
    expect(r.rttMs).not.toBeNull();
    expect(Date.now() - started).toBeLessThan(5000); // not the 10 s timeout
  });
});

describe("SIP over UDP: retransmission (RFC 3261 timer E)", () => {
  let target: Target;
  beforeAll(async () => {
    target = await createTarget(control.port, "sip-udp");
  });
  afterAll(() => target.remove());

  it("retransmits the same request after 500 ms, then 1 s, and takes the answer to a retransmission", async () => {
    await target.set("ok", { script: ["closed", "closed"] }); // the first two datagrams are lost
    const r = await runLanProbe(sip("udp", target.port, { timeoutMs: 10_000 }), HOST);
    expect(r).toMatchObject({ ok: true, detail: "SIP/2.0 200 OK" });
    expect(r.rttMs).toBeGreaterThanOrEqual(1400); // sent at 0, 500 and 1500 ms
    expect(r.rttMs).toBeLessThan(3500); // and not at 3500
    expect((await target.info()).connections).toBe(3);
  });

  it("sends identical retransmissions (same branch, Call-ID and CSeq)", async () => {
    await target.set("silent");
    const before = (await target.info()).requests.length;
    await runLanProbe(sip("udp", target.port, { timeoutMs: 800 }), HOST);
    const sent = (await target.info()).requests.slice(before);
    expect(sent).toHaveLength(2);
    expect(sent[1]!.raw).toBe(sent[0]!.raw);
  });
});

describe("SIP over UDP: what comes back", () => {
  /** A UDP peer that answers each request with the datagrams `reply` builds from its headers. */
  async function responder(
    reply: (h: { via: string; callId: string; from: string; to: string }) => string[],
    host = HOST,
  ) {
    const socket = dgram.createSocket(host.includes(":") ? "udp6" : "udp4");
    const seen: string[] = [];
    socket.on("message", (msg, rinfo) => {
      const text = msg.toString("utf8");
      seen.push(text);
      const header = (name: string) => new RegExp(`^${name}: (.*)$`, "m").exec(text)?.[1]?.trim() ?? "";
      const h = { via: header("Via"), callId: header("Call-ID"), from: header("From"), to: header("To") };
      for (const d of reply(h)) socket.send(d, rinfo.port, rinfo.address);
    });
    await new Promise<void>((resolve) => socket.bind(0, host, resolve));
    return {
      port: socket.address().port,
      seen,
      close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
    };
  }
  const response = (
    status: string,
    h: { via: string; callId: string; from: string; to: string },
    tail = "Content-Length: 0\r\n\r\n",
  ) =>
    `SIP/2.0 ${status}\r\nVia: ${h.via}\r\nFrom: ${h.from}\r\nTo: ${h.to};tag=x\r\nCall-ID: ${h.callId}\r\nCSeq: 1 OPTIONS\r\n${tail}`;

  it("ignores an answer for another Call-ID and takes the right one", async () => {
    const peer = await responder((h) => [
      response("486 Busy Here", { ...h, callId: "someone-else" }),
      response("200 OK", h),
    ]);
    try {
      expect(await runLanProbe(sip("udp", peer.port), HOST)).toMatchObject({ ok: true, detail: "SIP/2.0 200 OK" });
    } finally {
      await peer.close();
    }
  });

  it("skips 1xx, accepts a body without Content-Length (one datagram, one message)", async () => {
    const peer = await responder((h) => [
      response("100 Trying", h),
      response("200 OK", h, "Content-Type: application/sdp\r\n\r\nv=0\r\n"),
    ]);
    try {
      expect(await runLanProbe(sip("udp", peer.port), HOST)).toMatchObject({ ok: true, detail: "SIP/2.0 200 OK" });
    } finally {
      await peer.close();
    }
  });

  it("fails at once on a truncated or malformed response", async () => {
    const peer = await responder((h) => [`SIP/2.0 200 OK\r\nCall-ID: ${h.callId}\r\nno colon here\r\n\r\n`]);
    try {
      expect(await runLanProbe(sip("udp", peer.port), HOST)).toMatchObject({
        ok: false,
        detail: 'bad header line: "no colon here"',
      });
    } finally {
      await peer.close();
    }
  });

  it("speaks IPv6 to an IPv6 literal (::1), with the host bracketed in the Request-URI", async () => {
    const peer = await responder((h) => [response("200 OK", h)], "::1");
    try {
      expect(await runLanProbe(sip("udp", peer.port), "::1")).toMatchObject({ ok: true, detail: "SIP/2.0 200 OK" });
      expect(peer.seen[0]).toMatch(new RegExp(`^OPTIONS sip:\\[::1\\]:${peer.port};transport=udp SIP/2\\.0\r\n`));
    } finally {
      await peer.close();
    }
    // The same port, closed now: ICMPv6 port unreachable.
    expect(await runLanProbe(sip("udp", peer.port), "::1")).toMatchObject({
      ok: false,
      detail: `port unreachable: nothing listens on UDP port ${peer.port}`,
    });
  });
});

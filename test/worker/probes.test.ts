import { describe, expect, it } from "vitest";
import { HttpProbe, type Probe, SipProbe, TcpProbe } from "../../worker/config.js";
import { MAX_DETAIL_CHARS } from "../../protocol/verdict.js";
import { runProbe } from "../../worker/probe/index.js";
import { target } from "./helpers.js";

// Real probes, inside workerd, against real listeners on 127.0.0.1 (test/support/targets.ts).
// The listeners run in Node beside a busy suite: a probe expecting an answer gets a budget far
// above what loopback needs, so a loaded machine cannot turn the answer into a timeout; a silent
// target gets a short one (SILENT_MS), which the test then waits for in full.
const ANSWERED_MS = 10_000;
const SILENT_MS = 1000;
const http = (port: number, extra: object = {}) =>
  HttpProbe.parse({ kind: "http", name: "web", scheme: "http", port, timeoutMs: ANSWERED_MS, ...extra });
const tcp = (port: number) => TcpProbe.parse({ kind: "tcp", name: "pg", port, timeoutMs: ANSWERED_MS });
const sip = (port: number, extra: object = {}) =>
  SipProbe.parse({ kind: "sip", name: "sip", port, timeoutMs: ANSWERED_MS, ...extra });
const probe = (p: Probe) => runProbe(p, "127.0.0.1");

describe("HTTP probe", () => {
  it("ok on 200", async () => {
    const t = await target("http");
    expect(await probe(http(t.port))).toMatchObject({ ok: true, detail: "HTTP 200", kind: "http", critical: false });
  });
  it("fails on a status outside the expected range", async () => {
    const t = await target("http", "error");
    expect(await probe(http(t.port))).toMatchObject({ ok: false, detail: "HTTP 503, expected 200-399" });
    expect(await probe(http(t.port, { expectStatus: { min: 500, max: 503 } }))).toMatchObject({ ok: true });
  });
  it("checks the body keyword", async () => {
    const t = await target("http");
    expect((await probe(http(t.port, { bodyKeyword: "target OK" }))).ok).toBe(true);
    expect(await probe(http(t.port, { bodyKeyword: "Wazo" }))).toMatchObject({
      ok: false,
      detail: 'HTTP 200 but body lacks "Wazo"',
    });
  });
  it("fails on garbage, on silence (timeout) and on a closed port", async () => {
    const garbage = await target("http", "garbage");
    const silent = await target("http", "silent");
    const closed = await target("http", "closed");
    expect(await probe(http(garbage.port))).toMatchObject({ ok: false, detail: "invalid response (not HTTP)" });
    expect(await probe(http(silent.port, { timeoutMs: SILENT_MS }))).toMatchObject({
      ok: false,
      detail: `timeout after ${SILENT_MS} ms`,
      rttMs: null,
    });
    expect(await probe(http(closed.port))).toMatchObject({
      ok: false,
      detail: "connection failed or closed by the peer",
    });
  });
});

describe("TCP probe", () => {
  it("ok when the port accepts", async () => {
    const t = await target("tcp");
    const r = await probe(tcp(t.port));
    expect(r).toMatchObject({ ok: true, detail: `connected to port ${t.port}` });
    expect(r.rttMs).toBeGreaterThanOrEqual(0);
  });
  it("fails on a closed port, without waiting for the timeout", async () => {
    const t = await target("tcp", "closed");
    expect(await probe(tcp(t.port))).toMatchObject({ ok: false, detail: "connection refused or host unreachable" });
  });
});

describe("SIP OPTIONS probe over TCP", () => {
  it("sends a well-formed OPTIONS and accepts 200", async () => {
    const t = await target("sip-tcp");
    const r = await probe(sip(t.port));
    expect(r).toMatchObject({ ok: true, detail: "SIP/2.0 200 OK", critical: true });
    const [req] = (await t.info()).requests;
    expect(req!.method).toBe("OPTIONS");
    expect(req!.requestUri).toBe(`sip:127.0.0.1:${t.port};transport=tcp`);
    const names = req!.headers.map(([n]) => n.toLowerCase());
    for (const h of ["via", "max-forwards", "from", "to", "call-id", "cseq", "content-length"])
      expect(names).toContain(h);
    expect(req!.headers.find(([n]) => n === "Via")![1]).toMatch(/branch=z9hG4bK/);
  });
  it("by default any final response proves the stack alive; acceptCodes narrows it", async () => {
    const t = await target("sip-tcp", "error");
    expect(await probe(sip(t.port))).toMatchObject({ ok: true, detail: "SIP/2.0 503 Service Unavailable" });
    expect(await probe(sip(t.port, { acceptCodes: [200, 404] }))).toMatchObject({
      ok: false,
      detail: "SIP/2.0 503 Service Unavailable, expected 200/404",
    });
  });
  it("fails fast on garbage", async () => {
    const t = await target("sip-tcp", "garbage");
    const r = await probe(sip(t.port));
    expect(r.ok).toBe(false);
    expect(r.detail).toMatch(/not a SIP response/);
    expect(r.rttMs).not.toBeNull(); // it did not wait for the timeout
  });
  it("times out on a stack that accepts and never answers (hung Asterisk)", async () => {
    const t = await target("sip-tcp", "silent");
    expect(await probe(sip(t.port, { timeoutMs: SILENT_MS }))).toMatchObject({
      ok: false,
      detail: `timeout after ${SILENT_MS} ms`,
      rttMs: null,
    });
  });
  it("fails at once, as a closed connection, when the peer resets it as soon as it accepts", async () => {
    // The reset races the OPTIONS write; workerd can then leave the write pending for good, so a
    // probe that awaited it before reading reported a timeout now and then.
    const runs = 300;
    const t = await target("sip-tcp");
    await t.set("ok", { script: Array(runs).fill("closed") });
    for (let i = 0; i < runs; i++) {
      const r = await probe(sip(t.port, { retries: 0 }));
      expect(r).toMatchObject({ ok: false, detail: expect.stringMatching(/^connection /), attempts: 1 });
    }
    expect((await t.info()).connections).toBe(runs);
  });
  it("fails on a closed port", async () => {
    const t = await target("sip-tcp", "closed");
    expect(await probe(sip(t.port))).toMatchObject({ ok: false, detail: "connection refused or host unreachable" });
  });
});

describe("SIP OPTIONS probe against a hostile responder", () => {
  // A probe that waited for the bytes announced would hold the isolate's memory until its timeout:
  // done well before it, the probe did not wait.
  it("fails at once on a body larger than it will read, naming the Content-Length", async () => {
    const t = await target("sip-tcp", "huge-body");
    const started = Date.now();
    const r = await probe(sip(t.port));
    expect(r).toMatchObject({ ok: false, detail: expect.stringMatching(/body too large: Content-Length 1000000000/) });
    expect(Date.now() - started).toBeLessThan(ANSWERED_MS / 2);
  });
  it("fails at once on header lines without end", async () => {
    const t = await target("sip-tcp", "endless-headers");
    const started = Date.now();
    const r = await probe(sip(t.port));
    expect(r).toMatchObject({ ok: false, detail: expect.stringMatching(/header block too large/) });
    expect(Date.now() - started).toBeLessThan(ANSWERED_MS / 2);
  });
  it("keeps a detail short whatever the reason phrase", async () => {
    const t = await target("sip-tcp", "long-reason");
    const ok = await probe(sip(t.port));
    expect(ok.ok).toBe(true);
    expect(ok.detail).toMatch(/^SIP\/2\.0 200 /);
    expect(ok.detail.length).toBeLessThanOrEqual(MAX_DETAIL_CHARS);
    const failed = await probe(sip(t.port, { acceptCodes: [404] }));
    expect(failed.ok).toBe(false);
    expect(failed.detail.length).toBeLessThanOrEqual(MAX_DETAIL_CHARS);
  });
});

describe("SIP OPTIONS probe over TLS", () => {
  it("accepts 200 over TLS (test CA trusted through NODE_EXTRA_CA_CERTS)", async () => {
    const t = await target("sip-tls");
    const r = await probe(sip(t.port, { transport: "tls" }));
    expect(r).toMatchObject({ ok: true, detail: "SIP/2.0 200 OK" });
    expect((await t.info()).requests[0]!.requestUri).toContain(";transport=tls");
  });
  it("fails when the peer does not speak TLS", async () => {
    const t = await target("sip-tcp", "silent");
    expect((await probe(sip(t.port, { timeoutMs: SILENT_MS, transport: "tls" }))).ok).toBe(false);
  });
});

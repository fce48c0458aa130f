// The loopback probe targets, exercised with real sockets from Node.
import dgram from "node:dgram";
import { readFileSync } from "node:fs";
import net from "node:net";
import type { Duplex } from "node:stream";
import tls from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTarget, type Kind, type Target } from "../support/target-client.js";
import { startTargetControl, type TargetControl } from "../support/targets.js";

const HOST = "127.0.0.1";
const CA = readFileSync(new URL("../fixtures/tls/ca.pem", import.meta.url));
// Expected events get a generous deadline (they normally take a few ms); "nothing happens" checks
// wait SILENCE_MS, which can only err towards passing a too-slow target, never towards flaking.
const DEADLINE_MS = 3000;
const SILENCE_MS = 300;

let control: TargetControl;
beforeAll(async () => {
  control = await startTargetControl();
});
afterAll(async () => {
  await control.close();
});

const target = (kind: Kind, opts?: Parameters<typeof createTarget>[2]): Promise<Target> =>
  createTarget(control.port, kind, opts);

// ---------------------------------------------------------------------------------------------
// Helpers

/** Accumulates what a socket receives, to wait on. */
function collect(socket: Duplex) {
  let text = "";
  let closed = false;
  let errorCode: string | undefined;
  const waiters = new Set<() => void>();
  const wake = () => waiters.forEach((w) => w());
  socket.on("data", (chunk: Buffer) => {
    text += chunk.toString("utf8");
    wake();
  });
  socket.on("error", (err: NodeJS.ErrnoException) => {
    errorCode = err.code ?? err.message;
    wake();
  });
  socket.on("close", () => {
    closed = true;
    wake();
  });
  return {
    get text() {
      return text;
    },
    get closed() {
      return closed;
    },
    get errorCode() {
      return errorCode;
    },
    /** Resolves once `pred` holds, or the socket closes; rejects after `ms`. */
    wait(pred: () => boolean, ms = DEADLINE_MS): Promise<void> {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (!pred() && !closed) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out; received so far: ${JSON.stringify(text)}`));
        }, ms);
        waiters.add(check);
        check();
      });
    },
  };
}

type Collected = ReturnType<typeof collect>;
type Conn = { socket: net.Socket; rx: Collected };

function connect(port: number, secure = false): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const socket: net.Socket = secure
      ? tls.connect({ host: HOST, port, ca: CA }, () => done())
      : net.connect({ host: HOST, port }, () => done());
    const rx = collect(socket);
    const done = () => {
      socket.off("error", reject);
      resolve({ socket, rx });
    };
    socket.once("error", reject);
  });
}

/**
 * Connects and returns how the connection ended: an error code, or "open" if it was still up
 * after `ms`. Expect "open" with SILENCE_MS; errors get the generous default, they come at once.
 */
async function connectOutcome(port: number, secure = false, ms = DEADLINE_MS): Promise<string> {
  const socket = secure ? tls.connect({ host: HOST, port, ca: CA }) : net.connect({ host: HOST, port });
  const rx = collect(socket);
  try {
    await rx.wait(() => rx.errorCode !== undefined, ms).catch(() => undefined);
    return rx.errorCode ?? (rx.closed ? "closed" : "open");
  } finally {
    socket.destroy();
  }
}

/** Waits for one complete SIP response (they all carry Content-Length: 0) or the end. */
async function readSip(rx: Collected): Promise<string> {
  await rx.wait(() => rx.text.includes("\r\n\r\n"));
  return rx.text;
}

async function expectSilence(rx: Collected): Promise<void> {
  await new Promise((r) => setTimeout(r, SILENCE_MS));
  expect(rx.text).toBe("");
}

async function sipOverStream(port: number, request: string, secure = false): Promise<string> {
  const { socket, rx } = await connect(port, secure);
  try {
    socket.write(request);
    return await readSip(rx);
  } finally {
    socket.destroy();
  }
}

let seq = 0;
function options(opts: { via?: string[]; compact?: boolean; to?: string; body?: string; method?: string } = {}) {
  const n = ++seq;
  const callId = `call-${n}@127.0.0.1`;
  const vias = opts.via ?? [`SIP/2.0/TCP 127.0.0.1:5099;branch=z9hG4bK-${n}`];
  const h = opts.compact
    ? { via: "v", from: "f", to: "t", callId: "i", length: "l" }
    : { via: "Via", from: "From", to: "To", callId: "Call-ID", length: "Content-Length" };
  const body = opts.body ?? "";
  const method = opts.method ?? "OPTIONS";
  const text = [
    `${method} sip:ping@127.0.0.1 SIP/2.0`,
    ...vias.map((v) => `${h.via}: ${v}`),
    "Max-Forwards: 70",
    `${h.from}: <sip:probe@127.0.0.1>;tag=probe-${n}`,
    `${h.to}: ${opts.to ?? "<sip:ping@127.0.0.1>"}`,
    `${h.callId}: ${callId}`,
    `CSeq: ${n} ${method}`,
    `${h.length}: ${Buffer.byteLength(body)}`,
    "",
    body,
  ].join("\r\n");
  return { text, callId, cseq: `${n} ${method}`, vias };
}

function parseResponse(text: string) {
  const [head = ""] = text.split("\r\n\r\n");
  const [status = "", ...lines] = head.split("\r\n");
  const headers = lines.map((l) => [l.slice(0, l.indexOf(":")), l.slice(l.indexOf(":") + 1).trim()] as const);
  const all = (name: string) => headers.filter(([n]) => n === name).map(([, v]) => v);
  return { status, headers, all, one: (name: string) => all(name)[0] };
}

async function udpExchange(port: number, message: string, ms = DEADLINE_MS): Promise<string | undefined> {
  const socket = dgram.createSocket("udp4");
  try {
    await new Promise<void>((resolve) => socket.bind(0, HOST, resolve));
    const reply = new Promise<string | undefined>((resolve) => {
      const timer = setTimeout(() => resolve(undefined), ms);
      socket.once("message", (msg) => {
        clearTimeout(timer);
        resolve(msg.toString("utf8"));
      });
    });
    socket.send(message, port, HOST);
    return await reply;
  } finally {
    socket.close();
  }
}

async function rawHttp(port: number): Promise<Collected> {
  const { socket, rx } = await connect(port);
  socket.write(`GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
  return rx;
}

// ---------------------------------------------------------------------------------------------

describe("control API", () => {
  async function call(method: string, path: string, body?: unknown) {
    const res = await fetch(`http://${HOST}:${control.port}${path}`, {
      method,
      headers: { "content-type": "application/json" },
      body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, error: text ? ((JSON.parse(text) as { error?: string }).error ?? "") : "" };
  }

  it("rejects bad input with 400 naming the field", async () => {
    expect(await call("POST", "/targets", { kind: "smtp" })).toMatchObject({
      status: 400,
      error: expect.stringMatching(/^kind: /),
    });
    expect(await call("POST", "/targets", {})).toMatchObject({ status: 400, error: expect.stringMatching(/^kind: /) });
    expect(await call("POST", "/targets", { kind: "http", mode: "meh" })).toMatchObject({
      status: 400,
      error: expect.stringMatching(/^mode: /),
    });
    expect(await call("POST", "/targets", { kind: "http", status: 99 })).toMatchObject({
      status: 400,
      error: expect.stringMatching(/^status: /),
    });
    expect(await call("POST", "/targets", { kind: "http", status: 650 })).toMatchObject({
      status: 400,
      error: expect.stringMatching(/^status: /),
    });
    expect(await call("POST", "/targets", { kind: "tcp", status: 200 })).toMatchObject({
      status: 400,
      error: expect.stringMatching(/^status: /),
    });
    expect(await call("POST", "/targets", { kind: "http", colour: "red" })).toMatchObject({
      status: 400,
      error: expect.stringContaining("colour"),
    });
    expect(await call("POST", "/targets", "{not json")).toMatchObject({
      status: 400,
      error: expect.stringMatching(/^body: /),
    });

    const t = await target("sip-tcp");
    const path = `/targets/${t.name}`;
    expect(await call("PUT", path, {})).toMatchObject({ status: 400, error: expect.stringMatching(/^mode: /) });
    expect(await call("PUT", path, { mode: "ok", script: ["ok", "nope"] })).toMatchObject({
      status: 400,
      error: expect.stringMatching(/^script\.1: /),
    });
    expect(await call("PUT", path, { mode: "ok", status: "200" })).toMatchObject({
      status: 400,
      error: expect.stringMatching(/^status: /),
    });
    expect(await call("PUT", path, { mode: "ok", status: 486 })).toMatchObject({ status: 204 });
    await t.remove();
  });

  it("answers 404 for unknown targets and the client throws the server's message", async () => {
    expect(await call("GET", "/targets/nope")).toMatchObject({ status: 404, error: 'unknown target "nope"' });
    expect(await call("PUT", "/targets/nope", { mode: "ok" })).toMatchObject({ status: 404 });
    expect(await call("DELETE", "/targets/nope")).toMatchObject({ status: 404 });
    expect(await call("GET", "/elsewhere")).toMatchObject({ status: 404 });
    await expect(createTarget(control.port, "bogus" as Kind)).rejects.toThrow(/kind: /);

    const t = await target("tcp");
    await t.remove();
    await expect(t.info()).rejects.toThrow(`unknown target "${t.name}"`);
    expect(await connectOutcome(t.port)).toBe("ECONNREFUSED");
  });

  it("reports the target's state", async () => {
    const t = await target("sip-tcp", { mode: "silent", status: 202 });
    await t.set("ok", { script: ["error", "silent"], status: 180 });
    expect(await t.info()).toEqual({
      name: t.name,
      kind: "sip-tcp",
      port: t.port,
      mode: "ok",
      script: ["error", "silent"],
      status: 180,
      connections: 0,
      requests: [],
    });
    await t.set("error"); // a PUT replaces: script and status go back to defaults
    expect(await t.info()).toMatchObject({ mode: "error", script: [], status: null });
    await t.remove();
  });
});

describe("http target", () => {
  it("ok answers 200 with the fixed body, or the configured status", async () => {
    const t = await target("http");
    const res = await fetch(`http://${HOST}:${t.port}/health`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("xivo-ha test target OK");
    await t.set("ok", { status: 418 });
    expect((await fetch(`http://${HOST}:${t.port}/`)).status).toBe(418);
    expect((await t.info()).connections).toBe(2);
    await t.remove();
  });

  it("error answers 503", async () => {
    const t = await target("http", { mode: "error" });
    const res = await fetch(`http://${HOST}:${t.port}/`);
    expect(res.status).toBe(503);
    await res.text();
    await t.remove();
  });

  it("garbage writes non-HTTP and ends", async () => {
    const t = await target("http", { mode: "garbage" });
    const rx = await rawHttp(t.port);
    await rx.wait(() => rx.closed);
    expect(rx.text).toBe("THIS IS NOT HTTP\r\n\r\n");
    await expect(fetch(`http://${HOST}:${t.port}/`)).rejects.toThrow();
    await t.remove();
  });

  it("silent accepts, reads and never answers", async () => {
    const t = await target("http", { mode: "silent" });
    const rx = await rawHttp(t.port);
    await expectSilence(rx);
    expect(rx.closed).toBe(false);
    await t.remove();
    await rx.wait(() => rx.closed); // removing the target drops its connections
  });

  it("closed refuses connections, then serves again on the same port", async () => {
    const t = await target("http");
    await t.set("closed");
    expect(await connectOutcome(t.port)).toBe("ECONNREFUSED");
    await t.set("ok");
    expect((await fetch(`http://${HOST}:${t.port}/`)).status).toBe(200);
    await t.remove();
  });

  it("can be created closed and still has a port", async () => {
    const t = await target("http", { mode: "closed" });
    expect(t.port).toBeGreaterThan(0);
    expect(await connectOutcome(t.port)).toBe("ECONNREFUSED");
    await t.set("ok");
    expect((await fetch(`http://${HOST}:${t.port}/`)).status).toBe(200);
    await t.remove();
  });

  it("runs a script one connection at a time", async () => {
    const t = await target("http");
    await t.set("ok", { script: ["error", "closed", "garbage"] });
    expect((await fetch(`http://${HOST}:${t.port}/`)).status).toBe(503);
    expect(await connectOutcome(t.port)).toBe("ECONNRESET");
    const rx = await rawHttp(t.port);
    await rx.wait(() => rx.closed);
    expect(rx.text).toBe("THIS IS NOT HTTP\r\n\r\n");
    expect((await fetch(`http://${HOST}:${t.port}/`)).status).toBe(200);
    expect(await t.info()).toMatchObject({ script: [], connections: 4 });
    await t.remove();
  });
});

describe("tcp target", () => {
  it("ok and silent accept and stay open without a word", async () => {
    for (const mode of ["ok", "silent"] as const) {
      const t = await target("tcp", { mode });
      const { socket, rx } = await connect(t.port);
      socket.write("hello?\r\n");
      await expectSilence(rx);
      expect(rx.closed).toBe(false);
      socket.destroy();
      await t.remove();
    }
  });

  it("error resets the connection", async () => {
    const t = await target("tcp", { mode: "error" });
    expect(await connectOutcome(t.port)).toBe("ECONNRESET");
    await t.remove();
  });

  it("garbage writes junk", async () => {
    const t = await target("tcp", { mode: "garbage" });
    const { socket, rx } = await connect(t.port);
    await rx.wait(() => rx.text.endsWith("\r\n"));
    expect(rx.text).toMatch(/JUNK/);
    socket.destroy();
    await t.remove();
  });

  it("closed refuses, resets open connections, and comes back on the same port", async () => {
    const t = await target("tcp");
    const open = await connect(t.port);
    await t.set("closed");
    await open.rx.wait(() => open.rx.closed);
    expect(open.rx.errorCode).toBe("ECONNRESET");
    expect(await connectOutcome(t.port)).toBe("ECONNREFUSED");
    await t.set("ok");
    expect(await connectOutcome(t.port, false, SILENCE_MS)).toBe("open");
    await t.remove();
  });

  it("runs a script, then falls back to the mode", async () => {
    const t = await target("tcp", { mode: "error" });
    await t.set("error", { script: ["ok", "closed", "ok"] });
    expect(await connectOutcome(t.port, false, SILENCE_MS)).toBe("open");
    expect(await connectOutcome(t.port)).toBe("ECONNRESET");
    expect(await connectOutcome(t.port, false, SILENCE_MS)).toBe("open");
    expect(await connectOutcome(t.port)).toBe("ECONNRESET");
    expect((await t.info()).connections).toBe(4);
    await t.remove();
  });
});

describe.each([
  ["sip-tcp", false],
  ["sip-tls", true],
] as const)("%s target", (kind, secure) => {
  it("ok answers 200 copying Vias, From, To (tagged), Call-ID and CSeq", async () => {
    const t = await target(kind);
    const vias = ["SIP/2.0/TCP 127.0.0.1:5099;branch=z9hG4bK-a", "SIP/2.0/TCP 127.0.0.1:5098;branch=z9hG4bK-b"];
    const req = options({ via: vias });
    const res = parseResponse(await sipOverStream(t.port, req.text, secure));
    expect(res.status).toBe("SIP/2.0 200 OK");
    expect(res.all("Via")).toEqual(vias);
    expect(res.one("From")).toMatch(/;tag=probe-/);
    expect(res.one("To")).toMatch(/^<sip:ping@127\.0\.0\.1>;tag=[0-9a-f]+$/);
    expect(res.one("Call-ID")).toBe(req.callId);
    expect(res.one("CSeq")).toBe(req.cseq);
    expect(res.one("Allow")).toBe("INVITE, ACK, CANCEL, OPTIONS, BYE");
    expect(res.one("Content-Length")).toBe("0");

    const info = await t.info();
    expect(info.requests).toHaveLength(1);
    expect(info.requests[0]).toMatchObject({ method: "OPTIONS", requestUri: "sip:ping@127.0.0.1", raw: req.text });
    expect(info.requests[0]?.headers.slice(0, 3)).toEqual([
      ["Via", vias[0]],
      ["Via", vias[1]],
      ["Max-Forwards", "70"],
    ]);
    await t.remove();
  });

  it("understands compact headers, keeps an existing To tag, uses the status's reason phrase", async () => {
    const t = await target(kind, { status: 486 });
    const req = options({ compact: true, to: "<sip:ping@127.0.0.1>;tag=already" });
    const res = parseResponse(await sipOverStream(t.port, req.text, secure));
    expect(res.status).toBe("SIP/2.0 486 Busy Here");
    expect(res.all("Via")).toEqual(req.vias);
    expect(res.one("To")).toBe("<sip:ping@127.0.0.1>;tag=already");
    expect(res.one("Call-ID")).toBe(req.callId);
    expect((await t.info()).requests[0]?.headers[0]?.[0]).toBe("v");
    await t.remove();
  });

  it("error answers 503 Service Unavailable with the same headers", async () => {
    const t = await target(kind, { mode: "error" });
    const req = options();
    const res = parseResponse(await sipOverStream(t.port, req.text, secure));
    expect(res.status).toBe("SIP/2.0 503 Service Unavailable");
    expect(res.one("Call-ID")).toBe(req.callId);
    expect(res.one("CSeq")).toBe(req.cseq);
    await t.remove();
  });

  it("garbage answers non-SIP", async () => {
    const t = await target(kind, { mode: "garbage" });
    expect(await sipOverStream(t.port, options().text, secure)).toBe("GARBAGE NOT SIP\r\n\r\n");
    expect((await t.info()).requests).toHaveLength(1);
    await t.remove();
  });

  it("silent records the request and never answers", async () => {
    const t = await target(kind, { mode: "silent" });
    const { socket, rx } = await connect(t.port, secure);
    const req = options();
    socket.write(req.text);
    await expectSilence(rx);
    expect((await t.info()).requests.map((r) => r.raw)).toEqual([req.text]);
    socket.destroy();
    await t.remove();
  });

  it("closed refuses connections, then answers again on the same port", async () => {
    const t = await target(kind);
    await t.set("closed");
    expect(await connectOutcome(t.port, secure)).toBe("ECONNREFUSED");
    await t.set("ok");
    expect(parseResponse(await sipOverStream(t.port, options().text, secure)).status).toBe("SIP/2.0 200 OK");
    await t.remove();
  });

  it("parses several requests per connection, split anywhere, with bodies", async () => {
    const t = await target(kind);
    const { socket, rx } = await connect(t.port, secure);
    const a = options({ body: "v=0\r\n\r\nnot a header" }); // CRLFCRLF inside the body
    const b = options({ method: "INFO" });
    const c = options();
    const stream = `${a.text}${b.text}\r\n\r\n${c.text}`; // with a CRLF keep-alive ping in between
    for (let i = 0; i < stream.length; i += 37) socket.write(stream.slice(i, i + 37));
    await rx.wait(() => rx.text.split("SIP/2.0 200 OK").length === 4);
    const callIds = [...rx.text.matchAll(/^Call-ID: (.*)$/gm)].map((m) => m[1]);
    expect(callIds).toEqual([a.callId, b.callId, c.callId]);
    const info = await t.info();
    expect(info.requests.map((r) => r.method)).toEqual(["OPTIONS", "INFO", "OPTIONS"]);
    expect(info.requests[0]?.raw).toBe(a.text);
    expect(info.connections).toBe(1);
    socket.destroy();
    await t.remove();
  });

  it("runs a script one connection at a time", async () => {
    const t = await target(kind);
    await t.set("ok", { script: ["error", "closed", "silent", "garbage"] });
    expect(parseResponse(await sipOverStream(t.port, options().text, secure)).status).toBe(
      "SIP/2.0 503 Service Unavailable",
    );
    expect(await connectOutcome(t.port, secure)).toBe("ECONNRESET");
    const silent = await connect(t.port, secure);
    silent.socket.write(options().text);
    // The silent connection keeps its scripted mode; the next one takes the following step.
    expect(await sipOverStream(t.port, options().text, secure)).toBe("GARBAGE NOT SIP\r\n\r\n");
    expect(parseResponse(await sipOverStream(t.port, options().text, secure)).status).toBe("SIP/2.0 200 OK");
    expect(silent.rx.text).toBe("");
    silent.socket.destroy();
    expect(await t.info()).toMatchObject({ script: [], connections: 5 });
    await t.remove();
  });
});

describe("sip-udp target", () => {
  it("ok answers 200 to the sender, copying the headers", async () => {
    const t = await target("sip-udp");
    const req = options({ via: ["SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK-udp;rport"] });
    const res = parseResponse((await udpExchange(t.port, req.text)) ?? "");
    expect(res.status).toBe("SIP/2.0 200 OK");
    expect(res.all("Via")).toEqual(req.vias);
    expect(res.one("Call-ID")).toBe(req.callId);
    expect(res.one("CSeq")).toBe(req.cseq);
    expect(res.one("To")).toMatch(/;tag=/);
    expect((await t.info()).requests.map((r) => r.raw)).toEqual([req.text]);
    await t.remove();
  });

  it("error, garbage and silent", async () => {
    const t = await target("sip-udp", { mode: "error", status: 202 });
    expect(await udpExchange(t.port, options().text)).toMatch(/^SIP\/2\.0 503 Service Unavailable\r\n/);
    await t.set("garbage");
    expect(await udpExchange(t.port, options().text)).toBe("GARBAGE NOT SIP\r\n\r\n");
    await t.set("silent");
    expect(await udpExchange(t.port, options().text, SILENCE_MS)).toBeUndefined();
    expect((await t.info()).requests).toHaveLength(3);
    await t.remove();
  });

  it("closed closes the socket, then answers again on the same port", async () => {
    const t = await target("sip-udp");
    await t.set("closed");
    expect(await udpExchange(t.port, options().text, SILENCE_MS)).toBeUndefined();
    expect((await t.info()).connections).toBe(0); // nothing was listening
    await t.set("ok", { status: 202 });
    expect(await udpExchange(t.port, options().text)).toMatch(/^SIP\/2\.0 202 Accepted\r\n/);
    await t.remove();
  });

  it("runs a script one datagram at a time; a closed step drops the datagram", async () => {
    const t = await target("sip-udp");
    await t.set("ok", { script: ["closed", "error"] });
    expect(await udpExchange(t.port, options().text, SILENCE_MS)).toBeUndefined();
    expect(await udpExchange(t.port, options().text)).toMatch(/^SIP\/2\.0 503 /);
    expect(await udpExchange(t.port, options().text)).toMatch(/^SIP\/2\.0 200 OK\r\n/);
    expect(await t.info()).toMatchObject({ script: [], connections: 3 });
    expect((await t.info()).requests).toHaveLength(2);
    await t.remove();
  });
});

describe("requests log", () => {
  it("keeps the newest 50", async () => {
    const t = await target("sip-tcp", { mode: "silent" });
    const { socket, rx } = await connect(t.port);
    const reqs = Array.from({ length: 55 }, () => options());
    socket.write(reqs.map((r) => r.text).join(""));
    await expect.poll(async () => (await t.info()).requests.at(-1)?.raw, { timeout: DEADLINE_MS }).toBe(reqs[54]?.text);
    const info = await t.info();
    expect(info.requests).toHaveLength(50);
    expect(info.requests[0]?.raw).toBe(reqs[5]?.text);
    expect(rx.text).toBe("");
    socket.destroy();
    await t.remove();
  });
});

describe("close()", () => {
  it("closes every target, open connection and the control server", async () => {
    const own = await startTargetControl();
    const kinds: Kind[] = ["http", "tcp", "sip-tcp", "sip-tls", "sip-udp"];
    const targets = await Promise.all(kinds.map((k) => createTarget(own.port, k, { mode: "silent" })));
    const open = await Promise.all(
      targets.filter((t) => t.kind !== "sip-udp").map((t) => connect(t.port, t.kind === "sip-tls")),
    );
    await own.close();
    await Promise.all(open.map(({ rx }) => rx.wait(() => rx.closed)));
    expect(await connectOutcome(own.port)).toBe("ECONNREFUSED");
    for (const t of targets.filter((t) => t.kind !== "sip-udp"))
      expect(await connectOutcome(t.port)).toBe("ECONNREFUSED");
  });
});

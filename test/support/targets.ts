// Loopback probe targets for the tests, plus a small HTTP control server to create and steer them.
// Node only. Everything binds to 127.0.0.1 and nothing else.
import { randomBytes } from "node:crypto";
import dgram from "node:dgram";
import { readFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import type { Duplex } from "node:stream";
import tls from "node:tls";
import { z } from "zod";
import { KINDS, MODES, type Kind, type Mode, type SipRequestRecord, type TargetInfo } from "./target-client.js";

const HOST = "127.0.0.1";
const MAX_REQUESTS = 50;
const MAX_SIP_HEAD = 64 * 1024;
const MAX_SIP_BODY = 64 * 1024;
const MAX_CONTROL_BODY = 64 * 1024;

export interface TargetControl {
  port: number;
  close(): Promise<void>;
}

/** Starts the control server on an ephemeral loopback port (API in the brief / target-client.ts). */
export async function startTargetControl(): Promise<TargetControl> {
  const registry = new Registry();
  const server = http.createServer((req, res) => {
    route(registry, req, res).catch((err: unknown) => sendJson(res, 500, { error: errorText(err) }));
  });
  await listenTcp(server, 0);
  return {
    port: boundPort(server),
    async close() {
      await registry.closeAll();
      server.closeAllConnections();
      await closeServer(server);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Control API

const ModeSchema = z.enum(MODES);
const StatusSchema = z.number().int().min(100).max(699);
const CreateBody = z.strictObject({
  kind: z.enum(KINDS),
  mode: ModeSchema.optional(),
  status: StatusSchema.optional(),
});
const UpdateBody = z.strictObject({
  mode: ModeSchema,
  script: z.array(ModeSchema).max(1000).optional(),
  status: StatusSchema.optional(),
});

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

class Registry {
  private readonly targets = new Map<string, Target>();
  private seq = 0;

  async create(kind: Kind, mode: Mode, status: number | undefined): Promise<Target> {
    const name = `${kind}-${++this.seq}`;
    const target = kind === "sip-udp" ? new DatagramTarget(name, kind) : new StreamTarget(name, kind);
    await target.open();
    this.targets.set(name, target);
    await target.configure(mode, [], status);
    return target;
  }

  get(name: string): Target {
    const target = this.targets.get(name);
    if (!target) throw new HttpError(404, `unknown target "${name}"`);
    return target;
  }

  async remove(name: string): Promise<void> {
    const target = this.get(name);
    this.targets.delete(name);
    await target.dispose();
  }

  async closeAll(): Promise<void> {
    const all = [...this.targets.values()];
    this.targets.clear();
    await Promise.all(all.map((t) => t.dispose()));
  }
}

async function route(registry: Registry, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  try {
    const parts = new URL(req.url ?? "/", `http://${HOST}`).pathname.split("/").filter(Boolean);
    if (parts[0] !== "targets" || parts.length > 2) throw new HttpError(404, "no such route");
    if (parts.length === 1) {
      if (req.method !== "POST") throw new HttpError(405, "use POST /targets");
      const body = parseBody(CreateBody, await readJson(req));
      checkStatus(body.kind, body.status);
      const target = await registry.create(body.kind, body.mode ?? "ok", body.status);
      return sendJson(res, 201, { name: target.name, port: target.port });
    }
    const target = registry.get(decodeURIComponent(parts[1] ?? ""));
    switch (req.method) {
      case "GET":
        return sendJson(res, 200, target.info());
      case "PUT": {
        const body = parseBody(UpdateBody, await readJson(req));
        checkStatus(target.kind, body.status);
        await target.configure(body.mode, body.script ?? [], body.status);
        return sendEmpty(res, 204);
      }
      case "DELETE":
        await registry.remove(target.name);
        return sendEmpty(res, 204);
      default:
        throw new HttpError(405, "use GET, PUT or DELETE /targets/:name");
    }
  } catch (err) {
    if (err instanceof HttpError) return sendJson(res, err.status, { error: err.message });
    throw err;
  }
}

function parseBody<T>(schema: z.ZodType<T>, value: unknown): T {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const text = parsed.error.issues.map((i) => `${i.path.length ? i.path.join(".") : "body"}: ${i.message}`).join("; ");
  throw new HttpError(400, text);
}

/** Status ranges that make sense per protocol; tcp targets have no status at all. */
function checkStatus(kind: Kind, status: number | undefined): void {
  if (status === undefined) return;
  if (kind === "tcp") throw new HttpError(400, "status: not used by tcp targets");
  if (kind === "http" && (status < 200 || status > 599)) throw new HttpError(400, "status: HTTP targets take 200..599");
}

async function readJson(req: http.IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_CONTROL_BODY) throw new HttpError(413, "body: too large");
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString("utf8");
  try {
    return JSON.parse(text === "" ? "{}" : text);
  } catch {
    throw new HttpError(400, "body: not valid JSON");
  }
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) return void res.destroy();
  res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
}

function sendEmpty(res: http.ServerResponse, status: number): void {
  res.writeHead(status).end();
}

// ---------------------------------------------------------------------------------------------
// Targets

abstract class Target {
  port = 0;
  mode: Mode = "ok";
  script: Mode[] = [];
  status: number | undefined;
  connections = 0;
  requests: SipRequestRecord[] = [];
  // Mode changes re-bind sockets; serialising them keeps quick PUT sequences ordered.
  private queue: Promise<void> = Promise.resolve();

  constructor(
    readonly name: string,
    readonly kind: Kind,
  ) {}

  /** Binds an ephemeral port once; later re-binds reuse it. */
  async open(): Promise<void> {
    this.port = await this.bind(0);
  }

  configure(mode: Mode, script: Mode[], status: number | undefined): Promise<void> {
    return this.serial(async () => {
      this.script = [...script];
      this.status = status;
      const wasClosed = this.mode === "closed";
      this.mode = mode;
      if (mode === "closed" && !wasClosed) await this.unbind();
      if (mode !== "closed" && wasClosed) await this.rebind();
    });
  }

  dispose(): Promise<void> {
    return this.serial(() => this.unbind());
  }

  info(): TargetInfo {
    const { name, kind, port, mode, connections } = this;
    return {
      name,
      kind,
      port,
      mode,
      script: [...this.script],
      status: this.status ?? null,
      connections,
      requests: this.requests,
    };
  }

  /** The mode for a new connection (or datagram): the next script step, else the current mode. */
  protected nextMode(): { mode: Mode; scripted: boolean } {
    const step = this.script.shift();
    return step === undefined ? { mode: this.mode, scripted: false } : { mode: step, scripted: true };
  }

  protected record(req: SipRequest): void {
    this.requests.push(req);
    if (this.requests.length > MAX_REQUESTS) this.requests.shift();
  }

  /** The SIP reply for `mode`, or undefined when nothing should be sent. */
  protected sipReply(req: SipRequest, mode: Mode): string | undefined {
    if (req.method === "ACK") return undefined; // ACK never gets a response
    if (mode === "ok") return sipResponse(req, this.status ?? 200);
    if (mode === "error") return sipResponse(req, 503);
    if (mode === "garbage") return "GARBAGE NOT SIP\r\n\r\n";
    if (mode === "long-reason") return sipResponse(req, 200, LONG_REASON);
    return undefined;
  }

  protected abstract bind(port: number): Promise<number>;
  protected abstract unbind(): Promise<void>;

  private async rebind(): Promise<void> {
    try {
      await retryAddrInUse(() => this.bind(this.port));
    } catch (err) {
      this.mode = "closed";
      throw new HttpError(500, `cannot re-bind ${this.name} on port ${this.port}: ${errorText(err)}`);
    }
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn);
    this.queue = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }
}

/** One accepted connection: `raw` is the TCP socket, `stream` what the protocol talks over. */
interface Conn {
  raw: net.Socket;
  stream: Duplex;
  /** Set when a script step chose this connection's mode; otherwise the live mode applies. */
  pinned: Mode | undefined;
}

/** http, tcp, sip-tcp and sip-tls: one net.Server; TLS and HTTP are layered per connection. */
class StreamTarget extends Target {
  private server: net.Server | undefined;
  private readonly conns = new Map<net.Socket, Conn>();
  private readonly httpServer = this.kind === "http" ? this.createHttpServer() : undefined;

  protected async bind(port: number): Promise<number> {
    const server = net.createServer((socket) => this.accept(socket));
    await listenTcp(server, port);
    this.server = server;
    return boundPort(server);
  }

  /** Stops listening and resets every open connection, as if the service had died. */
  protected async unbind(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const conn of this.conns.values()) hardClose(conn);
    this.conns.clear();
    if (server) await closeServer(server);
  }

  private accept(raw: net.Socket): void {
    this.connections++;
    raw.on("error", () => undefined); // peers resetting us is part of the game
    const { mode, scripted } = this.nextMode();
    if (mode === "closed" || (mode === "error" && this.kind === "tcp")) return void raw.resetAndDestroy();
    const stream = this.kind === "sip-tls" ? wrapTls(raw) : raw;
    const conn: Conn = { raw, stream, pinned: scripted ? mode : undefined };
    this.conns.set(raw, conn);
    stream.on("close", () => this.conns.delete(raw));
    if (this.kind === "http") this.httpServer?.emit("connection", raw);
    else if (this.kind === "tcp") serveTcp(stream, mode);
    else this.serveSip(conn);
  }

  private modeOf(conn: Conn): Mode {
    return conn.pinned ?? this.mode;
  }

  private serveSip(conn: Conn): void {
    const parser = new SipStreamParser();
    conn.stream.on("data", (chunk: Buffer) => {
      const { requests, invalid } = parser.push(chunk);
      for (const req of requests) {
        this.record(req);
        const mode = this.modeOf(conn);
        if (mode === "closed") return void hardClose(conn);
        if (mode === "huge-body" || mode === "endless-headers") return void floodSip(conn.stream, req, mode);
        const reply = this.sipReply(req, mode);
        if (reply !== undefined) conn.stream.write(reply);
      }
      if (invalid) conn.stream.destroy(); // not SIP: drop the connection like a real UA would
    });
  }

  private createHttpServer(): http.Server {
    // Sockets are handed over with emit("connection"), so this server never listens itself.
    const server = http.createServer({ requestTimeout: 0 }, (req, res) => this.serveHttp(req, res));
    server.on("clientError", (_err, socket) => socket.destroy());
    return server;
  }

  private serveHttp(req: http.IncomingMessage, res: http.ServerResponse): void {
    const conn = this.conns.get(req.socket);
    const mode = conn ? this.modeOf(conn) : this.mode;
    req.resume(); // read (and discard) any body, whatever the mode
    const headers = { "content-type": "text/plain", connection: "close" };
    if (mode === "ok") res.writeHead(this.status ?? 200, headers).end("xivo-ha test target OK");
    else if (mode === "error") res.writeHead(503, headers).end("xivo-ha test target error");
    else if (mode === "garbage") req.socket.end("THIS IS NOT HTTP\r\n\r\n");
    else if (mode === "closed" && conn) hardClose(conn);
    // silent: keep the connection open and never answer
  }
}

function serveTcp(stream: Duplex, mode: Mode): void {
  stream.resume(); // read and discard whatever the prober sends
  if (mode === "garbage") stream.write("THIS IS JUNK, NOT A PROTOCOL\r\n");
  // ok and silent: accepted and kept open, nothing said
}

/** sip-udp: one datagram socket; "connections" counts datagrams. */
class DatagramTarget extends Target {
  private socket: dgram.Socket | undefined;

  protected async bind(port: number): Promise<number> {
    const socket = dgram.createSocket("udp4");
    socket.on("message", (msg, rinfo) => this.receive(socket, msg, rinfo));
    await new Promise<void>((resolve, reject) => {
      socket.once("error", reject);
      socket.bind({ port, address: HOST, exclusive: true }, () => {
        socket.off("error", reject);
        resolve();
      });
    }).catch((err: unknown) => {
      socket.close();
      throw err;
    });
    socket.on("error", () => undefined); // e.g. ICMP unreachable on a reply: not our problem
    this.socket = socket;
    return socket.address().port;
  }

  protected async unbind(): Promise<void> {
    const socket = this.socket;
    this.socket = undefined;
    if (socket) await new Promise<void>((resolve) => socket.close(() => resolve()));
  }

  private receive(socket: dgram.Socket, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    this.connections++;
    const { mode } = this.nextMode();
    if (mode === "closed") return; // a scripted drop: as if the datagram was lost
    const req = parseSipDatagram(msg);
    if (!req) return; // keep-alives and junk get no answer
    this.record(req);
    const reply = this.sipReply(req, mode);
    if (reply !== undefined) socket.send(reply, rinfo.port, rinfo.address);
  }
}

let tlsContext: tls.SecureContext | undefined;

/** Server side of TLS over an accepted socket, with the loopback test certificate. */
function wrapTls(raw: net.Socket): tls.TLSSocket {
  tlsContext ??= tls.createSecureContext({
    cert: readFileSync(new URL("../fixtures/tls/server.pem", import.meta.url)),
    key: readFileSync(new URL("../fixtures/tls/server.key", import.meta.url)),
  });
  const stream = new tls.TLSSocket(raw, { isServer: true, secureContext: tlsContext });
  stream.on("error", () => stream.destroy()); // failed handshakes are the client's business
  return stream;
}

/** Resets the connection (RST) rather than closing it politely. */
function hardClose(conn: Conn): void {
  // Reset only a connection that is fully open: resetting one the peer already half-closed
  // leaves Node spinning in its handle cleanup at exit (seen with Node 20).
  if (!conn.raw.destroyed && conn.raw.readyState === "open") {
    try {
      conn.raw.resetAndDestroy();
    } catch {
      conn.raw.destroy(); // the TCP handle may have been taken over by TLS
    }
  }
  conn.stream.destroy();
}

// ---------------------------------------------------------------------------------------------
// SIP parsing and responses

type SipRequest = SipRequestRecord;

const COMPACT: Record<string, string> = { v: "via", f: "from", t: "to", i: "call-id", l: "content-length" };

/** Lower-case long form of a header name, compact forms expanded. */
function headerKey(name: string): string {
  const lower = name.toLowerCase();
  return COMPACT[lower] ?? lower;
}

function findHeader(req: { headers: [string, string][] }, key: string): string | undefined {
  return req.headers.find(([name]) => headerKey(name) === key)?.[1];
}

const REQUEST_LINE = /^([!%'*+\-.0-9A-Za-z_`~]+) (\S+) SIP\/2\.0$/;

function parseSipHead(head: string): Omit<SipRequest, "raw"> | undefined {
  const [start = "", ...lines] = head.split("\r\n");
  const m = REQUEST_LINE.exec(start);
  if (!m) return undefined;
  const headers: [string, string][] = [];
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon <= 0) return undefined;
    headers.push([line.slice(0, colon).trim(), line.slice(colon + 1).trim()]);
  }
  return { method: m[1] ?? "", requestUri: m[2] ?? "", headers };
}

/** Content-Length as a number, undefined if absent, NaN if malformed or too big. */
function contentLength(req: { headers: [string, string][] }): number | undefined {
  const value = findHeader(req, "content-length");
  if (value === undefined) return undefined;
  return /^\d+$/.test(value) && Number(value) <= MAX_SIP_BODY ? Number(value) : NaN;
}

/** Splits a TCP/TLS byte stream into SIP requests (RFC 3261 §18.3 framing by Content-Length). */
class SipStreamParser {
  private buf = Buffer.alloc(0);

  push(chunk: Buffer): { requests: SipRequest[]; invalid: boolean } {
    this.buf = Buffer.concat([this.buf, chunk]);
    const requests: SipRequest[] = [];
    for (;;) {
      this.skipKeepAlives();
      const end = this.buf.indexOf("\r\n\r\n");
      if (end < 0) return { requests, invalid: this.buf.length > MAX_SIP_HEAD };
      const head = parseSipHead(this.buf.subarray(0, end).toString("utf8"));
      const length = head && (contentLength(head) ?? 0); // a stream without Content-Length: no body
      if (!head || length === undefined || Number.isNaN(length)) return { requests, invalid: true };
      const total = end + 4 + length;
      if (this.buf.length < total) return { requests, invalid: false };
      requests.push({ ...head, raw: this.buf.subarray(0, total).toString("utf8") });
      this.buf = this.buf.subarray(total);
    }
  }

  /** Leading CRLFs are keep-alive pings (RFC 5626), not part of a message. */
  private skipKeepAlives(): void {
    let i = 0;
    while (this.buf[i] === 0x0d && this.buf[i + 1] === 0x0a) i += 2;
    if (i > 0) this.buf = this.buf.subarray(i);
  }
}

/** One datagram, one message; without Content-Length the body is the rest of the datagram. */
function parseSipDatagram(msg: Buffer): SipRequest | undefined {
  const end = msg.indexOf("\r\n\r\n");
  if (end < 0) return undefined;
  const head = parseSipHead(msg.subarray(0, end).toString("utf8"));
  if (!head) return undefined;
  const length = contentLength(head) ?? msg.length - end - 4;
  if (Number.isNaN(length) || msg.length < end + 4 + length) return undefined;
  return { ...head, raw: msg.subarray(0, end + 4 + length).toString("utf8") };
}

const REASONS: Record<number, string> = {
  100: "Trying",
  180: "Ringing",
  181: "Call Is Being Forwarded",
  182: "Queued",
  183: "Session Progress",
  200: "OK",
  202: "Accepted",
  300: "Multiple Choices",
  301: "Moved Permanently",
  302: "Moved Temporarily",
  305: "Use Proxy",
  380: "Alternative Service",
  400: "Bad Request",
  401: "Unauthorized",
  402: "Payment Required",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  406: "Not Acceptable",
  407: "Proxy Authentication Required",
  408: "Request Timeout",
  410: "Gone",
  413: "Request Entity Too Large",
  414: "Request-URI Too Long",
  415: "Unsupported Media Type",
  416: "Unsupported URI Scheme",
  420: "Bad Extension",
  421: "Extension Required",
  423: "Interval Too Brief",
  480: "Temporarily Unavailable",
  481: "Call/Transaction Does Not Exist",
  482: "Loop Detected",
  483: "Too Many Hops",
  484: "Address Incomplete",
  485: "Ambiguous",
  486: "Busy Here",
  487: "Request Terminated",
  488: "Not Acceptable Here",
  491: "Request Pending",
  493: "Undecipherable",
  500: "Server Internal Error",
  501: "Not Implemented",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Server Time-out",
  505: "Version Not Supported",
  513: "Message Too Large",
  600: "Busy Everywhere",
  603: "Decline",
  604: "Does Not Exist Anywhere",
  606: "Not Acceptable",
};

const CLASS_REASONS = ["", "Provisional", "Success", "Redirection", "Client Error", "Server Error", "Global Failure"];

function reasonPhrase(status: number): string {
  return REASONS[status] ?? CLASS_REASONS[Math.floor(status / 100)] ?? "Unknown";
}

/** A response per RFC 3261 §8.2.6: Vias in order, From, To (tagged), Call-ID and CSeq copied. */
function sipResponse(req: SipRequest, status: number, reason = reasonPhrase(status)): string {
  const lines = [`SIP/2.0 ${status} ${reason}`];
  for (const [name, value] of req.headers) if (headerKey(name) === "via") lines.push(`Via: ${value}`);
  const copy = (key: string, name: string, fix: (v: string) => string = (v) => v): void => {
    const value = findHeader(req, key);
    if (value !== undefined) lines.push(`${name}: ${fix(value)}`);
  };
  copy("from", "From");
  copy("to", "To", (v) => (status > 100 ? withToTag(v) : v)); // 100 Trying carries no tag
  copy("call-id", "Call-ID");
  copy("cseq", "CSeq");
  lines.push("Allow: INVITE, ACK, CANCEL, OPTIONS, BYE", "Content-Length: 0");
  return `${lines.join("\r\n")}\r\n\r\n`;
}

/** Just under the prober's 16 KiB header block, in characters JSON escapes to six (or two) each. */
const LONG_REASON = '\u0001"\\'.repeat(5_000);

/**
 * Streams a response that never ends, as fast as the prober reads, until it hangs up: a body of
 * the gigabyte its Content-Length announces, or header lines without end.
 */
function floodSip(stream: Duplex, req: SipRequest, mode: "huge-body" | "endless-headers"): void {
  const head = sipResponse(req, 200).replace("Content-Length: 0", "Content-Length: 1000000000");
  const chunk = mode === "huge-body" ? "x".repeat(64 * 1024) : `X-Filler: ${"y".repeat(1000)}\r\n`.repeat(64);
  stream.write(mode === "huge-body" ? head : head.slice(0, head.indexOf("\r\n") + 2));
  const pump = () => {
    while (!stream.destroyed && stream.writable) if (!stream.write(chunk)) return void stream.once("drain", pump);
  };
  pump();
}

/** Adds a tag unless the To header already has one (looked for after the URI, not inside it). */
function withToTag(to: string): string {
  const params = to.includes(">") ? to.slice(to.lastIndexOf(">") + 1) : to;
  return /;\s*tag\s*=/i.test(params) ? to : `${to};tag=${randomBytes(6).toString("hex")}`;
}

// ---------------------------------------------------------------------------------------------
// Socket plumbing

function listenTcp(server: net.Server, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen({ port, host: HOST, exclusive: true }, () => {
      server.off("error", reject);
      resolve();
    });
  });
}

function closeServer(server: net.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

function boundPort(server: net.Server): number {
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("server is not listening on TCP");
  return address.port;
}

/** Re-binding a port we just released can briefly collide (e.g. with an outgoing socket). */
async function retryAddrInUse<T>(fn: () => Promise<T>, attempts = 20): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EADDRINUSE" || i >= attempts) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

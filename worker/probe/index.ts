import { connect } from "cloudflare:sockets";
import { MAX_DETAIL_CHARS, type ProbeResult } from "../../protocol/verdict.js";
import type { HttpProbe, Probe, SipProbe, TcpProbe } from "../config.js";
import { clip } from "../../protocol/encoding.js";
import { GarbageError, SipResponseReader, formatOptions, newOptionsRequest } from "../../protocol/sip.js";

/**
 * The edge's probes. Each one has its own timeout and always resolves to a result (ok or fail
 * with a reason and the round-trip time); none throws, so one broken target never spoils a round.
 */
export async function runProbe(probe: Probe, masterHost: string): Promise<ProbeResult> {
  const host = probe.host ?? masterHost;
  const started = Date.now();
  const base = { name: probe.name, kind: probe.kind, critical: probe.critical };
  try {
    const detail = await withTimeout(probe.timeoutMs, (signal) => {
      switch (probe.kind) {
        case "http":
          return probeHttp(probe, host, signal);
        case "tcp":
          return probeTcp(probe, host, signal);
        case "sip":
          return probeSip(probe, host, signal);
      }
    });
    return { ...base, ok: true, detail: clip(detail, MAX_DETAIL_CHARS), rttMs: Date.now() - started };
  } catch (err) {
    const timedOut = err instanceof TimeoutError;
    // Bounded whatever the target said: details travel in every verdict (see protocol/verdict.ts).
    return {
      ...base,
      ok: false,
      detail: clip(describe(err), MAX_DETAIL_CHARS),
      rttMs: timedOut ? null : Date.now() - started,
    };
  }
}

type Socket = ReturnType<typeof connect>;

class TimeoutError extends Error {}
class ProbeFailure extends Error {}

/** Runs `work` with an AbortSignal that fires, and a rejection that wins, after `ms`. */
async function withTimeout<T>(ms: number, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ctl = new AbortController();
  let timer: ReturnType<typeof setTimeout> | null = null;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new TimeoutError(`timeout after ${ms} ms`));
      ctl.abort();
    }, ms);
  });
  try {
    return await Promise.race([work(ctl.signal), timeout]);
  } finally {
    if (timer !== null) clearTimeout(timer);
  }
}

function describe(err: unknown): string {
  if (err instanceof TimeoutError || err instanceof ProbeFailure || err instanceof GarbageError) return err.message;
  const msg = err instanceof Error ? err.message : String(err);
  // workerd's socket and fetch errors are terse or opaque; say what they mean for a probe.
  if (/cannot connect|refused/i.test(msg)) return "connection refused or host unreachable";
  if (/connection lost/i.test(msg)) return "connection failed or closed by the peer";
  if (/^internal error/i.test(msg)) return "invalid response (not HTTP)";
  return msg.slice(0, 300);
}

function urlHost(host: string): string {
  return host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
}

async function probeHttp(p: HttpProbe, host: string, signal: AbortSignal): Promise<string> {
  const port = p.port ? `:${p.port}` : "";
  const res = await fetch(`${p.scheme}://${urlHost(host)}${port}${p.path}`, {
    method: p.method,
    redirect: "manual",
    signal,
  });
  const { min, max } = p.expectStatus;
  if (res.status < min || res.status > max) {
    await res.body?.cancel();
    throw new ProbeFailure(`HTTP ${res.status}, expected ${min}-${max}`);
  }
  if (p.bodyKeyword && p.method === "GET") {
    const body = await readPrefix(res, 256 * 1024);
    if (!body.includes(p.bodyKeyword)) throw new ProbeFailure(`HTTP ${res.status} but body lacks "${p.bodyKeyword}"`);
  } else {
    await res.body?.cancel();
  }
  return `HTTP ${res.status}`;
}

/** Reads at most `limit` bytes of a body: a keyword check must not download a whole ISO. */
async function readPrefix(res: Response, limit: number): Promise<string> {
  if (!res.body) return "";
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let text = "";
  let bytes = 0;
  while (bytes < limit) {
    const { value, done } = await reader.read();
    if (done) break;
    bytes += value.byteLength;
    text += decoder.decode(value, { stream: true });
  }
  await reader.cancel().catch(() => {});
  return text;
}

async function probeTcp(p: TcpProbe, host: string, signal: AbortSignal): Promise<string> {
  return withSocket(connect({ hostname: host, port: p.port }), signal, async () => `connected to port ${p.port}`);
}

async function probeSip(p: SipProbe, host: string, signal: AbortSignal): Promise<string> {
  const port = p.port ?? (p.transport === "tls" ? 5061 : 5060);
  const request = newOptionsRequest(host, port, p.transport);
  const socket = connect(
    { hostname: host, port },
    { secureTransport: p.transport === "tls" ? "on" : "off", allowHalfOpen: false },
  );
  return withSocket(socket, signal, async () => {
    const writer = socket.writable.getWriter();
    await writer.write(new TextEncoder().encode(formatOptions(request)));
    writer.releaseLock();
    const reader = socket.readable.getReader();
    const decoder = new TextDecoder();
    const sip = new SipResponseReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) throw new ProbeFailure("connection closed before a final SIP response");
      for (const res of sip.push(decoder.decode(value, { stream: true }))) {
        if (res.headers.get("call-id") !== request.callId) throw new ProbeFailure("SIP response for another Call-ID");
        if (res.status < 200) continue; // 1xx: provisional, wait for the final answer
        const line = `SIP/2.0 ${res.status} ${res.reasonPhrase}`.trim();
        if (p.acceptCodes && !p.acceptCodes.includes(res.status)) {
          throw new ProbeFailure(`${line}, expected ${p.acceptCodes.join("/")}`);
        }
        return line;
      }
    }
  });
}

/** Opens, uses and always closes a socket; an abort (the probe's timeout) closes it at once. */
async function withSocket<T>(socket: Socket, signal: AbortSignal, use: () => Promise<T>): Promise<T> {
  socket.closed.catch(() => {}); // a refused connection rejects `closed` too; `opened` reports it
  const closeOnAbort = () => void socket.close().catch(() => {});
  signal.addEventListener("abort", closeOnAbort);
  try {
    await socket.opened;
    return await use();
  } finally {
    signal.removeEventListener("abort", closeOnAbort);
    await socket.close().catch(() => {});
  }
}

import { connect } from "cloudflare:sockets";
import { MAX_DETAIL_CHARS, type ProbeResult } from "../../protocol/verdict.js";
import type { HttpProbe, Probe, SipProbe, TcpProbe } from "../config.js";
import { clip } from "../../protocol/encoding.js";
import { GarbageError, SipResponseReader, formatOptions, newOptionsRequest } from "../../protocol/sip.js";

/**
 * The edge's probes. Each one has its own timeout and always resolves to a result (ok or fail
 * with a reason and the round-trip time); none throws, so one broken target never spoils a round.
 * A failed attempt is tried again inside the same timeout (see `attempt`): the probe fails only
 * when every attempt failed, or the timeout passed.
 */
export async function runProbe(probe: Probe, masterHost: string): Promise<ProbeResult> {
  const host = probe.host ?? masterHost;
  const base = { name: probe.name, kind: probe.kind, critical: probe.critical };
  const outcome = await attempt(probe.timeoutMs, 1 + probe.retries, (signal) => {
    switch (probe.kind) {
      case "http":
        return probeHttp(probe, host, signal);
      case "tcp":
        return probeTcp(probe, host, signal);
      case "sip":
        return probeSip(probe, host, signal);
    }
  });
  const { attempts, rttMs } = outcome;
  // Bounded whatever the target said: details travel in every verdict (see protocol/verdict.ts).
  if (outcome.ok) return { ...base, ok: true, detail: clip(outcome.value, MAX_DETAIL_CHARS), rttMs, attempts };
  return { ...base, ok: false, detail: clip(describe(outcome.error), MAX_DETAIL_CHARS), rttMs, attempts };
}

type Socket = ReturnType<typeof connect>;

class TimeoutError extends Error {}
class ProbeFailure extends Error {}

type Attempted<T> = { attempts: number; rttMs: number | null } & (
  | { ok: true; value: T }
  | { ok: false; error: unknown }
);

/**
 * Runs `work` up to `maxAttempts` times within one budget of `budgetMs`, all attempts aborted
 * (through their signal) when one succeeds or the budget runs out.
 *
 * A new attempt starts as soon as every attempt so far has failed (a reset, a refusal: retried at
 * once), and at the latest at k × budget / maxAttempts for the k-th retry, while the earlier ones
 * keep running: a lost SYN or request is never answered, so waiting for its timeout before trying
 * again would cost the whole budget. The round therefore never lasts longer than with one attempt
 * (a blackholed master fails after `budgetMs`, as before), and a slow but living master still has
 * the whole budget on its first attempt. rttMs is the successful attempt's own time (null on a
 * timeout), so retries do not show up as latency.
 */
async function attempt<T>(
  budgetMs: number,
  maxAttempts: number,
  work: (signal: AbortSignal) => Promise<T>,
): Promise<Attempted<T>> {
  const ctl = new AbortController();
  const timers: ReturnType<typeof setTimeout>[] = [];
  const t0 = Date.now();
  let started = 0;
  let failed = 0;
  let settle: (r: Attempted<T>) => void = () => {};
  const done = new Promise<Attempted<T>>((resolve) => {
    settle = (r) => {
      settle = () => {};
      for (const t of timers) clearTimeout(t);
      ctl.abort();
      resolve(r);
    };
  });
  const start = () => {
    if (ctl.signal.aborted || started >= maxAttempts) return;
    const n = ++started;
    const at = Date.now();
    work(ctl.signal).then(
      (value) => settle({ ok: true, value, attempts: n, rttMs: Date.now() - at }),
      (error: unknown) => {
        failed++;
        if (failed === maxAttempts) settle({ ok: false, error, attempts: failed, rttMs: Date.now() - t0 });
        else if (failed === started) start();
      },
    );
  };
  const timeout = new TimeoutError(`timeout after ${budgetMs} ms`);
  timers.push(setTimeout(() => settle({ ok: false, error: timeout, attempts: started, rttMs: null }), budgetMs));
  for (let k = 1; k < maxAttempts; k++) timers.push(setTimeout(start, (k * budgetMs) / maxAttempts));
  start();
  return done;
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
    const reader = socket.readable.getReader();
    // Read while the request is written, not after: when the peer resets the connection as the
    // request goes out, workerd can leave the write pending for good while the read side sees the
    // end, so awaiting the write first turned a reset into a timeout. A failed write fails at once.
    const sent = socket.writable.getWriter().write(new TextEncoder().encode(formatOptions(request)));
    return Promise.race([sent.then(() => new Promise<never>(() => {})), readFinalResponse(p, request.callId, reader)]);
  });
}

/** Reads up to the final response to the OPTIONS whose Call-ID is `callId`: its status line. */
async function readFinalResponse(
  p: SipProbe,
  callId: string,
  reader: ReadableStreamDefaultReader<Uint8Array>,
): Promise<string> {
  const decoder = new TextDecoder();
  const sip = new SipResponseReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) throw new ProbeFailure("connection closed before a final SIP response");
    for (const res of sip.push(decoder.decode(value, { stream: true }))) {
      if (res.headers.get("call-id") !== callId) throw new ProbeFailure("SIP response for another Call-ID");
      if (res.status < 200) continue; // 1xx: provisional, wait for the final answer
      const line = `SIP/2.0 ${res.status} ${res.reasonPhrase}`.trim();
      if (p.acceptCodes && !p.acceptCodes.includes(res.status)) {
        throw new ProbeFailure(`${line}, expected ${p.acceptCodes.join("/")}`);
      }
      return line;
    }
  }
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

import { GarbageError } from "../../protocol/sip.js";

/**
 * What every LAN probe shares: one deadline per probe, an AbortSignal that tells the probe to
 * release its socket, and short failure texts that say what happened in network terms.
 */

export class TimeoutError extends Error {}
/** A failure the probe itself diagnosed; its message is the detail as is. */
export class ProbeFailure extends Error {}

export interface ProbeContext {
  signal: AbortSignal;
  /** What the probe was waiting for, added to the timeout detail ("connected, no SIP response"). */
  note?: string;
}

/**
 * Runs `work` under a deadline: after `ms` the returned promise rejects with a TimeoutError and
 * the signal fires, so the probe closes its socket. The work's own late settlement is ignored.
 */
export async function withTimeout<T>(ms: number, work: (ctx: ProbeContext) => Promise<T>): Promise<T> {
  const ctl = new AbortController();
  const ctx: ProbeContext = { signal: ctl.signal };
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new TimeoutError(`timeout after ${ms} ms${ctx.note ? ` (${ctx.note})` : ""}`));
      ctl.abort();
    }, ms);
  });
  const running = work(ctx);
  running.catch(() => undefined); // a rejection after the deadline has nobody left to tell
  try {
    return await Promise.race([running, timeout]);
  } finally {
    clearTimeout(timer);
    ctl.abort(); // whatever happened, the probe's sockets go now
  }
}

const ERRNO: Record<string, string> = {
  ECONNREFUSED: "connection refused",
  ECONNRESET: "connection reset by peer",
  EPIPE: "connection closed by peer",
  EHOSTUNREACH: "host unreachable",
  ENETUNREACH: "network unreachable",
  EHOSTDOWN: "host down",
  ETIMEDOUT: "timed out (kernel)",
  ENOTFOUND: "host name not found",
  EAI_AGAIN: "host name lookup failed (temporary)",
  EADDRNOTAVAIL: "address not available",
};

/** A short, human reading of any error a probe may meet. */
export function describe(err: unknown): string {
  if (err instanceof TimeoutError || err instanceof ProbeFailure || err instanceof GarbageError) return err.message;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code === "string" && ERRNO[code]) return ERRNO[code];
  const msg = err instanceof Error ? err.message : String(err);
  return (code && !msg.includes(code) ? `${code}: ${msg}` : msg).slice(0, 200);
}

/** Host as it goes in a human message: IPv6 literals bracketed. */
export function hostPort(host: string, port: number): string {
  return `${host.includes(":") ? `[${host}]` : host}:${port}`;
}

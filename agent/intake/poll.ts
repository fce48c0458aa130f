import { randomBytes } from "node:crypto";
import { Nonce } from "../../protocol/verdict.js";

/**
 * One poll of the worker's verdict endpoint. Never throws: every outcome (an answer, an HTTP
 * error, a network error or a timeout) comes back as a value for the source to count and log.
 * The bearer token goes in the Authorization header only, never in the URL or an outcome.
 */

/** The largest answer read; a signed verdict is a few kilobytes. */
const MAX_BODY_BYTES = 1024 * 1024;

export type PollOutcome =
  /** A 200 answer whose body parsed as JSON: still to be checked by acceptVerdict. */
  | { kind: "answer"; body: unknown; nonce: string; sentAtMono: number; receivedAtMono: number }
  /** A 200 answer whose body is not JSON (or too large). */
  | { kind: "malformed"; detail: string; nonce: string; receivedAtMono: number }
  /** Any other status; `code` and `message` come from the worker's `{error:{code,message}}` body when present. */
  | { kind: "http-error"; status: number; code: string | null; message: string | null }
  /** Refused, reset, DNS, TLS, timeout... */
  | { kind: "network-error"; detail: string };

export interface PollRequest {
  url: string;
  clusterId: string;
  token: string;
  timeoutMs: number;
  mono: () => number;
  /** Aborts the request when the source stops. */
  signal?: AbortSignal;
}

/** An unguessable URL-safe nonce (32 characters), valid for the worker's Nonce schema. */
export function newNonce(): string {
  return Nonce.parse(randomBytes(24).toString("base64url"));
}

/** A path on the worker; `base` is a `WorkerUrl` (agent/config.ts), trailing slashes already gone. */
export function workerUrl(base: string, path: `/${string}`): string {
  return `${base}${path}`;
}

/** Every URL the agent builds for its cluster (verdict, push, report): the id always encoded. */
export function clusterUrl(base: string, clusterId: string, tail?: "verdict" | "push" | "report"): string {
  return workerUrl(base, `/v1/clusters/${encodeURIComponent(clusterId)}${tail ? `/${tail}` : ""}`);
}

export function verdictUrl(base: string, clusterId: string, nonce: string): string {
  return `${clusterUrl(base, clusterId, "verdict")}?nonce=${encodeURIComponent(nonce)}`;
}

export async function requestVerdict(req: PollRequest): Promise<PollOutcome> {
  const nonce = newNonce();
  const timeout = AbortSignal.timeout(req.timeoutMs);
  const signal = req.signal ? AbortSignal.any([timeout, req.signal]) : timeout;
  const sentAtMono = req.mono();
  try {
    const res = await fetch(verdictUrl(req.url, req.clusterId, nonce), {
      headers: { authorization: `Bearer ${req.token}`, accept: "application/json" },
      redirect: "error",
      signal,
    });
    const text = await readBounded(res, MAX_BODY_BYTES);
    const receivedAtMono = req.mono();
    if (res.status !== 200) {
      const err = errorBody(text);
      return { kind: "http-error", status: res.status, code: err.code, message: err.message };
    }
    if (text === null)
      return { kind: "malformed", detail: `answer larger than ${MAX_BODY_BYTES} bytes`, nonce, receivedAtMono };
    try {
      return { kind: "answer", body: JSON.parse(text) as unknown, nonce, sentAtMono, receivedAtMono };
    } catch {
      return { kind: "malformed", detail: "answer is not JSON", nonce, receivedAtMono };
    }
  } catch (err) {
    if (timeout.aborted) return { kind: "network-error", detail: `no answer within ${req.timeoutMs} ms` };
    return { kind: "network-error", detail: describe(err) };
  }
}

/** The body as text, or null (and the rest discarded) once it exceeds `max` bytes. */
async function readBounded(res: Response, max: number): Promise<string | null> {
  if (!res.body) return "";
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel().catch(() => {});
      return null;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/** 401, 403, 404: the worker refuses this agent's token or cluster; retrying fast will not help. */
export const isConfigRefusal = (status: number | null | undefined) =>
  status === 401 || status === 403 || status === 404;

/** The worker's `{error: {code, message}}`, clipped; nulls when the body is not that. */
export function errorBody(text: string | null): { code: string | null; message: string | null } {
  try {
    const parsed = JSON.parse(text ?? "") as { error?: { code?: unknown; message?: unknown } };
    const code = typeof parsed.error?.code === "string" ? parsed.error.code.slice(0, 100) : null;
    const message = typeof parsed.error?.message === "string" ? parsed.error.message.slice(0, 500) : null;
    return { code, message };
  } catch {
    return { code: null, message: null };
  }
}

/** fetch wraps the real cause (ECONNREFUSED...) in a generic "fetch failed". */
export function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = (err as { cause?: unknown }).cause;
  if (cause instanceof Error) {
    const code = (cause as { code?: unknown }).code;
    return typeof code === "string" ? `${code}: ${cause.message}` : cause.message;
  }
  return err.message;
}

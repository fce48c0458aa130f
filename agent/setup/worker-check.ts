import { z } from "zod";
import { PublicJwk } from "../../protocol/signing.js";
import { describe, errorBody, requestVerdict, workerUrl } from "../intake/poll.js";
import { judgePoll, type PollJudgement } from "../intake/poll-judge.js";

/**
 * What `init` and `doctor` ask the worker, with every failure sorted into what an administrator
 * can fix: the URL (name, port, route), TLS (the certificate), the token with its cluster id.
 */

export type Problem = "url" | "tls" | "timeout" | "token" | "http" | "verdict";

export type Failure = { ok: false; problem: Problem; detail: string };

/** Node's TLS error codes (the cause of a failed fetch or WebSocket). */
const TLS_CODES =
  /^(ERR_TLS_|ERR_SSL_|CERT_|DEPTH_ZERO_|SELF_SIGNED_|UNABLE_TO_(GET|VERIFY)_|HOSTNAME_MISMATCH|ERR_CERT_)/;

/** A network failure's detail ("CODE: message"), sorted. */
export function networkFailure(detail: string, timedOut = false): Failure {
  const code = /^([A-Z0-9_]+):/.exec(detail)?.[1] ?? "";
  if (timedOut || /^no answer within/.test(detail) || code === "UND_ERR_CONNECT_TIMEOUT")
    return { ok: false, problem: "timeout", detail };
  if (TLS_CODES.test(code) || /certificate|SSL routines|wrong version number/i.test(detail))
    return { ok: false, problem: "tls", detail };
  return { ok: false, problem: "url", detail };
}

/** The fix, in a few words, for each kind of failure. */
export function fixFor(problem: Problem): string {
  switch (problem) {
    case "url":
      return "check the worker URL (host name, port, firewall / outbound proxy)";
    case "tls":
      return "the worker's certificate is not trusted here: check the URL's host name, the system CA store and the clock";
    case "timeout":
      return "the worker did not answer in time: check the network path (outbound 443)";
    case "token":
      // The worker answers an unknown cluster as it does a wrong token: the id may be the mistake.
      return "the worker refused the token for this cluster id: check the token and --cluster (clusterId)";
    case "http":
      return "unexpected answer: check that the URL is the xivo-ha worker's";
    case "verdict":
      return "the verdict did not verify: check the configured public key and the clock";
  }
}

const KeysBody = z.object({ keys: z.array(z.unknown()) });

export interface WorkerKeys {
  ok: true;
  /** The keys that parse as Ed25519 public JWKs. */
  keys: PublicJwk[];
  /** The worker's clock per its Date header (ms), and the local clock half way through the request. */
  serverDateMs: number | null;
  localMidMs: number;
}

/** GET /v1/keys: public, so it proves the URL and TLS before the token is tried. `url`: a `WorkerUrl`. */
export async function fetchKeys(url: string, timeoutMs = 10_000): Promise<WorkerKeys | Failure> {
  const timeout = AbortSignal.timeout(timeoutMs);
  const t0 = Date.now();
  let res: Response;
  let text: string;
  try {
    res = await fetch(workerUrl(url, "/v1/keys"), {
      headers: { accept: "application/json" },
      redirect: "error",
      signal: timeout,
    });
    text = await res.text();
  } catch (err) {
    return networkFailure(timeout.aborted ? `no answer within ${timeoutMs} ms` : describe(err), timeout.aborted);
  }
  const t1 = Date.now();
  if (res.status !== 200) {
    const e = errorBody(text);
    return {
      ok: false,
      problem: "http",
      detail: `GET /v1/keys: HTTP ${res.status}${e.message ? `: ${e.message}` : ""}`,
    };
  }
  let body: z.infer<typeof KeysBody>;
  try {
    body = KeysBody.parse(JSON.parse(text));
  } catch {
    return { ok: false, problem: "http", detail: "GET /v1/keys did not answer with {keys: [...]}" };
  }
  const keys = body.keys.flatMap((k) => {
    const p = PublicJwk.safeParse(k);
    return p.success ? [p.data] : [];
  });
  if (keys.length === 0) return { ok: false, problem: "http", detail: "GET /v1/keys listed no Ed25519 key" };
  const date = Date.parse(res.headers.get("date") ?? "");
  return { ok: true, keys, serverDateMs: Number.isNaN(date) ? null : date, localMidMs: Math.round((t0 + t1) / 2) };
}

export interface VerdictCheck {
  clusterId: string;
  url: string;
  token: string;
  publicKeys: PublicJwk[];
  maxVerdictAgeMs: number;
  timeoutMs?: number;
}

export type VerdictOutcome = { ok: true; judgement: Extract<PollJudgement, { kind: "accepted" }> } | Failure;

/**
 * One verdict fetch with a fresh nonce, judged exactly as the daemon judges a poll. 401/403: the
 * token or the cluster id (the worker does not tell an unknown cluster from a private one).
 */
export async function checkVerdict(c: VerdictCheck): Promise<VerdictOutcome> {
  const mono = () => performance.now();
  const out = await requestVerdict({
    url: c.url,
    clusterId: c.clusterId,
    token: c.token,
    timeoutMs: c.timeoutMs ?? 10_000,
    mono,
  });
  if (out.kind === "network-error") return networkFailure(out.detail);
  if (out.kind === "http-error") {
    const detail = `HTTP ${out.status}${out.code ? ` ${out.code}` : ""}${out.message ? `: ${out.message}` : ""}`;
    if (out.status === 401 || out.status === 403) return { ok: false, problem: "token", detail };
    return { ok: false, problem: "http", detail };
  }
  const judged = await judgePoll(
    out,
    { clusterId: c.clusterId, publicKeys: c.publicKeys, maxVerdictAgeMs: c.maxVerdictAgeMs },
    mono,
  );
  if (judged.kind === "accepted") return { ok: true, judgement: judged };
  const detail = judged.kind === "rejected" ? `${judged.rejection.reason}: ${judged.rejection.detail}` : judged.detail;
  return { ok: false, problem: "verdict", detail };
}

import type { IncomingMessage } from "node:http";
import WebSocket from "ws";
import type { Config } from "../config.js";
import { describe, errorBody } from "../intake/poll.js";
import { pushUrl } from "../intake/push.js";
import { insecureUrl } from "../../protocol/host.js";
import { keyFingerprint } from "../../protocol/signing.js";
import { checkVerdict, fetchKeys, fixFor, networkFailure, type Failure } from "../setup/worker-check.js";
import { failed, info, ok, warning, type CheckResult } from "./check.js";

/** The worker side: URL, reachability and TLS, the key, the token, a fresh verdict, the clock, push. */
export async function workerChecks(cfg: Config): Promise<CheckResult[]> {
  const out: CheckResult[] = [];
  const url = cfg.worker.url;
  if (insecureUrl(url))
    out.push(warning("worker url", `${url} is plain http`, "use the worker's https URL: the token crosses in clear"));
  else out.push(ok("worker url", url.startsWith("https:") ? `${url} (https)` : `${url} (plain http to this machine)`));

  const keys = await fetchKeys(url);
  if (!keys.ok) {
    out.push(reachFailure(keys));
    return out; // nothing further can answer
  }
  out.push(ok("worker reachable", "GET /v1/keys answered"));
  if (url.startsWith("https:")) out.push(ok("worker tls", "certificate verified"));
  const served = new Set(keys.keys.map((k) => k.x));
  const trusted = cfg.worker.publicKeys.filter((k) => served.has(k.x));
  if (trusted.length > 0) out.push(ok("worker key", `configured key ${await keyFingerprint(trusted[0]!)} is served`));
  else {
    const prints = await Promise.all(keys.keys.map(keyFingerprint));
    out.push(
      failed(
        "worker key",
        `no configured key is one the worker serves (it serves ${prints.join(", ")})`,
        "compare the fingerprint out of band, then re-run init with --expect-key",
      ),
    );
  }

  const before = Date.now();
  const verdict = await checkVerdict({
    clusterId: cfg.clusterId,
    url,
    token: cfg.worker.token,
    publicKeys: cfg.worker.publicKeys,
    maxVerdictAgeMs: cfg.worker.maxVerdictAgeMs,
  });
  if (verdict.ok) {
    const a = verdict.judgement.accepted;
    out.push(ok("worker token", "accepted"));
    out.push(ok("verdict", `fresh and authentic: master ${a.verdict.state}, ${Math.round(a.ageAtReceiptMs)} ms old`));
  } else if (verdict.problem === "token") {
    out.push(failed("worker token", verdict.detail, fixFor(verdict.problem)));
  } else {
    if (verdict.problem !== "verdict")
      out.push(failed("worker token", `not checked: ${verdict.detail}`, fixFor(verdict.problem)));
    else out.push(ok("worker token", "accepted"));
    out.push(failed("verdict", verdict.detail, fixFor(verdict.problem)));
  }

  const midway = Math.round((before + Date.now()) / 2);
  // The signed verdict's issuedAt is the worker's clock to the round trip; else the Date header,
  // to the second. Decisions never use it: it only explains timestamps that disagree in logs.
  out.push(
    verdict.ok
      ? info(
          "clock offset",
          `agent ${formatOffset(midway - verdict.judgement.accepted.verdict.issuedAt)} relative to the worker (decisions never use it)`,
        )
      : keys.serverDateMs === null
        ? info("clock offset", "not known: no verdict and no Date header")
        : info(
            "clock offset",
            `agent ${formatOffset(keys.localMidMs - keys.serverDateMs)} relative to the worker (±1 s; decisions never use it)`,
          ),
  );
  out.push(cfg.worker.push ? await pushCheck(cfg) : info("push", "off in the config (polling only)"));
  return out;
}

function reachFailure(f: Failure): CheckResult {
  if (f.problem === "tls") return failed("worker tls", f.detail, fixFor("tls"));
  return failed("worker reachable", f.detail, fixFor(f.problem));
}

function formatOffset(ms: number): string {
  const s = Math.round(ms / 100) / 10;
  return s === 0 ? "in step" : `${Math.abs(s)} s ${s > 0 ? "ahead" : "behind"}`;
}

/** One WebSocket open to the push route, closed at once. */
export function pushCheck(cfg: Config, timeoutMs = 10_000): Promise<CheckResult> {
  return new Promise((resolve) => {
    const ws = new WebSocket(pushUrl(cfg.worker.url, cfg.clusterId), {
      headers: { authorization: `Bearer ${cfg.worker.token}` },
      handshakeTimeout: timeoutMs,
      perMessageDeflate: false,
      followRedirects: false,
    });
    let done = false;
    const finish = (r: CheckResult) => {
      if (done) return;
      done = true;
      ws.terminate();
      resolve(r);
    };
    ws.on("open", () => finish(ok("push", "WebSocket connected")));
    ws.on("unexpected-response", (_req, res: IncomingMessage) => {
      let text = "";
      res.on("data", (d: Buffer) => (text += d.toString("utf8").slice(0, 2000)));
      res.on("end", () => {
        const e = errorBody(text);
        const fix =
          res.statusCode === 401 || res.statusCode === 403
            ? fixFor("token")
            : "a proxy between the slave and the worker may not pass WebSockets (polling still works)";
        finish(warning("push", `upgrade refused: HTTP ${res.statusCode}${e.message ? `: ${e.message}` : ""}`, fix));
      });
    });
    ws.on("error", (err) => {
      const f = networkFailure(describe(err));
      finish(
        warning(
          "push",
          f.detail,
          f.problem === "tls" ? fixFor("tls") : "outbound WebSockets may be blocked (polling still works)",
        ),
      );
    });
  });
}

import type { PublicJwk } from "../../protocol/signing.js";
import type { AcceptedVerdict, RejectReason } from "./accept.js";
import { requestVerdict } from "./poll.js";
import { judgePoll, pollTimeoutMs } from "./poll-judge.js";

/** The part of the agent's config a one-shot poll needs. */
export interface PollConfig {
  clusterId: string;
  worker: { url: string; token: string; publicKeys: PublicJwk[]; pollIntervalMs: number; maxVerdictAgeMs: number };
}

export type OneShot =
  | { ok: true; accepted: AcceptedVerdict }
  | { ok: false; reason: RejectReason | "unreachable" | "http-error"; detail: string };

/**
 * One poll, judged like the source judges it: for the CLI's one-shot commands (cron-style
 * check-master-status). Never throws.
 */
export async function pollOnce(
  cfg: PollConfig,
  clock: { mono(): number } = { mono: () => performance.now() },
): Promise<OneShot> {
  const mono = () => clock.mono();
  const out = await requestVerdict({
    url: cfg.worker.url,
    clusterId: cfg.clusterId,
    token: cfg.worker.token,
    timeoutMs: Math.min(10_000, Math.max(pollTimeoutMs(cfg.worker.pollIntervalMs), 2_000)),
    mono,
  });
  const got = await judgePoll(
    out,
    { clusterId: cfg.clusterId, publicKeys: cfg.worker.publicKeys, maxVerdictAgeMs: cfg.worker.maxVerdictAgeMs },
    mono,
  );
  switch (got.kind) {
    case "accepted":
      return { ok: true, accepted: got.accepted };
    case "rejected":
      return { ok: false, reason: got.rejection.reason, detail: `${got.rejection.reason}: ${got.rejection.detail}` };
    case "error":
      return { ok: false, reason: out.kind === "http-error" ? "http-error" : "unreachable", detail: got.detail };
  }
}

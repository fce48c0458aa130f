import type { PublicJwk } from "../../protocol/signing.js";
import { acceptVerdict, type AcceptedVerdict, type Channel, type Rejection } from "./accept.js";
import { isConfigRefusal, type PollOutcome } from "./poll.js";

/**
 * One poll's outcome, judged: the same for the source's polling and the CLI's one-shot poll, so a
 * cron-style `check-master-status` accepts exactly what the daemon would.
 */

/** Shorter than the interval, so that one slow answer never delays the next poll. */
export function pollTimeoutMs(pollIntervalMs: number): number {
  return Math.max(50, Math.min(Math.floor(pollIntervalMs * 0.8), 10_000));
}

export type PollJudgement =
  | { kind: "accepted"; accepted: AcceptedVerdict }
  | { kind: "rejected"; rejection: Rejection }
  | { kind: "error"; event: string; fields: Record<string, unknown>; detail: string };

export interface PollContext {
  clusterId: string;
  publicKeys: PublicJwk[];
  maxVerdictAgeMs: number;
  /** The cluster incarnation known to the caller: an older one is refused. */
  incarnation?: number | null;
}

export async function judgePoll(out: PollOutcome, ctx: PollContext, mono: () => number): Promise<PollJudgement> {
  switch (out.kind) {
    case "network-error":
      return { kind: "error", event: "poll.error", fields: { error: out.detail }, detail: out.detail };
    case "http-error": {
      const configError = isConfigRefusal(out.status);
      const fields = {
        status: out.status,
        code: out.code,
        message: out.message,
        ...(configError ? { hint: "check the agent's worker token, clusterId and url" } : {}),
      };
      const detail = `HTTP ${out.status}${out.code ? ` ${out.code}` : ""}${out.message ? `: ${out.message}` : ""}`;
      return { kind: "error", event: "poll.http-error", fields, detail };
    }
    case "malformed":
      return { kind: "rejected", rejection: { channel: "poll", reason: "malformed", detail: out.detail } };
    case "answer": {
      const result = await acceptVerdict(out.body, {
        publicKeys: ctx.publicKeys,
        clusterId: ctx.clusterId,
        maxVerdictAgeMs: ctx.maxVerdictAgeMs,
        channel: { kind: "poll", nonce: out.nonce, incarnation: ctx.incarnation ?? null } satisfies Channel,
        heldForMs: mono() - out.sentAtMono,
      });
      if (!result.ok)
        return { kind: "rejected", rejection: { channel: "poll", reason: result.reason, detail: result.detail } };
      const v = result.verdict;
      // The nonce proves the answer was signed after the request left: counting the round
      // trip as age makes ageAtReceiptMs an upper bound.
      const roundTrip = out.receivedAtMono - out.sentAtMono;
      return {
        kind: "accepted",
        accepted: {
          verdict: v,
          channel: "poll",
          receivedAtMono: out.receivedAtMono,
          ageAtReceiptMs: (v.ageMs ?? 0) + roundTrip,
          sentAtMono: out.sentAtMono,
        },
      };
    }
  }
}

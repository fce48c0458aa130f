import { constantTimeEqual } from "../../protocol/encoding.js";
import { SignedEnvelope, verifyEnvelope, type PublicJwk } from "../../protocol/signing.js";
import { Verdict } from "../../protocol/verdict.js";

/**
 * The accept check: whether one envelope, from either channel, becomes the agent's verdict
 * (signature, cluster, nonce or seq, age). Pure apart from the signature check; what the source
 * keeps of an accepted verdict is `AcceptedVerdict`.
 */

export type ChannelKind = "push" | "poll";

export interface AcceptedVerdict {
  verdict: Verdict;
  channel: ChannelKind;
  /** clock.mono() when the envelope arrived. */
  receivedAtMono: number;
  /**
   * Upper bound of the round's age at receipt: the worker-measured `ageMs`, plus (for a poll)
   * the request's round trip, since the nonce proves the answer was signed after it was sent.
   */
  ageAtReceiptMs: number;
  /** For a poll answer: clock.mono() when the request left (a reference for the worker's clock). */
  sentAtMono?: number;
}

export interface Rejection {
  channel: ChannelKind;
  reason: RejectReason;
  detail: string;
}

export type RejectReason = "malformed" | "forged" | "wrong-cluster" | "replayed" | "stale";

/**
 * How the envelope arrived: a poll answer must echo our nonce, a push must carry a newer seq.
 * `incarnation` is the cluster incarnation the agent's seq floor belongs to (null: none seen).
 */
export type Channel =
  | { kind: "poll"; nonce: string; incarnation?: number | null }
  | { kind: "push"; lastSeq: number | null; incarnation?: number | null };

export interface IntakeContext {
  publicKeys: PublicJwk[];
  clusterId: string;
  maxVerdictAgeMs: number;
  channel: Channel;
  /**
   * Agent monotonic time elapsed since the envelope was received (0 when checked on arrival).
   * Added to the worker-measured `ageMs`: the agent's wall clock is never compared to the worker's.
   */
  heldForMs?: number;
}

export type Intake =
  | { ok: true; verdict: Verdict; kid: string; ageMs: number }
  | { ok: false; reason: RejectReason; detail: string };

const reject = (reason: RejectReason, detail: string): Intake => ({ ok: false, reason, detail });

export async function acceptVerdict(envelope: unknown, ctx: IntakeContext): Promise<Intake> {
  if (!SignedEnvelope.safeParse(envelope).success) return reject("malformed", "not a signed envelope");
  const checked = await verifyEnvelope(envelope, ctx.publicKeys);
  if (!checked.ok) {
    // Authentic bytes that are not JSON are a worker bug, not an attack.
    const reason = checked.reason === "signed payload is not JSON" ? "malformed" : "forged";
    return reject(reason, checked.reason);
  }
  const parsed = Verdict.safeParse(checked.payload);
  if (!parsed.success) {
    const fields = parsed.error.issues.map((i) => i.path.join(".") || "(root)").join(", ");
    return reject("malformed", `signed payload is not a verdict (${fields})`);
  }
  const v = parsed.data;
  if (v.clusterId !== ctx.clusterId) {
    return reject("wrong-cluster", `verdict for cluster ${v.clusterId}, expected ${ctx.clusterId}`);
  }

  const ch = ctx.channel;
  const known = ch.incarnation ?? null;
  if (v.incarnation !== undefined && known !== null && v.incarnation < known) {
    return reject("replayed", `verdict from an older incarnation of the cluster (${v.incarnation}, current ${known})`);
  }
  if (ch.kind === "poll") {
    if (v.nonce === null || !constantTimeEqual(v.nonce, ch.nonce)) {
      return reject("replayed", "the poll answer does not echo the nonce sent");
    }
  } else {
    // A poll answer delivered as a push would dodge the nonce check: pushes carry none.
    if (v.nonce !== null) return reject("replayed", "a push must not carry a nonce");
    // A recreated cluster restarts its seq: only a poll answer, proven fresh by its nonce, may
    // move the agent to the new incarnation (and lower its seq floor). A push from one unknown
    // to the agent is taken only when its seq would have been anyway.
    const newIncarnation = v.incarnation !== undefined && v.incarnation !== known;
    if (newIncarnation && known !== null) {
      return reject(
        "replayed",
        `push from a new incarnation of the cluster (${v.incarnation}, current ${known}): waiting for a poll to confirm it`,
      );
    }
    if (ch.lastSeq !== null && v.seq <= ch.lastSeq) {
      return reject("replayed", `seq ${v.seq} is not after the last accepted seq ${ch.lastSeq}`);
    }
  }

  if (v.ageMs === null) return reject("stale", "the worker has not completed a probe round yet");
  const ageMs = v.ageMs + (ctx.heldForMs ?? 0);
  if (ageMs > ctx.maxVerdictAgeMs) {
    return reject("stale", `verdict is ${ageMs} ms old, more than maxVerdictAgeMs ${ctx.maxVerdictAgeMs}`);
  }
  return { ok: true, verdict: v, kid: checked.kid, ageMs };
}

import { z } from "zod";
import { clip } from "../../protocol/encoding.js";
import { initialTracker, type Change, type Tracker } from "../../protocol/hysteresis.js";
import { EpochMs } from "../../protocol/time.js";
import { VantageVote, type QuorumRound, type RoundClass } from "../../protocol/verdict.js";

/**
 * Counting the vantages' votes into one round. Pure: the object asks the vantages, hands their
 * answers here, and feeds the outcome to the hysteresis like a round of its own.
 *
 * - A vantage that did not answer in time (or failed) is silent: no vote.
 * - Fewer voters than the quorum: no opinion. The verdict holds; after `fall` such rounds in a
 *   row it goes `unknown` (never `down`): a verdict nobody can back any more must not pass for
 *   one, and the agent holds on `unknown` exactly as it does on a stale verdict.
 * - Otherwise the round is bad when at least `quorum` voters say bad, and it is `down` only when
 *   at least `quorum` voters found nothing answering; a quorum of bad votes of mixed kinds is
 *   `degraded` (the host answers something somewhere). Fewer bad votes than the quorum: `up`.
 */

export interface Ballot {
  name: string;
  /** null: silent (no answer before the deadline, or the vantage failed). */
  class: RoundClass | null;
  reason: string;
}

export interface Count {
  /** null: no opinion (fewer voters than the quorum). */
  outcome: RoundClass | null;
  reason: string;
  /** The ballot that stands for the outcome (its probes become the round's), null without opinion. */
  representative: number | null;
  record: Omit<QuorumRound, "at">;
}

/** A vantage's own reason as kept for the views (the history has the counted one). */
export const MAX_RESULT_REASON_CHARS = 500;

/** The reasons listed in a count's reason share this budget, so a verdict's reason stays bounded. */
const REASONS_BUDGET = 6_000;

export function countVotes(ballots: readonly Ballot[], quorum: number): Count {
  const votes: VantageVote[] = ballots.map((b) => ({ name: b.name, vote: b.class ?? "silent" }));
  const voters = ballots.filter((b) => b.class !== null);
  const silent = ballots.filter((b) => b.class === null).map((b) => b.name);
  const of = `${voters.length} of ${ballots.length} vantages answered`;
  if (voters.length < quorum) {
    return {
      outcome: null,
      reason: `no quorum: ${of} (quorum ${quorum}); silent: ${silent.join(", ")}`,
      representative: null,
      record: { quorum, outcome: "none", votes },
    };
  }
  const down = voters.filter((b) => b.class === "down");
  const bad = voters.filter((b) => b.class !== "up");
  const outcome: RoundClass = down.length >= quorum ? "down" : bad.length >= quorum ? "degraded" : "up";
  const side = outcome === "down" ? down : outcome === "degraded" ? bad : voters.filter((b) => b.class === "up");
  const others = voters.filter((b) => !side.includes(b));
  const budget = Math.floor(REASONS_BUDGET / ballots.length);
  const list = (bs: Ballot[]) => bs.map((b) => `${b.name}: ${clip(b.reason, budget)}`).join("; ");
  const say = { up: "see it up", degraded: "see it failing", down: "see nothing answering" }[outcome];
  let reason = `${side.length} of ${voters.length} answering vantages ${say} (quorum ${quorum}): ${list(side)}`;
  if (others.length) reason += `; outvoted: ${list(others)}`;
  if (silent.length) reason += `; silent: ${silent.join(", ")}`;
  const preferred = side.find((b) => b.class === outcome) ?? side[0]!;
  return {
    outcome,
    reason,
    representative: ballots.indexOf(preferred),
    record: { quorum, outcome, votes },
  };
}

/**
 * A round without opinion: the verdict holds until `fall` of them in a row, then goes `unknown`
 * (streaks cleared: the next verdict is earned afresh). `silentRounds` counts this one.
 */
export function withoutOpinion(
  tracker: Tracker,
  silentRounds: number,
  fall: number,
  at: number,
  reason: string,
): { tracker: Tracker; change: Change | null } {
  if (silentRounds < fall || tracker.state === "unknown") return { tracker, change: null };
  const why = `unknown after ${silentRounds} consecutive rounds without a quorum (fall ${fall}): ${reason}`;
  return {
    tracker: initialTracker(at, why),
    change: { from: tracker.state, to: "unknown", reason: why },
  };
}

/** A vantage's last result as the cluster keeps it, for GET /v1/clusters/:id and the status page. */
export const VantageResult = z.object({
  name: z.string(),
  locationHint: z.string().optional(),
  /** Where it really runs (a colo, or why that is unknown); null: it has not answered yet. */
  location: z.string().nullable(),
  /** When the cluster last asked it. */
  at: EpochMs,
  vote: VantageVote.shape.vote,
  reason: z.string().max(MAX_RESULT_REASON_CHARS),
  /** Its round's duration; null when silent. */
  durationMs: z.number().nonnegative().nullable(),
});
export type VantageResult = z.infer<typeof VantageResult>;

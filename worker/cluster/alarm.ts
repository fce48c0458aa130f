import type { MasterState, RoundClass } from "../../protocol/verdict.js";

/**
 * One Durable Object alarm serves three clocks: the next probe round, the next due notification
 * delivery and the next maintenance boundary (so a scheduled window begins and ends on time, not
 * at a round). Pure: the object reads the inputs, calls these, and stores what they return.
 */

/** A delivery or boundary due now is not worth a busy loop: the alarm waits at least this long. */
const MIN_EARLY_MS = 100;
/** A round that overran its interval still leaves this much rest before the next one. */
const MIN_ROUND_GAP_MS = 500;

export interface AlarmInputs {
  /** When the next probe round is due; null when no alarm is armed (the alarm is running and re-arms itself). */
  roundDue: number | null;
  deliveryDue: number | null;
  boundary: number | null;
  now: number;
}

/** `at`: when the alarm fires. `roundPending`: the round's time when the alarm fires earlier for something else. */
export interface AlarmPlan {
  at: number;
  roundPending: number | null;
}

export function nextAlarm({ roundDue, deliveryDue, boundary, now }: AlarmInputs): AlarmPlan | null {
  if (roundDue === null) return null;
  const other = deliveryDue === null ? boundary : boundary === null ? deliveryDue : Math.min(deliveryDue, boundary);
  if (other !== null && other < roundDue) return { at: Math.max(other, now + MIN_EARLY_MS), roundPending: roundDue };
  return { at: roundDue, roundPending: null };
}

/** When the round after one that started at `started` is due. */
export function nextRoundAt(started: number, intervalSec: number, now: number): number {
  return Math.max(started + intervalSec * 1000, now + MIN_ROUND_GAP_MS);
}

/**
 * Whether the round after this one is a confirmation round (due after `confirmIntervalSec`):
 * the round disagrees with the verdict as it stands after it. So the quick rounds last until the
 * verdict moves or a round agrees again. `unknown` (out of the startup grace) is a verdict every
 * round disagrees with: the quick rounds reach a real verdict sooner, which is when the agent can
 * act. No confirmation during the grace (the verdict cannot move then), nor after a round with
 * no opinion (too few vantages answered): quicker rounds would not make them answer.
 */
export function needsConfirmation(verdict: MasterState, round: RoundClass | null, inGrace: boolean): boolean {
  return !inGrace && round !== null && round !== verdict;
}

/** Seconds until the next round: the confirmation spacing (never longer than the interval) or the interval. */
export function roundSpacingSec(
  config: { intervalSec: number; confirmIntervalSec: number },
  confirming: boolean,
): number {
  return confirming ? Math.min(config.confirmIntervalSec, config.intervalSec) : config.intervalSec;
}

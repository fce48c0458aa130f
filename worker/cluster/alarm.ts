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

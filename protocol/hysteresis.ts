import type { MasterState, RoundClass } from "./verdict.js";

/**
 * Hysteresis over rounds (Gatus / load-balancer style): `fall` consecutive bad rounds before
 * the master is declared down or degraded, `rise` consecutive good rounds before it is up
 * again, and nothing but `unknown` during the startup grace. A single lost probe never moves
 * the verdict. Pure: the Durable Object stores the tracker, this only computes the next one.
 */

export interface Streaks {
  up: number;
  degraded: number;
  down: number;
  /** degraded or down, consecutively. */
  bad: number;
}

export interface Tracker {
  state: MasterState;
  since: number;
  reason: string;
  streaks: Streaks;
}

export interface HysteresisParams {
  fall: number;
  rise: number;
  /** Epoch ms before which the verdict stays `unknown`. */
  graceUntil: number;
}

export interface Change {
  from: MasterState;
  to: MasterState;
  reason: string;
  /** How many of the rounds that moved the verdict were confirmation rounds (absent: none). */
  confirmations?: number;
}

/**
 * A round's place in a run of confirmation rounds (rounds that came early because the previous
 * one disagreed with the verdict): `run` consecutive confirmation rounds end with this one.
 */
export interface Confirmations {
  run: number;
  spacingSec: number;
}

export function initialTracker(now: number, reason = "waiting for the first rounds"): Tracker {
  return { state: "unknown", since: now, reason, streaks: { up: 0, degraded: 0, down: 0, bad: 0 } };
}

function nextStreaks(s: Streaks, c: RoundClass): Streaks {
  switch (c) {
    case "up":
      return { up: s.up + 1, degraded: 0, down: 0, bad: 0 };
    case "degraded":
      return { up: 0, degraded: s.degraded + 1, down: 0, bad: s.bad + 1 };
    case "down":
      return { up: 0, degraded: 0, down: s.down + 1, bad: s.bad + 1 };
  }
}

/** The state the streaks justify, or null when they justify no change. */
function target(
  state: MasterState,
  s: Streaks,
  p: HysteresisParams,
): { to: MasterState; why: string; rounds: number } | null {
  if (state !== "up" && s.up >= p.rise)
    return { to: "up", why: `${s.up} consecutive good rounds (rise ${p.rise})`, rounds: s.up };
  if (state === "up" || state === "unknown") {
    if (s.bad < p.fall) return null;
    // All of the last `fall` rounds found nothing answering: down. Any answer among them: degraded.
    const to = s.down >= p.fall ? "down" : "degraded";
    return { to, why: `${s.bad} consecutive bad rounds (fall ${p.fall})`, rounds: s.bad };
  }
  // Already bad: moving between degraded and down takes `fall` rounds of the new kind too.
  if (state === "down" && s.degraded >= p.fall)
    return { to: "degraded", why: `${s.degraded} consecutive degraded rounds`, rounds: s.degraded };
  if (state === "degraded" && s.down >= p.fall)
    return { to: "down", why: `${s.down} consecutive rounds with nothing answering`, rounds: s.down };
  return null;
}

export function applyRound(
  tracker: Tracker,
  round: { class: RoundClass; reason: string; at: number; confirmations?: Confirmations },
  params: HysteresisParams,
): { tracker: Tracker; change: Change | null } {
  const streaks = nextStreaks(tracker.streaks, round.class);
  const t = round.at < params.graceUntil ? null : target(tracker.state, streaks, params);
  if (!t) return { tracker: { ...tracker, streaks }, change: null };
  // The confirmation run and the streak both end with this round: the shorter is in both.
  const confirmed = Math.min(round.confirmations?.run ?? 0, t.rounds);
  const note = confirmed
    ? `, ${confirmed} of them confirmation round${confirmed > 1 ? "s" : ""} ${round.confirmations!.spacingSec} s apart`
    : "";
  const reason = `${t.to} after ${t.why}${note}: ${round.reason}`;
  return {
    tracker: { state: t.to, since: round.at, reason, streaks },
    change: { from: tracker.state, to: t.to, reason, ...(confirmed ? { confirmations: confirmed } : {}) },
  };
}

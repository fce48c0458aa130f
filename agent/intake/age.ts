/**
 * How old a verdict is now, on the agent's monotonic clock only: the age it had when it arrived
 * (worker-measured, so the two nodes' wall clocks are never compared) plus how long the agent has
 * held it since. The one place this arithmetic is done; a skewed wall clock changes nothing here.
 */

/** Agent monotonic milliseconds since the verdict arrived. */
export function heldForMs(received: { receivedAtMono: number }, nowMono: number): number {
  return nowMono - received.receivedAtMono;
}

/** The verdict's age at `nowMono`: its age at receipt plus the time held since. */
export function ageNowMs(a: { ageAtReceiptMs: number; receivedAtMono: number }, nowMono: number): number {
  return a.ageAtReceiptMs + heldForMs(a, nowMono);
}

/**
 * Whether an accepted verdict is still fresh `elapsedMs` (agent monotonic) after acceptance,
 * where `acceptedAgeMs` is the age returned by acceptVerdict.
 */
export function isFresh(acceptedAgeMs: number, elapsedMs: number, maxVerdictAgeMs: number): boolean {
  return acceptedAgeMs + elapsedMs <= maxVerdictAgeMs;
}

/**
 * The worker's clock as last seen by a poll answer: signed at `issuedAt` (worker clock), after
 * the request left at `sentAtMono` (agent monotonic) — the nonce proves it. So at any later
 * agent time m, the worker's clock reads at most issuedAt + (m − sentAtMono), give or take the
 * two clocks' drift.
 */
export interface WorkerClockRef {
  issuedAt: number;
  sentAtMono: number;
}

/** Two quartz clocks drift apart by well under 100 ppm; 0.1 % of the time since the reference covers it. */
const DRIFT = 0.001;

/**
 * A pushed verdict's age at receipt, transit included: its worker-measured age plus the time
 * between its signing and its arrival, bounded by the worker's clock as the last poll saw it.
 * A stream that held the frame back shows here. Without a reference (no poll answered yet),
 * only the worker-measured age is known.
 */
export function pushAgeAtReceiptMs(
  v: { issuedAt: number; ageMs: number | null },
  receivedAtMono: number,
  ref: WorkerClockRef | null,
): number {
  const own = v.ageMs ?? 0;
  if (!ref) return own;
  const elapsed = receivedAtMono - ref.sentAtMono;
  const workerNowAtMost = ref.issuedAt + elapsed * (1 + DRIFT);
  return Math.max(own, Math.ceil(workerNowAtMost - v.issuedAt + own));
}

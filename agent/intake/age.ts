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

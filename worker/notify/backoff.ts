/**
 * Retry timing for the outbox: exponential backoff with jitter, Retry-After parsing. Pure.
 */

export const FIRST_RETRY_MS = 5_000;
export const MAX_RETRY_STEP_MS = 60 * 60_000;
/** After this long since the event, a delivery that never succeeded is marked failed. */
export const GIVE_UP_AFTER_MS = 24 * 60 * 60_000;

/** Delay before attempt `attempts + 1`, after `attempts` failures: 5 s, 10 s, 20 s … capped at 1 h, ×[0.5, 1). */
export function backoffMs(attempts: number, random: () => number = Math.random): number {
  const base = Math.min(MAX_RETRY_STEP_MS, FIRST_RETRY_MS * 2 ** Math.max(0, attempts - 1));
  // "Equal jitter": never less than half the step, so a burst of failures spreads out but keeps backing off.
  return Math.round(base / 2 + (random() * base) / 2);
}

/** Retry-After as delta-seconds or an HTTP date (RFC 9110 §10.2.3); null if absent or unreadable. Capped at 24 h. */
export function retryAfterMs(header: string | null, now: number): number | null {
  if (!header) return null;
  const text = header.trim();
  let ms: number;
  if (/^\d+$/.test(text)) ms = Number(text) * 1000;
  else {
    const date = Date.parse(text);
    if (Number.isNaN(date)) return null;
    ms = date - now;
  }
  return Math.min(GIVE_UP_AFTER_MS, Math.max(0, ms));
}

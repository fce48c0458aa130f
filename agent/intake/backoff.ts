/**
 * Reconnect delays for the push socket: exponential, capped, with "equal jitter" (half fixed,
 * half random) so that a fleet of agents does not reconnect in lockstep after an edge restart,
 * and never retries with a zero delay. Pure: `random` is injectable for tests.
 */
export interface BackoffPolicy {
  /** Delay before the first retry. */
  initialMs: number;
  /** No delay exceeds this. */
  maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 500, maxMs: 30_000 };

/** The delay before retry number `attempt` (0 = first retry). */
export function backoffDelay(attempt: number, policy: BackoffPolicy, random: () => number = Math.random): number {
  const exp = policy.initialMs * 2 ** Math.min(Math.max(attempt, 0), 30);
  const ceiling = Math.min(policy.maxMs, exp);
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

/**
 * The delay after the worker refused the upgrade for a reason retrying will not fix soon
 * (401 bad token, 404 unknown cluster): a config error, retried at the slow end of the policy.
 */
export function refusedDelay(policy: BackoffPolicy, random: () => number = Math.random): number {
  return Math.round(policy.maxMs / 2 + random() * (policy.maxMs / 2));
}

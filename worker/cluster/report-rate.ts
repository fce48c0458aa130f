/**
 * The agent's reports, rate-limited per cluster: every change in a report is a history event and
 * may be a notification, so a stolen agent token must not be able to flood either. A token
 * bucket: a burst for a failover's few reports in a row, then a steady rate twice what a
 * well-behaved agent sends (one report per keeper pass, every second, plus one per verdict, at
 * most every 2 s; a heartbeat every 15 s). Kept in memory: an object evicted while idle starts
 * afresh, and one being flooded is not idle.
 */

export const REPORT_BURST = 60;
/** One more report allowed every this many ms (2 a second, sustained). */
export const REPORT_EVERY_MS = 500;
export const REPORT_RATE = 1000 / REPORT_EVERY_MS;

/**
 * Push connections per cluster, the other thing an agent token could multiply. One agent holds
 * one; a reconnect may overlap the old socket's close. More is someone else holding the token:
 * refused (429), they can still poll.
 */
export const MAX_SOCKETS = 8;

export class ReportBucket {
  private tokens = REPORT_BURST;
  private at: number | null = null;

  /** Takes a report's token at `now`: 0 when the report is allowed, else the ms until one would be. */
  take(now: number): number {
    if (this.at !== null)
      this.tokens = Math.min(REPORT_BURST, this.tokens + Math.max(0, now - this.at) / REPORT_EVERY_MS);
    this.at = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return 0;
    }
    return Math.ceil((1 - this.tokens) * REPORT_EVERY_MS);
  }
}

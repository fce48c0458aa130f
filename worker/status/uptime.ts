/**
 * Uptime arithmetic, pure: no storage, no clock. The inputs are what the Durable Object keeps —
 * the verdict changes (the `verdict.changed` history events), the gaps in the probe loop, the
 * maintenance windows of the config, the agent's failover / failback actions — and every
 * function takes the window [from, to) explicitly, so tests script any history they like.
 *
 * How time counts, in this order of precedence:
 *  - maintenance: inside a maintenance window, whatever the state (planned work is not downtime);
 *  - unknown: before the first verdict, while the verdict is `unknown` (startup grace, not enough
 *    rounds), and during gaps of the probe loop (no rounds: nobody looked, so nobody can say);
 *  - otherwise the verdict's state: up, degraded or down.
 * Unknown and maintenance are excluded from the denominator:
 *    uptime = up / (up + degraded + down)
 * Degraded (the host answers, the telephony does not) is NOT up — for a PBX a dead SIP stack is
 * an outage — but it is reported separately, so the page can tell "host gone" from "SIP gone".
 * A window that starts before the cluster existed is a partial window: the part before is
 * unknown and excluded, so a cluster monitored for 3 days shows its 3-day figure under "30 d".
 * With nothing known at all, `uptime` is null (not 100 %, not 0 %).
 */

export type State = "up" | "degraded" | "down" | "unknown";

/** A change of the verdict's state at `at` (worker clock, epoch ms). */
export interface StateChange {
  at: number;
  to: State;
  reason: string;
}

export interface Interval {
  from: number;
  to: number;
}

export interface Segment extends Interval {
  state: State;
  reason: string;
}

export interface UptimeTally {
  from: number;
  to: number;
  upMs: number;
  degradedMs: number;
  downMs: number;
  unknownMs: number;
  maintenanceMs: number;
  /** up / (up + degraded + down), 0..1; null when none of the window is known. */
  uptime: number | null;
}

export const HOUR = 3_600_000;
export const DAY = 24 * HOUR;

/** The windows the status page shows, newest first. */
export const WINDOWS = [
  { label: "24 h", ms: DAY },
  { label: "7 d", ms: 7 * DAY },
  { label: "30 d", ms: 30 * DAY },
  { label: "90 d", ms: 90 * DAY },
] as const;

/**
 * The verdict's state as a list of segments covering [from, to) exactly. `changes` may come in
 * any order and may start before `from`; before the first change the state is unknown.
 */
export function stateSegments(changes: readonly StateChange[], from: number, to: number): Segment[] {
  if (to <= from) return [];
  const sorted = [...changes].sort((a, b) => a.at - b.at);
  const out: Segment[] = [];
  let state: State = "unknown";
  let reason = "no verdict yet";
  let cursor = from;
  for (const c of sorted) {
    if (c.at <= from) {
      state = c.to;
      reason = c.reason;
      continue;
    }
    if (c.at >= to) break;
    if (c.at > cursor) out.push({ from: cursor, to: c.at, state, reason });
    cursor = c.at;
    state = c.to;
    reason = c.reason;
  }
  out.push({ from: cursor, to, state, reason });
  return merge(out);
}

/** Joins neighbouring segments of one state (a repeated change to the same state is no change). */
function merge(segments: Segment[]): Segment[] {
  const out: Segment[] = [];
  for (const s of segments) {
    const last = out[out.length - 1];
    if (last && last.state === s.state && last.to === s.from) last.to = s.to;
    else out.push({ ...s });
  }
  return out;
}

/** Sorted, non-overlapping union of intervals, clipped to [from, to). */
export function normalize(intervals: readonly Interval[], from: number, to: number): Interval[] {
  const clipped = intervals
    .map((i) => ({ from: Math.max(i.from, from), to: Math.min(i.to, to) }))
    .filter((i) => i.to > i.from)
    .sort((a, b) => a.from - b.from);
  const out: Interval[] = [];
  for (const i of clipped) {
    const last = out[out.length - 1];
    if (last && i.from <= last.to) last.to = Math.max(last.to, i.to);
    else out.push({ ...i });
  }
  return out;
}

/** Length of the overlap of [a.from, a.to) with a normalized interval list. */
function overlap(a: Interval, list: readonly Interval[]): number {
  let sum = 0;
  for (const i of list) {
    const lo = Math.max(a.from, i.from);
    const hi = Math.min(a.to, i.to);
    if (hi > lo) sum += hi - lo;
  }
  return sum;
}

/**
 * Tallies [from, to): every millisecond lands in exactly one of the five buckets, so they always
 * add up to `to - from` (a property the tests check).
 */
export function tally(input: {
  changes: readonly StateChange[];
  gaps?: readonly Interval[];
  maintenance?: readonly Interval[];
  from: number;
  to: number;
}): UptimeTally {
  const { from, to } = input;
  const result: UptimeTally = {
    from,
    to,
    upMs: 0,
    degradedMs: 0,
    downMs: 0,
    unknownMs: 0,
    maintenanceMs: 0,
    uptime: null,
  };
  if (to <= from) return result;
  const maintenance = normalize(input.maintenance ?? [], from, to);
  // Gaps only count where maintenance does not already: subtract by normalizing both, then
  // measuring gap ∩ ¬maintenance per segment below.
  const gaps = normalize(input.gaps ?? [], from, to);
  for (const seg of stateSegments(input.changes, from, to)) {
    const len = seg.to - seg.from;
    const inMaintenance = overlap(seg, maintenance);
    // gap time that is not also maintenance time
    let inGap = 0;
    for (const g of gaps) {
      const lo = Math.max(seg.from, g.from);
      const hi = Math.min(seg.to, g.to);
      if (hi > lo) inGap += hi - lo - overlap({ from: lo, to: hi }, maintenance);
    }
    const rest = len - inMaintenance - inGap;
    result.maintenanceMs += inMaintenance;
    result.unknownMs += inGap;
    if (seg.state === "up") result.upMs += rest;
    else if (seg.state === "degraded") result.degradedMs += rest;
    else if (seg.state === "down") result.downMs += rest;
    else result.unknownMs += rest;
  }
  const known = result.upMs + result.degradedMs + result.downMs;
  result.uptime = known > 0 ? result.upMs / known : null;
  return result;
}

/** "99.95 %": floored, so an outage never rounds up to a perfect 100.00. */
export function formatUptime(uptime: number | null, digits = 2): string {
  if (uptime === null) return "—";
  const f = 10 ** digits;
  return `${(Math.floor(uptime * 100 * f) / f).toFixed(digits)} %`;
}

/** "2 d 3 h", "1 h 5 min", "42 s": the two largest units. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  const units: [number, string][] = [
    [86_400, "d"],
    [3600, "h"],
    [60, "min"],
    [1, "s"],
  ];
  const parts: string[] = [];
  let rest = s;
  for (const [size, name] of units) {
    if (rest >= size || (parts.length === 0 && size === 1)) {
      parts.push(`${Math.floor(rest / size)} ${name}`);
      rest %= size;
    }
    if (parts.length === 2) break;
    if (parts.length === 1 && rest === 0) break;
  }
  return parts.join(" ");
}

// ---- the timeline ------------------------------------------------------------------------------

/** A period the master was down or degraded, as the edge saw it. `to` null: still going on. */
export interface Incident {
  kind: "incident";
  state: "down" | "degraded";
  from: number;
  to: number | null;
  durationMs: number;
  reason: string;
}

/** What the agent on the slave reported doing (`lastAction` of an `agent.changed` event). */
export interface AgentAction {
  /** Worker clock when the worker first heard of the action. */
  at: number;
  kind: "failover" | "failback";
  ok: boolean;
  reason: string;
  /** The agent's own timestamp of the action: identifies it across repeated reports. */
  actionAt: number;
}

/**
 * A failover or failback on the timeline. For a failover, `durationMs` is how long the slave
 * carried the telephony (until the next failback, or until `now` when still active); for a
 * failback, how long the failover it ended lasted. Null when the other end is not in the history.
 */
export interface RoleChange {
  kind: "failover" | "failback";
  at: number;
  ok: boolean;
  reason: string;
  durationMs: number | null;
  ongoing: boolean;
}

export type TimelineEntry = Incident | RoleChange;

/** Down / degraded periods overlapping [from, now), newest first; consecutive ones stay separate. */
export function incidents(changes: readonly StateChange[], from: number, now: number): Incident[] {
  const segs = stateSegments(changes, from, now);
  const out: Incident[] = [];
  for (const [i, s] of segs.entries()) {
    if (s.state !== "down" && s.state !== "degraded") continue;
    const ongoing = i === segs.length - 1;
    // The real start may be before the window: find it in the full history.
    const start = [...changes].filter((c) => c.at <= s.from).sort((a, b) => b.at - a.at)[0]?.at ?? s.from;
    const begin = Math.min(start, s.from);
    out.push({
      kind: "incident",
      state: s.state,
      from: begin,
      to: ongoing ? null : s.to,
      durationMs: s.to - begin,
      reason: s.reason,
    });
  }
  return out.reverse();
}

/**
 * Failovers and failbacks overlapping [from, now), newest first. Repeated reports of one action
 * (the agent re-reports when its alerts change) count once, at the first report's time with the
 * last report's outcome; a failed action still appears, with ok false, but does not start or end
 * an active period.
 */
export function roleChanges(actions: readonly AgentAction[], from: number, now: number): RoleChange[] {
  const byAction = new Map<string, AgentAction>();
  for (const a of [...actions].sort((a, b) => a.at - b.at)) {
    const key = `${a.kind}@${a.actionAt}`;
    const first = byAction.get(key);
    byAction.set(key, first ? { ...a, at: first.at } : a);
  }
  const unique = [...byAction.values()];
  const out: RoleChange[] = [];
  let activeSince: number | null = null;
  for (const a of unique) {
    if (a.kind === "failover") {
      const entry: RoleChange = {
        kind: "failover",
        at: a.at,
        ok: a.ok,
        reason: a.reason,
        durationMs: null,
        ongoing: false,
      };
      if (a.ok && activeSince === null) {
        activeSince = a.at;
        entry.ongoing = true;
        entry.durationMs = now - a.at;
      }
      out.push(entry);
    } else {
      const entry: RoleChange = {
        kind: "failback",
        at: a.at,
        ok: a.ok,
        reason: a.reason,
        durationMs: null,
        ongoing: false,
      };
      if (a.ok && activeSince !== null) {
        const opened = [...out].reverse().find((e) => e.kind === "failover" && e.ongoing);
        if (opened) {
          opened.ongoing = false;
          opened.durationMs = a.at - activeSince;
        }
        entry.durationMs = a.at - activeSince;
        activeSince = null;
      }
      out.push(entry);
    }
  }
  return out.filter((e) => e.at >= from || e.ongoing).reverse();
}

/** Incidents and role changes merged, newest first (by start). */
export function timeline(
  changes: readonly StateChange[],
  actions: readonly AgentAction[],
  from: number,
  now: number,
): TimelineEntry[] {
  const start = (e: TimelineEntry) => (e.kind === "incident" ? e.from : e.at);
  return [...incidents(changes, from, now), ...roleChanges(actions, from, now)].sort((a, b) => start(b) - start(a));
}

// ---- latency ---------------------------------------------------------------------------------

/** The p-th percentile (0..1) by nearest rank; null for an empty list. */
export function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}

/**
 * Downsamples (at, rtt) points into `buckets` equal slices of [from, to): the median of each
 * slice, null where no probe answered. What the sparkline draws.
 */
export function bucketMedians(
  points: readonly { at: number; rtt: number | null }[],
  from: number,
  to: number,
  buckets: number,
): (number | null)[] {
  const slices: number[][] = Array.from({ length: buckets }, () => []);
  const width = (to - from) / buckets;
  for (const p of points) {
    if (p.rtt === null || p.at < from || p.at >= to) continue;
    slices[Math.min(buckets - 1, Math.floor((p.at - from) / width))]!.push(p.rtt);
  }
  return slices.map((s) => percentile(s, 0.5));
}

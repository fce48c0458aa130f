import { z } from "zod";
import type { NotifyEventType } from "../protocol/events.js";
import type { MaintenanceWindow } from "../protocol/verdict.js";
import { EpochMs } from "../protocol/time.js";
import { MAX_WINDOW_MS, MAX_WINDOWS } from "./config.js";
import type { NotifyEvent } from "./notify/events.js";

/**
 * Planned maintenance: the admin API's windows, which window is in force, and how a
 * window changes the events it covers. Pure: the Durable Object passes the clock and stores
 * what these return, so every rule tests without a socket.
 */

/** A window as the cluster config stores it ([from, to), epoch ms). */
export interface Window {
  from: number;
  to: number;
  reason?: string | undefined;
}

/** Windows that ended longer ago than this are dropped when one is added (uptime looks back 90 days). */
export const KEEP_ENDED_MS = 90 * 24 * 3_600_000;
/** failover.done / failback.done this soon after a window ended are still the planned switchover's. */
export const PLANNED_TAIL_MS = 10 * 60_000;
const DEFAULT_REASON = "planned maintenance";

/** The body of POST /v1/clusters/:id/maintenance as it reads (also its OpenAPI schema). */
export const MaintenanceBody = z.strictObject({
  /** Epoch ms; default now. Later than now: a scheduled window, which begins on its own. */
  from: EpochMs.optional(),
  /** Epoch ms; after `from`, in the future, at most 7 days after `from`. */
  to: EpochMs,
  reason: z.string().trim().min(1).max(200),
});

/**
 * The body checked against `now` (the request's time): `from` defaults to now, `to` must be
 * after `from` and in the future, a window lasts ≤ 7 days.
 */
export function maintenanceRequest(now: number) {
  return MaintenanceBody.transform((b) => ({ from: b.from ?? now, to: b.to, reason: b.reason })).superRefine(
    (w, ctx) => {
      if (w.to <= w.from) ctx.addIssue({ code: "custom", path: ["to"], message: "must be after from" });
      else if (w.to <= now) ctx.addIssue({ code: "custom", path: ["to"], message: "must be in the future" });
      else if (w.to - w.from > MAX_WINDOW_MS)
        ctx.addIssue({ code: "custom", path: ["to"], message: "a window lasts at most 7 days" });
    },
  );
}
export type MaintenanceRequest = z.output<ReturnType<typeof maintenanceRequest>>;

const inForce = (w: Window, now: number) => w.from <= now && now < w.to;

/** The window in force at `now` (the one ending last if several overlap), or null. */
export function activeWindow(windows: readonly Window[], now: number): Window | null {
  let best: Window | null = null;
  for (const w of windows) if (inForce(w, now) && (!best || w.to > best.to)) best = w;
  return best;
}

/** What the verdict carries: the window in force, else the next scheduled one, else null. */
export function verdictWindow(windows: readonly Window[], now: number): MaintenanceWindow | null {
  const active = activeWindow(windows, now);
  const pick = active ?? windows.filter((w) => w.from > now).sort((a, b) => a.from - b.from)[0] ?? null;
  return pick ? { active: pick === active, from: pick.from, to: pick.to, reason: pick.reason ?? DEFAULT_REASON } : null;
}

/**
 * The list with `added` in it, bounded: windows that ended more than 90 days ago go, then the
 * oldest ended ones while there are more than MAX_WINDOWS. Null when that many are current or ahead.
 */
export function addWindow(windows: readonly Window[], added: Window, now: number): Window[] | null {
  const kept = windows.filter((w) => w.to > now - KEEP_ENDED_MS);
  const ended = kept.filter((w) => w.to <= now).sort((a, b) => a.to - b.to);
  const excess = kept.length + 1 - MAX_WINDOWS;
  if (excess > ended.length) return null;
  const dropped = new Set(ended.slice(0, Math.max(0, excess)));
  return [...kept.filter((w) => !dropped.has(w)), added].sort((a, b) => a.from - b.from);
}

/** Ends every window in force at `now` (its `to` becomes now). Null when none is. */
export function endWindows(windows: readonly Window[], now: number): { windows: Window[]; ended: Window } | null {
  const active = activeWindow(windows, now);
  if (!active) return null;
  // `to` stays after `from` (the config schema insists), even for a window begun this very millisecond.
  const end = (w: Window): Window => ({ ...w, to: Math.max(now, w.from + 1) });
  return { windows: windows.map((w) => (inForce(w, now) ? end(w) : w)), ended: end(active) };
}

/** The window's identity for "has it changed since the last look" (start, end, reason). */
const same = (a: Window | null, b: Window | null) => a?.from === b?.from && a?.to === b?.to && a?.reason === b?.reason;

/**
 * maintenance.started / maintenance.ended between the window the alarm loop saw last and the
 * one in force now. A window whose end moved (ended early by DELETE) ends at its new time.
 */
export function windowTransitions(previous: Window | null, current: Window | null, now: number): NotifyEvent[] {
  if (same(previous, current)) return [];
  const out: NotifyEvent[] = [];
  if (previous && previous.from !== current?.from) {
    out.push({
      type: "maintenance.ended",
      reason: `planned maintenance ended: ${previous.reason ?? DEFAULT_REASON}`,
      data: {
        planned: true,
        maintenance: { from: previous.from, to: Math.min(previous.to, now), reason: previous.reason ?? DEFAULT_REASON },
      },
    });
  }
  if (current && current.from !== previous?.from) {
    out.push({
      type: "maintenance.started",
      reason: `planned maintenance until ${new Date(current.to).toISOString()}: ${current.reason ?? DEFAULT_REASON}`,
      data: {
        planned: true,
        maintenance: { from: current.from, to: current.to, reason: current.reason ?? DEFAULT_REASON },
      },
    });
  }
  return out;
}

/** Alerts a planned window silences: kept in the history, tagged, never sent (no alert storm). */
const SILENCED: ReadonlySet<NotifyEventType> = new Set<NotifyEventType>([
  "master.down",
  "master.degraded",
  "master.up",
  "wan.unreachable",
  "wan.recovered",
  "lan.failing",
  "lan.recovered",
]);
/** The switchover itself: tagged planned, still sent (people want to know the slave carries the calls). */
const SWITCHOVERS: ReadonlySet<NotifyEventType> = new Set<NotifyEventType>([
  "failover.done",
  "failback.done",
  "failover.failed",
  "failback.failed",
]);

/**
 * How a window changes an event at `at`: `send` false means history only. The window goes
 * into `data` so the history and the webhook body say which maintenance it was.
 */
export function planEvent(
  event: NotifyEvent,
  windows: readonly Window[],
  at: number,
): { event: NotifyEvent; send: boolean } {
  const active = activeWindow(windows, at);
  if (SILENCED.has(event.type) && active) return { event: tagged(event, active), send: false };
  if (SWITCHOVERS.has(event.type)) {
    // In force now, or ended less than PLANNED_TAIL_MS ago: the failback that follows the window.
    const recent =
      active ??
      activeWindow(
        windows.map((w) => ({ ...w, to: w.to + PLANNED_TAIL_MS })),
        at,
      );
    if (recent) return { event: tagged(event, windows.find((w) => w.from === recent.from) ?? recent), send: true };
  }
  return { event, send: true };
}

function tagged(event: NotifyEvent, w: Window): NotifyEvent {
  return {
    ...event,
    data: { ...event.data, planned: true, maintenance: { from: w.from, to: w.to, reason: w.reason ?? DEFAULT_REASON } },
  };
}

/** The next time a window begins or ends after `now`, so the alarm wakes for it; null if none. */
export function nextBoundary(windows: readonly Window[], now: number): number | null {
  let next: number | null = null;
  for (const w of windows) for (const t of [w.from, w.to]) if (t > now && (next === null || t < next)) next = t;
  return next;
}

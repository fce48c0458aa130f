import { z } from "zod";
import { initialTracker, type Tracker as TrackerType } from "../../protocol/hysteresis.js";
import { AgentReport } from "../../protocol/report.js";
import { MasterState, QuorumRound, RoundSummary } from "../../protocol/verdict.js";
import { ClusterConfig, MaintenanceWindowConfig } from "../config.js";
import { Channel } from "../notify/channels.js";
import { describeZodError } from "../http/errors.js";
import { VantageResult } from "./quorum.js";

/**
 * What a cluster's Durable Object keeps in its key-value table, one schema per key. A record is
 * parsed when it is read, so the schemas' defaults fill in fields a record stored by an older
 * worker lacks, and no caller patches a default where it uses a field.
 */

/**
 * A stored list whose items are checked one by one: an item that breaks today's rules (stored by a
 * worker without them: a window's \`to\` past year 10000, a webhook over plain http) is logged and
 * left out when read, so it never makes the whole cluster unreadable, which would stop its probe
 * loop. The next PUT rewrites the list under today's rules.
 */
const storedEach = <T extends z.ZodType>(item: T, what: string) =>
  z
    .array(z.unknown())
    .default([])
    .transform((items) =>
      items.flatMap((raw) => {
        const parsed = item.safeParse(raw);
        if (!parsed.success) console.error(`stored ${what} left out: ${describeZodError(parsed.error).message}`);
        return parsed.success ? [parsed.data as z.output<T>] : [];
      }),
    );

export const ClusterRecord = z.object({
  id: z.string(),
  config: ClusterConfig.extend({
    maintenance: storedEach(MaintenanceWindowConfig, "maintenance window"),
    notifications: storedEach(Channel, "notification channel"),
  }),
  tokenHash: z.string(),
  createdAt: z.number(),
  updatedAt: z.number(),
});
export type ClusterRecord = z.infer<typeof ClusterRecord>;

const Tracker = z.object({
  state: MasterState,
  since: z.number(),
  reason: z.string(),
  streaks: z.object({ up: z.number(), degraded: z.number(), down: z.number(), bad: z.number() }),
}) satisfies z.ZodType<TrackerType>;

export const MonitorRecord = z.object({
  tracker: Tracker,
  seq: z.number().int(),
  graceUntil: z.number(),
  /** Shown, never decided on: one stored under looser bounds reads as none until the next round. */
  lastRound: z.unknown().transform((r) => RoundSummary.nullable().safeParse(r).data ?? null),
  /** Whether the next round is a confirmation round (worker/cluster/alarm.ts, needsConfirmation). */
  confirming: z.boolean().default(false),
  /** Consecutive confirmation rounds up to the last round with an opinion. */
  confirmRun: z.number().int().default(0),
  /** Consecutive rounds without a quorum of vantages (worker/cluster/quorum.ts). */
  silentRounds: z.number().int().default(0),
  /** The last count of the vantages' votes; absent with one local vantage. */
  quorum: z
    .unknown()
    .optional()
    .transform((q) => QuorumRound.optional().safeParse(q).data),
  /** Each vantage's last result; empty with one local vantage. */
  vantages: z.unknown().transform((v) => z.array(VantageResult).safeParse(v).data ?? []),
});
export type MonitorRecord = z.infer<typeof MonitorRecord>;

/** A new cluster's monitor state: no round yet, its verdict held `unknown` until `graceUntil`. */
export const initialMonitor = (now: number, graceUntil: number): MonitorRecord => ({
  tracker: initialTracker(now),
  seq: 0,
  graceUntil,
  lastRound: null,
  confirming: false,
  confirmRun: 0,
  silentRounds: 0,
  quorum: undefined,
  vantages: [],
});

export const ReportRecord = z.object({ report: AgentReport, receivedAt: z.number() });
export type ReportRecord = z.infer<typeof ReportRecord>;

export const RECORDS = {
  cluster: ClusterRecord,
  monitor: MonitorRecord,
  report: ReportRecord,
  /** The window the alarm loop last saw in force (null: none), to notice changes. */
  maintenance: MaintenanceWindowConfig.nullable(),
  /** When the alarm was pulled in before the next probe round: the time that round is due. */
  roundAt: z.number().nullable(),
};
export type RecordKey = keyof typeof RECORDS;
export type RecordOf<K extends RecordKey> = z.output<(typeof RECORDS)[K]>;

// ---- what must reach storage at once, and what may wait in memory ----------------------------------

/**
 * Rows written are most of what a cluster costs, and the monitor and report records change at
 * every round and every report. They are kept in memory between writes (store.ts), under rules
 * that keep every decision exact across a restart (eviction, deploy):
 *  - the tracker (state, since, reason, graceUntil, streaks) is written whenever it changes;
 *    the object counts streaks up to its cluster's max(fall, rise) (capStreaks), and they are
 *    stored capped at STREAK_CAP, the largest fall / rise a config accepts, so a steady verdict
 *    stops changing it: hysteresis resumes exactly where it was;
 *  - `seq` is stored SEQ_BLOCK ahead of the one in use (a reservation), and written again only
 *    when that is used up: after a restart seq jumps forward, never back, so agents' replay
 *    check holds;
 *  - so are the confirmation run and the count of rounds without an opinion (vantages);
 *  - the last round's summary is written at least every CHECKPOINT_MS: after a restart the
 *    verdict's `lastRound` (and the gap the next round sees) may be that much older than the
 *    round that really came last. It is shown, never decided on, and the gap makes uptime
 *    count the time as unknown, never as up or down;
 *  - a report is written when what it says changes (role, mode, last action, alerts, LAN
 *    verdict) and otherwise every CHECKPOINT_MS; a restarted object never declares the agent
 *    lost on a report time that old (store.ts: lastReportAt).
 */
export const STREAK_CAP = 100;
export const SEQ_BLOCK = 1000;
export const CHECKPOINT_MS = 5 * 60_000;

/**
 * The tracker with its streaks counted no further than `cap`: hysteresis only asks whether a
 * streak has reached fall or rise, so with a cap of at least both it decides the same, and a
 * steady verdict leaves the tracker unchanged (nothing to write).
 */
export const capStreaks = (t: MonitorRecord["tracker"], cap: number): MonitorRecord["tracker"] => ({
  ...t,
  streaks: {
    up: Math.min(t.streaks.up, cap),
    degraded: Math.min(t.streaks.degraded, cap),
    down: Math.min(t.streaks.down, cap),
    bad: Math.min(t.streaks.bad, cap),
  },
});

/** The monitor record to write now, or null when `next` may stay in memory (`stored`: as last written). */
export function monitorToStore(stored: MonitorRecord | null, next: MonitorRecord): MonitorRecord | null {
  const tracker = capStreaks(next.tracker, STREAK_CAP);
  const due =
    !stored ||
    JSON.stringify(tracker) !== JSON.stringify(stored.tracker) ||
    next.graceUntil !== stored.graceUntil ||
    // The confirmation run and the rounds without an opinion decide the next round's time and the
    // verdict's reason: written when they change, which a steady verdict never does.
    next.confirming !== stored.confirming ||
    next.confirmRun !== stored.confirmRun ||
    next.silentRounds !== stored.silentRounds ||
    next.seq >= stored.seq ||
    (next.lastRound?.at ?? 0) - (stored.lastRound?.at ?? 0) >= CHECKPOINT_MS;
  return due ? { ...next, tracker, seq: next.seq + SEQ_BLOCK } : null;
}

/** What a report says that must not wait: the fields the history and the notifications follow. */
const reportGist = ({ report }: ReportRecord) =>
  JSON.stringify([report.role, report.mode, report.lastAction, report.alerts, report.lan?.state ?? null]);

/** The report record to write now, or null when it may stay in memory. */
export function reportToStore(stored: ReportRecord | null, next: ReportRecord): ReportRecord | null {
  const due =
    !stored || reportGist(stored) !== reportGist(next) || next.receivedAt - stored.receivedAt >= CHECKPOINT_MS;
  return due ? next : null;
}

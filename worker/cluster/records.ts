import { z } from "zod";
import type { Tracker as TrackerType } from "../../protocol/hysteresis.js";
import { AgentReport } from "../../protocol/report.js";
import { MasterState, RoundSummary } from "../../protocol/verdict.js";
import { ClusterConfig, MaintenanceWindowConfig } from "../config.js";
import { Channel } from "../notify/channels.js";
import { describeZodError } from "../http/errors.js";

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
});
export type MonitorRecord = z.infer<typeof MonitorRecord>;

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
  /** The lease this loop last wrote to its registry shard (worker/lease.ts). */
  lease: z.number(),
};
export type RecordKey = keyof typeof RECORDS;
export type RecordOf<K extends RecordKey> = z.output<(typeof RECORDS)[K]>;

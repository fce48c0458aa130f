import { z } from "zod";
import { EpochMs } from "./time.js";

/**
 * The events a notification channel can subscribe to. Each is also a history entry, with its
 * reason. `*.down`/`*.failing`/`*.lost` have a matching recovery so a channel never hears only half.
 * During a planned maintenance window, alerts carry `data.planned = true` (see worker/maintenance.ts).
 */
export const NOTIFY_EVENT_TYPES = [
  "master.down",
  "master.degraded",
  "master.up",
  "failover.done",
  "failback.done",
  "failover.failed",
  "failback.failed",
  "telephony.failing",
  "telephony.recovered",
  "agent.lost",
  "agent.back",
  "replication.failing",
  "replication.recovered",
  "wan.unreachable",
  "wan.recovered",
  "lan.failing",
  "lan.recovered",
  "maintenance.started",
  "maintenance.ended",
] as const;
export const NotifyEventType = z.enum(NOTIFY_EVENT_TYPES);
export type NotifyEventType = z.infer<typeof NotifyEventType>;

/** One entry of a cluster's history, as served by GET /v1/clusters/:id/events. */
export const HistoryEvent = z.object({
  id: z.number().int().positive(),
  /** Worker clock, epoch ms. */
  at: EpochMs,
  type: z.enum([
    "verdict.changed",
    "cluster.configured",
    "agent.changed",
    "channel.disabled",
    "notify.dropped",
    ...NOTIFY_EVENT_TYPES,
  ]),
  reason: z.string(),
  data: z.record(z.string(), z.unknown()),
});
export type HistoryEvent = z.infer<typeof HistoryEvent>;

export const EventPage = z.object({
  events: z.array(HistoryEvent),
  /** Pass as `since` to get the next page; null when this page is the last one so far. */
  next: z.number().int().nullable(),
});
export type EventPage = z.infer<typeof EventPage>;

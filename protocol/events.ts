import { z } from "zod";

/** One entry of a cluster's history, as served by GET /v1/clusters/:id/events. */
export const HistoryEvent = z.object({
  id: z.number().int().positive(),
  /** Worker clock, epoch ms. */
  at: z.number().int(),
  type: z.enum(["verdict.changed", "cluster.configured", "agent.changed"]),
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

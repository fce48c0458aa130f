import { z } from "zod";
import { EpochMs } from "../../protocol/time.js";

const MAX_SPAN_MS = 400 * 24 * 3_600_000;

/** GET /v1/clusters/:id/uptime?from=&to= — epoch ms; defaults: the last 30 days up to now. */
export const UptimeQuery = z
  .object({
    from: z.coerce.number().pipe(EpochMs).optional(),
    to: z.coerce.number().pipe(EpochMs).optional(),
  })
  .transform((q, ctx) => {
    const to = q.to ?? Date.now();
    const from = q.from ?? to - 30 * 24 * 3_600_000;
    if (from >= to) ctx.addIssue({ code: "custom", path: ["from"], message: "must be before to" });
    else if (to - from > MAX_SPAN_MS)
      ctx.addIssue({ code: "custom", path: ["from"], message: "the window may span at most 400 days" });
    return { from, to };
  });

export const UptimeResult = z.object({
  from: z.number().int(),
  to: z.number().int(),
  upMs: z.number().int(),
  degradedMs: z.number().int(),
  downMs: z.number().int(),
  unknownMs: z.number().int(),
  maintenanceMs: z.number().int(),
  /** up / (up + degraded + down), 0..1; null when none of the window is known. */
  uptime: z.number().min(0).max(1).nullable(),
});
export type UptimeResult = z.infer<typeof UptimeResult>;

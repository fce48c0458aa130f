import { z } from "zod";

/**
 * The last millisecond of year 9999. Every timestamp a schema accepts is bounded by it: a `Date`
 * throws past 8.64e15, and times turn into text in notifications, on the status page and in logs.
 */
export const MAX_EPOCH_MS = 253_402_300_799_999;
export const EpochMs = z.number().int().min(0).max(MAX_EPOCH_MS, "must be an epoch ms time before year 10000");

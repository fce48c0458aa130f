import { z } from "zod";
import { MAX_PROBE_ATTEMPTS } from "./verdict.js";

/** The fields every probe config shares, at the edge (worker/config.ts) and on the LAN (agent/lan/config.ts). */

export const ProbeName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]{0,39}$/, "1 to 40 characters of a-z 0-9 _ -, starting with a letter or digit");

/** A DNS name or an IPv4/IPv6 literal, IPv6 without brackets (URLs get them added where needed). */
export const Host = z
  .string()
  .min(1)
  .max(253)
  .refine(
    (h) => /^[A-Za-z0-9.-]+$/.test(h) || /^[0-9A-Fa-f:.]+$/.test(h),
    "a host name or IP address (IPv6 without brackets)",
  );

export const Port = z.number().int().min(1).max(65535);
export const TimeoutMs = z.number().int().min(100).max(30_000);

/** Final status codes that prove a SIP stack alive; absent: any final response (200-699). */
export const AcceptCodes = z.array(z.number().int().min(200).max(699)).min(1).max(50).optional();

/** Name, host override and timeout, with the timeout default of the side that probes. */
export const probeBase = (defaultTimeoutMs: number) => ({
  name: ProbeName,
  /** Overrides the master's host for this probe (e.g. a service on another address). */
  host: Host.optional(),
  timeoutMs: TimeoutMs.default(defaultTimeoutMs),
});

/**
 * Further attempts a probe makes inside the round when one fails. The attempts share the probe's
 * timeout (worker/probe/index.ts): a lost connection costs no extra round time, and a blackholed
 * master still fails after `timeoutMs`. Two by default: at 10 % (even 20 %) independent connection
 * loss, fall 3 at a 5 s interval then gives < 1 false `down` a month (README, "False alarms").
 */
export const Retries = z
  .number()
  .int()
  .min(0)
  .max(MAX_PROBE_ATTEMPTS - 1)
  .default(2);

/** A list whose items' names must differ: the error names the second item's `name`. */
export function uniqueNames<T extends z.ZodType<{ name: string }>>(item: T, what: string) {
  return z.array(item).superRefine((items, ctx) => {
    const seen = new Set<string>();
    items.forEach((it, i) => {
      if (seen.has(it.name))
        ctx.addIssue({ code: "custom", path: [i, "name"], message: `duplicate ${what} name "${it.name}"` });
      seen.add(it.name);
    });
  });
}

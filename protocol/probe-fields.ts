import { z } from "zod";

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

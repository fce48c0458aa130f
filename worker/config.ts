import { z } from "zod";
import { EpochMs } from "../protocol/time.js";
import { MAX_PROBES } from "../protocol/verdict.js";
import { AcceptCodes, Host, Port, Retries, probeBase, uniqueNames } from "../protocol/probe-fields.js";
import { Channels, ChannelsInput } from "./notify/channels.js";

/**
 * A cluster's monitoring config, as PUT by the admin. Validated up front so that a probe loop
 * never meets a bad value at 3 a.m.; the agent token arrives in clear and is stored hashed.
 */

const ProbeBase = { ...probeBase(5000), retries: Retries };

export const HttpProbe = z.strictObject({
  kind: z.literal("http"),
  ...ProbeBase,
  critical: z.boolean().default(false),
  scheme: z.enum(["http", "https"]).default("https"),
  port: Port.optional(),
  path: z.string().startsWith("/").max(2000).default("/"),
  method: z.enum(["GET", "HEAD"]).default("GET"),
  expectStatus: z
    .object({ min: z.number().int().min(100).max(599), max: z.number().int().min(100).max(599) })
    .refine((r) => r.min <= r.max, "min must not exceed max")
    .default({ min: 200, max: 399 }),
  /** Fail unless the body contains this text (e.g. "Wazo"). */
  bodyKeyword: z.string().min(1).max(200).optional(),
});

export const TcpProbe = z.strictObject({
  kind: z.literal("tcp"),
  ...ProbeBase,
  critical: z.boolean().default(false),
  port: Port,
});

export const SipProbe = z.strictObject({
  kind: z.literal("sip"),
  ...ProbeBase,
  /** SIP is what telephony is: a master whose SIP stack is dead is not up. */
  critical: z.boolean().default(true),
  transport: z.enum(["tcp", "tls"]).default("tcp"),
  port: Port.optional(),
  /** Final status codes that prove the stack alive; by default any final response (200-699). */
  acceptCodes: AcceptCodes,
});

export const Probe = z.discriminatedUnion("kind", [HttpProbe, TcpProbe, SipProbe]);
export type Probe = z.infer<typeof Probe>;
export type HttpProbe = z.infer<typeof HttpProbe>;
export type TcpProbe = z.infer<typeof TcpProbe>;
export type SipProbe = z.infer<typeof SipProbe>;

export const MIN_INTERVAL_SEC = 2;

/** How many maintenance windows a cluster keeps (current, scheduled and recently ended). */
export const MAX_WINDOWS = 50;

/** A maintenance window lasts at most this long, whether set by POST …/maintenance or by PUT. */
export const MAX_WINDOW_MS = 7 * 24 * 3_600_000;

/** One planned window as stored, [from, to) in epoch ms: the same rules as POST …/maintenance, but `to` may be past (history). */
export const MaintenanceWindowConfig = z
  .strictObject({ from: EpochMs, to: EpochMs, reason: z.string().max(200).optional() })
  .refine((w) => w.from < w.to, { message: "must be after from", path: ["to"] })
  .refine((w) => w.to - w.from <= MAX_WINDOW_MS, { message: "a window lasts at most 7 days", path: ["to"] });

const ConfigFields = {
  master: z.strictObject({ host: Host }),
  probes: uniqueNames(Probe, "probe").min(1).max(MAX_PROBES),
  intervalSec: z.number().min(MIN_INTERVAL_SEC).max(3600).default(10),
  fall: z.number().int().min(1).max(100).default(3),
  rise: z.number().int().min(1).max(100).default(2),
  /** Seconds after the cluster is created during which the verdict stays `unknown`. */
  graceSec: z.number().int().min(0).max(3600).default(0),
  /** Whether GET /status/:id and /badge/:id.svg answer without the admin token. */
  public: z.boolean().default(false),
  /**
   * Planned maintenance windows (epoch ms, [from, to)): excluded from uptime figures, like
   * unknown time, so planned work is never counted as an outage.
   */
  maintenance: z.array(MaintenanceWindowConfig).max(MAX_WINDOWS).default([]),
  /** Slack / webhook channels told about failovers and alerts (worker/notify/channels.ts). */
  notifications: Channels.default([]),
  /** No agent report for this long → "agent lost" (a dead man's switch checked by the alarm). */
  agentLostAfterSec: z.number().int().min(10).max(86_400).default(60),
};

/**
 * The body of PUT /v1/clusters/:id. `agentToken` is required when the cluster is created.
 * `maintenance` left out keeps the stored windows: a window opened through the maintenance API
 * must not vanish because an admin re-sent the rest of the config.
 */
export const ClusterConfigInput = z.strictObject({
  ...ConfigFields,
  maintenance: ConfigFields.maintenance.removeDefault().optional(),
  /** A channel's secret left out keeps the stored one (worker/notify/channels.ts, `keepSecrets`). */
  notifications: ChannelsInput.default([]),
  agentToken: z.string().min(32, "at least 32 characters").max(256).optional(),
});
export type ClusterConfigInput = z.infer<typeof ClusterConfigInput>;

/** What is stored and returned: the input less the token. */
export const ClusterConfig = z.object(ConfigFields);
export type ClusterConfig = z.infer<typeof ClusterConfig>;

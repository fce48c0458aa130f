import { z } from "zod";
import { EpochMs } from "../protocol/time.js";
import { MAX_PROBES, MAX_VANTAGES } from "../protocol/verdict.js";
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

/**
 * Spacing of confirmation rounds, the rounds that follow one disagreeing with the verdict. 2 s:
 * with fall 3, a dead master is declared about 4 s after the first bad round instead of two whole
 * intervals, while each confirmation is still a separate look (a lost SYN is retransmitted after
 * 1 s, so a 1 s spacing can land inside the same blip). Confirmations happen only on a
 * disagreement, so they cost next to nothing in a healthy month. 1 s is allowed for the fast settings.
 */
export const DEFAULT_CONFIRM_INTERVAL_SEC = 2;

/** Where a vantage's Durable Object is created (Cloudflare's location hints). */
export const LocationHint = z.enum(["wnam", "enam", "sam", "weur", "eeur", "apac", "oc", "afr", "me"]);
export type LocationHint = z.infer<typeof LocationHint>;

export const VantageName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]{0,19}$/, "1 to 20 characters of a-z 0-9 _ -, starting with a letter or digit");

export const VantageConfig = z.strictObject({ name: VantageName, locationHint: LocationHint.optional() });
export type VantageConfig = z.infer<typeof VantageConfig>;

/** The default, single vantage: the cluster's own object probes, as before vantages existed. */
export const LOCAL_VANTAGE: VantageConfig = { name: "edge" };

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
  /** Seconds between confirmation rounds (see DEFAULT_CONFIRM_INTERVAL_SEC); at most intervalSec. */
  confirmIntervalSec: z.number().min(1).max(3600).default(DEFAULT_CONFIRM_INTERVAL_SEC),
  /**
   * Where the master is probed from. One vantage without a location hint (the default): the
   * cluster's own object probes. Otherwise each is a Vantage object (worker/vantage.ts) and a
   * round is the count of their votes (worker/cluster/quorum.ts).
   */
  vantages: uniqueNames(VantageConfig, "vantage").min(1).max(MAX_VANTAGES).default([LOCAL_VANTAGE]),
  /** How many vantages must agree that the master is bad; default a majority of `vantages`. */
  quorum: z.number().int().min(1).max(MAX_VANTAGES).optional(),
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
export const ClusterConfigInput = z
  .strictObject({
    ...ConfigFields,
    maintenance: ConfigFields.maintenance.removeDefault().optional(),
    /** A channel's secret left out keeps the stored one (worker/notify/channels.ts, `keepSecrets`). */
    notifications: ChannelsInput.default([]),
    agentToken: z.string().min(32, "at least 32 characters").max(256).optional(),
  })
  .superRefine((c, ctx) => {
    if (c.confirmIntervalSec > c.intervalSec)
      ctx.addIssue({ code: "custom", path: ["confirmIntervalSec"], message: "must not exceed intervalSec" });
    if (c.quorum !== undefined && c.quorum > c.vantages.length)
      ctx.addIssue({
        code: "custom",
        path: ["quorum"],
        message: `must not exceed the number of vantages (${c.vantages.length})`,
      });
  });
export type ClusterConfigInput = z.infer<typeof ClusterConfigInput>;

/** What is stored and returned: the input less the token. */
export const ClusterConfig = z.object(ConfigFields);
export type ClusterConfig = z.infer<typeof ClusterConfig>;

/** The quorum in force: the configured one, else a majority of the vantages. */
export const quorumOf = (c: Pick<ClusterConfig, "vantages" | "quorum">) =>
  Math.min(c.quorum ?? Math.floor(c.vantages.length / 2) + 1, c.vantages.length);

/** Whether rounds are counted from Vantage objects rather than probed by the cluster's own object. */
export const usesVantageObjects = (c: Pick<ClusterConfig, "vantages">) =>
  c.vantages.length > 1 || c.vantages.some((v) => v.locationHint !== undefined);

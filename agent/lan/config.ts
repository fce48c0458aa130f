import { z } from "zod";
import { AcceptCodes, Port, probeBase, uniqueNames } from "../../protocol/probe-fields.js";
import { PgTls } from "../pg.js";

/**
 * What the agent probes on the LAN before it believes the edge: SIP over UDP (what phones
 * speak, and what the edge cannot reach from a Worker), SIP over TCP, plain TCP ports and a
 * PostgreSQL login. Embedded by the agent config as its `lan` field.
 */

/** Env var that may carry the master's PostgreSQL password, so it need not sit in the config file. */
export const PG_PASSWORD_ENV = "XIVO_HA_PG_PASSWORD";

const ProbeBase = probeBase(2000);

export const LanSipProbe = z.strictObject({
  kind: z.literal("sip"),
  ...ProbeBase,
  /** SIP is what telephony is: a master whose SIP stack is dead is not up. */
  critical: z.boolean().default(true),
  transport: z.enum(["udp", "tcp"]).default("udp"),
  port: Port.default(5060),
  /** Final status codes that prove the stack alive; by default any final response (200-699). */
  acceptCodes: AcceptCodes,
});

export const LanTcpProbe = z.strictObject({
  kind: z.literal("tcp"),
  ...ProbeBase,
  critical: z.boolean().default(false),
  port: Port,
});

export const LanPostgresProbe = z.strictObject({
  kind: z.literal("postgres"),
  ...ProbeBase,
  critical: z.boolean().default(false),
  port: Port.default(5432),
  database: z.string().min(1).max(63).default("asterisk"),
  user: z.string().min(1).max(63).default("asterisk"),
  /** Optional here: it may come from env XIVO_HA_PG_PASSWORD instead (see resolveLanSecrets). */
  password: z.string().min(1).max(1024).optional(),
  /** Absent: `require`, as for every connection to the master's PostgreSQL (see agent/pg.ts). */
  tls: PgTls.optional(),
});

export const LanProbe = z.discriminatedUnion("kind", [LanSipProbe, LanTcpProbe, LanPostgresProbe]);
export type LanProbe = z.infer<typeof LanProbe>;
export type LanSipProbe = z.infer<typeof LanSipProbe>;
export type LanTcpProbe = z.infer<typeof LanTcpProbe>;
export type LanPostgresProbe = z.infer<typeof LanPostgresProbe>;

const DEFAULT_CONFIRM_MS = 1000;

export const LanConfig = z
  .strictObject({
    probes: uniqueNames(LanProbe, "probe").min(1, "expected at least one LAN probe").max(16),
    intervalMs: z.number().int().min(500).max(3_600_000).default(5000),
    /**
     * The spacing of confirmation rounds: after a round that disagrees with the LAN view, the next
     * comes this soon, until the view moves or a round agrees. Default 1 s (or intervalMs if
     * shorter): a dead master is confirmed in about fall × (1 s + the probe timeout) instead of
     * fall × intervalMs, and a healthy master costs nothing extra (its rounds agree).
     */
    confirmIntervalMs: z.number().int().min(100).max(3_600_000).optional(),
    /** Consecutive bad rounds before the LAN view says down (or degraded). */
    fall: z.number().int().min(1).max(100).default(3),
    /** Consecutive good rounds before the LAN view says up again. */
    rise: z.number().int().min(1).max(100).default(2),
  })
  .superRefine((c, ctx) => {
    // Confirmations come sooner than the normal beat, never later.
    if (c.confirmIntervalMs !== undefined && c.confirmIntervalMs > c.intervalMs) {
      ctx.addIssue({
        code: "custom",
        path: ["confirmIntervalMs"],
        message: `expected at most intervalMs (${c.intervalMs})`,
      });
    }
  })
  .transform((c) => ({ ...c, confirmIntervalMs: c.confirmIntervalMs ?? Math.min(DEFAULT_CONFIRM_MS, c.intervalMs) }));
export type LanConfig = z.infer<typeof LanConfig>;

/**
 * A Wazo/XiVO master as installed: Asterisk on 5060 (UDP is what phones use, so it is the
 * critical one; TCP may be disabled on some sites, so it only informs), the web UI and API
 * behind nginx on 443, and the `asterisk` database.
 */
export const DEFAULT_LAN: LanConfig = LanConfig.parse({
  probes: [
    { kind: "sip", name: "sip-udp", transport: "udp", port: 5060, critical: true },
    { kind: "sip", name: "sip-tcp", transport: "tcp", port: 5060, critical: false },
    { kind: "tcp", name: "web", port: 443 },
    { kind: "postgres", name: "postgres", port: 5432, database: "asterisk", user: "asterisk" },
  ],
});

/** Fills the PostgreSQL password from env XIVO_HA_PG_PASSWORD, which wins over the file. */
export function resolveLanSecrets(cfg: LanConfig, env: Record<string, string | undefined>): LanConfig {
  const fromEnv = env[PG_PASSWORD_ENV];
  if (!fromEnv) return cfg;
  return { ...cfg, probes: cfg.probes.map((p) => (p.kind === "postgres" ? { ...p, password: fromEnv } : p)) };
}

/** The LAN config as it may be logged or reported: passwords replaced. */
export function redactLan(cfg: LanConfig): LanConfig {
  return {
    ...cfg,
    probes: cfg.probes.map((p) =>
      p.kind === "postgres" && p.password !== undefined ? { ...p, password: "[redacted]" } : p,
    ),
  };
}

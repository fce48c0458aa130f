import { z } from "zod";
import { Port } from "../../protocol/probe-fields.js";
import { PgTls } from "../pg.js";

/**
 * What the slave copies from the master's database and how. Embedded by the agent config as its
 * `replication` field. Passwords may come from the environment instead of the file.
 */

/** Env vars that may carry the passwords, so they need not sit in the config file. */
export const MASTER_PASSWORD_ENV = "XIVO_HA_REPL_MASTER_PASSWORD";
export const SLAVE_PASSWORD_ENV = "XIVO_HA_REPL_SLAVE_PASSWORD";

/**
 * Wazo's `xivo-master-slave-db-replication` leaves these out: call logs, CEL, queue logs and
 * statistics are local history of the node that made them; the rest is per-host network setup.
 */
export const WAZO_EXCLUDE = [
  "call_log",
  "call_log_participant",
  "cel",
  "queue_log",
  "session",
  "stat_*",
  "dhcp",
  "mail",
  "monitoring",
  "netiface",
  "resolvconf",
] as const;

const Ms = z.number().int().positive();
const Name = z.string().min(1).max(63);
/** `*` any run of characters, `?` one character; matched against the unqualified name. */
const Glob = z.string().min(1).max(128);

const Endpoint = {
  port: Port.default(5432),
  database: Name.default("asterisk"),
  password: z.string().min(1).max(1024).optional(),
  /** Giving up on a connection attempt. */
  connectTimeoutMs: Ms.default(10_000),
  /** Absent: `require` for the master, `off` for the slave (see agent/pg.ts). */
  tls: PgTls.optional(),
};

export const ReplicationConfig = z.strictObject({
  /** The daemon's schedule while the slave is standby (Wazo: hourly). */
  everyMs: Ms.default(300_000),
  /**
   * How often a run reads every table's exact markers, not only those of the tables PostgreSQL's
   * write counters say were written (see activity.ts): the bound on how late a write whose counts
   * had not reached the statistics yet is copied. 0: every run.
   */
  verifyEveryMs: z.number().int().min(0).max(86_400_000).default(60_000),
  master: z
    .strictObject({
      /** Default: the agent's `master.host`. */
      host: z.string().min(1).optional(),
      /** A read-only role: `GRANT pg_read_all_data`. */
      user: Name.default("xivo_ha_replica"),
      ...Endpoint,
    })
    .prefault({}),
  slave: z
    .strictObject({
      host: z.string().min(1).default("127.0.0.1"),
      /** Needs TRUNCATE/INSERT/DELETE on the tables, ownership of the sequences and the right to set session_replication_role. */
      user: Name.default("asterisk"),
      ...Endpoint,
    })
    .prefault({}),
  schema: Name.default("public"),
  include: z.array(Glob).default(["*"]),
  exclude: z.array(Glob).default([...WAZO_EXCLUDE]),
  /** Text is the safe choice across major versions; binary is cheaper to parse (see bench). */
  format: z.enum(["binary", "text"]).default("binary"),
  /** Any single statement (one table's COPY included) longer than this fails the run. */
  statementTimeoutMs: Ms.default(600_000),
  /** Waiting for a table lock (DDL on the master, a stray session on the slave) fails the run. */
  lockTimeoutMs: Ms.default(10_000),
  /** The whole run, end to end. */
  timeoutMs: Ms.default(3_600_000),
});
export type ReplicationConfigInput = z.input<typeof ReplicationConfig>;
export type ReplicationConfig = z.infer<typeof ReplicationConfig>;

/** A config ready to run: the master's host is known. */
export type ResolvedReplicationConfig = ReplicationConfig & { master: ReplicationConfig["master"] & { host: string } };

/**
 * Fills the master's host from the agent's and the passwords from the environment (which wins
 * over the file).
 */
export function resolveReplicationSecrets(
  cfg: ReplicationConfig,
  env: Record<string, string | undefined> = process.env,
  masterHost?: string,
): ResolvedReplicationConfig {
  const host = cfg.master.host ?? masterHost;
  if (!host) throw new Error("replication.master.host: not set and no agent master.host to default to");
  // The environment wins, as for every other secret of the agent (token, LAN and failback passwords).
  const masterPassword = nonEmpty(env[MASTER_PASSWORD_ENV]) ?? cfg.master.password;
  const slavePassword = nonEmpty(env[SLAVE_PASSWORD_ENV]) ?? cfg.slave.password;
  return {
    ...cfg,
    master: { ...cfg.master, host, ...(masterPassword ? { password: masterPassword } : {}) },
    slave: { ...cfg.slave, ...(slavePassword ? { password: slavePassword } : {}) },
  };
}

/** The config as it may be shown (status, logs): passwords replaced. */
export function redactReplication<T extends ReplicationConfig>(cfg: T): T {
  const hide = (p: string | undefined) => (p === undefined ? {} : { password: "[redacted]" });
  return {
    ...cfg,
    master: { ...cfg.master, ...hide(cfg.master.password) },
    slave: { ...cfg.slave, ...hide(cfg.slave.password) },
  };
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v === "" ? undefined : v;
}

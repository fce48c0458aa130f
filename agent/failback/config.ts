import { z } from "zod";
import { Port } from "../../protocol/probe-fields.js";
import { fieldPath } from "../field-path.js";
import { PgTls } from "../pg.js";

/**
 * What failback reconciliation copies back from the slave to the master, how it finds both
 * databases, and which file-sync hooks it runs afterwards. Embedded by the agent config; every
 * field has a Wazo default except the master's host.
 */

/** Env vars that carry the passwords, so they need not sit in the config file; they win over it. */
export const MASTER_PASSWORD_ENV = "XIVO_HA_FAILBACK_MASTER_PASSWORD";
export const SLAVE_PASSWORD_ENV = "XIVO_HA_FAILBACK_SLAVE_PASSWORD";

const Ms = z.number().int().positive();
/** Plain SQL identifiers only: they are quoted anyway, but a typo should fail here, not in SQL. */
const Ident = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,62}$/, "expected a SQL identifier (letters, digits, _)");

const Endpoint = (defaults: { host?: string }) =>
  z.strictObject({
    host: defaults.host === undefined ? z.string().min(1) : z.string().min(1).default(defaults.host),
    port: Port.default(5432),
    database: z.string().min(1).max(63).default("asterisk"),
    user: z.string().min(1).max(63).default("asterisk"),
    /** Optional here: env XIVO_HA_FAILBACK_{MASTER,SLAVE}_PASSWORD wins (see resolveFailbackSecrets). */
    password: z.string().min(1).max(1024).optional(),
    /** Absent: `require` for the master, `off` for the slave (see agent/pg.ts). */
    tls: PgTls.optional(),
  });

export const FailbackReference = z.strictObject({
  /** The column of this table that holds a parent's id, e.g. `call_log_id`. */
  column: Ident,
  /** The parent table (listed earlier, with an `idColumn`), e.g. `call_log`. */
  table: Ident,
});

export const FailbackTable = z.strictObject({
  name: Ident,
  schema: Ident.default("public"),
  /**
   * Natural key to dedupe on against the master's own rows (NOT NULL columns, ideally indexed),
   * or null: the row is identified by its slave `idColumn` value and deduped on the ledger only.
   */
  key: z.array(Ident).min(1).nullable(),
  /** Serial / identity id column: the master assigns a fresh value (no collision with its own rows). */
  idColumn: Ident.optional(),
  /** Columns holding a parent's id: rewritten to the parent's new master id. */
  references: z.array(FailbackReference).default([]),
});

export const FileSyncHook = z.strictObject({
  name: z.string().regex(/^[a-z0-9_-]{1,64}$/, "expected 1-64 of a-z 0-9 _ -"),
  argv: z.array(z.string().min(1)).min(1),
  timeoutMs: Ms.default(600_000),
});

/**
 * Wazo's tables the slave's own Asterisk / call-logd write while it is active, which the
 * master→slave replication excludes. Parents first: cel and call_log_participant point at call_log.
 */
export const WAZO_TABLES: z.input<typeof FailbackTable>[] = [
  { name: "call_log", key: null, idColumn: "id" },
  // Its primary key is a uuid made on the slave: a natural key that is unique everywhere.
  { name: "call_log_participant", key: ["uuid"], references: [{ column: "call_log_id", table: "call_log" }] },
  { name: "cel", key: null, idColumn: "id", references: [{ column: "call_log_id", table: "call_log" }] },
  { name: "queue_log", key: null, idColumn: "id" },
];

/**
 * A table of per-user settings the users change themselves (from their phone's feature codes or
 * their portal): while the slave is active they change them there, and failback brings the
 * changes back. `key` names the same user on both nodes; `columns` are the settings.
 */
export const UserStateTable = z
  .strictObject({
    name: Ident,
    schema: Ident.default("public"),
    /** NOT NULL and unique on the master (checked against the catalog); replicated, so equal on both nodes. */
    key: Ident,
    columns: z.array(Ident).min(1).max(64),
  })
  .superRefine((t, ctx) => {
    const seen = new Set<string>();
    t.columns.forEach((c, i) => {
      if (c === t.key)
        ctx.addIssue({ code: "custom", path: ["columns", i], message: "expected a column other than the key" });
      if (seen.has(c)) ctx.addIssue({ code: "custom", path: ["columns", i], message: `duplicate column ${c}` });
      seen.add(c);
    });
  });
export type UserStateTable = z.infer<typeof UserStateTable>;

/**
 * Wazo's user services and forwards (xivo-dao `userfeatures`; set by wazo-agid's
 * phone_set_feature and wazo-confd's /users/{id}/services and /forwards): DND, incoming-call
 * filtering, unconditional / no-answer / busy forwards and their destinations, and voicemail on/off.
 * Keyed by `uuid`, which, unlike `id`, a user deleted and re-created does not reuse.
 */
export const WAZO_USER_STATE: z.input<typeof UserStateTable>[] = [
  {
    name: "userfeatures",
    key: "uuid",
    columns: [
      "enablednd",
      "incallfilter",
      "enableunc",
      "destunc",
      "enablerna",
      "destrna",
      "enablebusy",
      "destbusy",
      "enablevoicemail",
    ],
  },
];

export const UserStateConfig = z
  .strictObject({
    tables: z
      .array(UserStateTable)
      .min(1)
      .max(16)
      .default(() => WAZO_USER_STATE.map((t) => UserStateTable.parse(t))),
    /** Rows per table held at failover and compared at failback: beyond it, refused (named in the log). */
    maxRows: z.number().int().min(1).max(1_000_000).default(200_000),
  })
  .superRefine((u, ctx) => {
    const seen = new Set<string>();
    u.tables.forEach((t, i) => {
      const id = `${t.schema}.${t.name}`;
      if (seen.has(id)) ctx.addIssue({ code: "custom", path: ["tables", i, "name"], message: `duplicate table ${id}` });
      seen.add(id);
    });
  });
export type UserStateConfig = z.infer<typeof UserStateConfig>;

export const FailbackConfig = z
  .strictObject({
    /** Names the slave in the ledger; default: `pg-<system identifier>` of the slave's cluster. */
    origin: z.string().min(1).max(200).optional(),
    master: Endpoint({}),
    slave: Endpoint({ host: "127.0.0.1" }).default({
      host: "127.0.0.1",
      port: 5432,
      database: "asterisk",
      user: "asterisk",
    }),
    tables: z.array(FailbackTable).default(() => WAZO_TABLES.map((t) => FailbackTable.parse(t))),
    ledger: z
      .strictObject({
        schema: Ident.default("public"),
        table: Ident.default("xivo_ha_reconciled"),
        /** Create the ledger when missing (needs CREATE on the schema); else it must exist. */
        create: z.boolean().default(true),
      })
      .default({ schema: "public", table: "xivo_ha_reconciled", create: true }),
    /** Rows read from the slave and written to the master per round trip. */
    batchRows: z.number().int().min(1).max(50_000).default(2_000),
    connectTimeoutMs: Ms.default(10_000),
    /** Per statement, on both servers: a lock held forever on the master must not hang failback. */
    statementTimeoutMs: Ms.default(120_000),
    fileSync: z.array(FileSyncHook).default([]),
    /** What users changed on the active slave (DND, forwards…), merged back; null: off. */
    userState: UserStateConfig.nullable().default(() => UserStateConfig.parse({})),
  })
  .superRefine((c, ctx) => {
    const seen = new Map<string, z.infer<typeof FailbackTable>>();
    c.tables.forEach((t, i) => {
      const id = `${t.schema}.${t.name}`;
      if (seen.has(id)) ctx.addIssue({ code: "custom", path: ["tables", i, "name"], message: `duplicate table ${id}` });
      if (t.key === null && !t.idColumn) {
        ctx.addIssue({
          code: "custom",
          path: ["tables", i, "idColumn"],
          message: "expected an idColumn when key is null (the slave's id identifies the row)",
        });
      }
      t.references.forEach((r, j) => {
        const parent = [...seen.values()].find((p) => p.name === r.table);
        if (!parent?.idColumn) {
          ctx.addIssue({
            code: "custom",
            path: ["tables", i, "references", j, "table"],
            message: `expected a table listed before ${t.name} with an idColumn`,
          });
        }
        if (r.column === t.idColumn)
          ctx.addIssue({
            code: "custom",
            path: ["tables", i, "references", j, "column"],
            message: "expected a column other than idColumn",
          });
      });
      seen.set(id, t);
    });
    const names = new Set<string>();
    c.fileSync.forEach((h, i) => {
      if (names.has(h.name))
        ctx.addIssue({ code: "custom", path: ["fileSync", i, "name"], message: `duplicate hook name ${h.name}` });
      names.add(h.name);
    });
  });
export type FailbackConfig = z.infer<typeof FailbackConfig>;
export type FailbackTable = z.infer<typeof FailbackTable>;
export type FileSyncHook = z.infer<typeof FileSyncHook>;

/** Passwords from the environment win over the file. */
export function resolveFailbackSecrets(cfg: FailbackConfig, env: Record<string, string | undefined>): FailbackConfig {
  const m = env[MASTER_PASSWORD_ENV];
  const s = env[SLAVE_PASSWORD_ENV];
  return {
    ...cfg,
    master: m ? { ...cfg.master, password: m } : cfg.master,
    slave: s ? { ...cfg.slave, password: s } : cfg.slave,
  };
}

/** The config as it may be logged or reported: passwords replaced. */
export function redactFailback(cfg: FailbackConfig): FailbackConfig {
  const hide = <T extends { password?: string | undefined }>(e: T): T =>
    e.password === undefined ? e : { ...e, password: "[redacted]" };
  return { ...cfg, master: hide(cfg.master), slave: hide(cfg.slave) };
}

/** Validates and resolves secrets; the error lists `field.path: message` lines, never a value. */
export function parseFailbackConfig(
  raw: unknown,
  env: Record<string, string | undefined> = process.env,
): FailbackConfig {
  const parsed = FailbackConfig.safeParse(raw);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${fieldPath(i.path)}: ${i.message}`);
    throw new Error(`invalid failback config:\n${lines.join("\n")}`);
  }
  return resolveFailbackSecrets(parsed.data, env);
}

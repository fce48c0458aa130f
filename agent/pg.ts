import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { isAbsolute } from "node:path";
import { checkServerIdentity, type ConnectionOptions, type PeerCertificate } from "node:tls";
import { z } from "zod";
import { utf8 } from "../protocol/encoding.js";

/** Where a PostgreSQL server is and whom to log in as; the password never goes into a message. */
export interface PgEndpoint {
  host: string;
  port: number;
  database: string;
  user: string;
  password?: string | undefined;
  /** Absent: the endpoint's default mode (see `defaultTlsMode`). */
  tls?: PgTls | undefined;
}

/**
 * TLS to one PostgreSQL endpoint, as libpq's sslmode says it:
 * - `off`: cleartext (sslmode=disable);
 * - `require`: encrypted, the certificate not checked (sslmode=require): stops a passive
 *   listener, not a machine in the middle;
 * - `verify-full`: encrypted, the certificate signed by `caFile` and valid for `servername`
 *   (default: the endpoint's host) — sslmode=verify-full.
 * The CA file is read when the config is loaded, so a wrong path fails at start, naming the field.
 */
export const PgTls = z
  .strictObject({
    mode: z.enum(["off", "require", "verify-full"]),
    /** PEM file of the CA(s) that sign the server's certificate; only (and always) with verify-full. */
    caFile: z.string().min(1).max(4096).refine(isAbsolute, "expected an absolute path").optional(),
    /** The name the certificate must carry (DNS name or IP); default: the endpoint's host. */
    servername: z.string().min(1).max(253).optional(),
  })
  .superRefine((t, ctx) => {
    if (t.mode === "verify-full" && !t.caFile)
      ctx.addIssue({ code: "custom", path: ["caFile"], message: "expected the CA's PEM file with mode verify-full" });
    for (const f of ["caFile", "servername"] as const) {
      if (t.mode !== "verify-full" && t[f] !== undefined)
        ctx.addIssue({ code: "custom", path: [f], message: `only checked with mode verify-full (mode is ${t.mode})` });
    }
  })
  .transform((t, ctx): typeof t & { ca?: string } => {
    if (!t.caFile) return t;
    let ca: string;
    try {
      ca = readFileSync(t.caFile, "utf8");
    } catch (e) {
      ctx.addIssue({
        code: "custom",
        path: ["caFile"],
        message: `cannot read ${t.caFile} (${(e as NodeJS.ErrnoException).code ?? String(e)})`,
      });
      return z.NEVER;
    }
    if (!ca.includes("-----BEGIN CERTIFICATE-----")) {
      ctx.addIssue({ code: "custom", path: ["caFile"], message: `${t.caFile} holds no PEM certificate` });
      return z.NEVER;
    }
    return { ...t, ca };
  });
export type PgTls = z.output<typeof PgTls>;
export type PgTlsMode = PgTls["mode"];

/**
 * Without a `tls` field: `require` towards the master (the LAN, where a listener may be), `off`
 * towards the slave's own server, which the defaults reach over loopback.
 */
const defaultTlsMode = (role: "master" | "slave"): PgTlsMode => (role === "master" ? "require" : "off");

/** What node-postgres' `ssl` option gets for this endpoint. */
export function pgSsl(ep: Pick<PgEndpoint, "host" | "tls">, role: "master" | "slave"): false | ConnectionOptions {
  const mode = ep.tls?.mode ?? defaultTlsMode(role);
  if (mode === "off") return false;
  if (mode === "require") return { rejectUnauthorized: false };
  const name = ep.tls?.servername ?? ep.host;
  return {
    rejectUnauthorized: true,
    ca: ep.tls?.ca,
    // SNI carries DNS names only; the check is ours, so that an IP host is checked as an IP.
    ...(isIP(name) ? {} : { servername: name }),
    checkServerIdentity: (_host: string, cert: PeerCertificate) => checkServerIdentity(name, cert),
  };
}

/**
 * A connection failure that comes from TLS, said in terms of the setting (the node, what the
 * server did, which field to change); null for any other failure. `field` names the setting,
 * e.g. `replication.master.tls`.
 */
export function explainTlsFailure(
  err: unknown,
  ep: Pick<PgEndpoint, "host" | "port" | "tls">,
  role: "master" | "slave",
  field: string,
): string | null {
  const mode = ep.tls?.mode ?? defaultTlsMode(role);
  const where = `${role} PostgreSQL ${ep.host}:${ep.port}`;
  const step = `connecting to ${where}`;
  const e = err as { message?: unknown; code?: unknown } | null;
  const msg = typeof e?.message === "string" ? e.message : "";
  const code = typeof e?.code === "string" ? e.code : "";
  if (/does not support SSL/i.test(msg)) {
    return `${step}: it does not offer TLS but ${field}.mode is ${mode}${ep.tls ? "" : " (the default)"}: turn ssl on in its postgresql.conf, or set ${field}.mode to "off" to accept cleartext`;
  }
  if (mode === "off" && code === "28000" && /no encryption/i.test(msg)) {
    return `${step}: it refuses cleartext logins (pg_hba.conf: hostssl) but ${field}.mode is off: set it to "require" or "verify-full"`;
  }
  if (mode !== "verify-full") return null;
  const name = ep.tls?.servername ?? ep.host;
  if (code === "ERR_TLS_CERT_ALTNAME_INVALID")
    return `${step}: its certificate is not valid for servername ${name} (${field}.servername): ${msg}`;
  if (/CERT|SIGNATURE|ISSUER/.test(code))
    return `${step}: its certificate is not trusted by ${field}.caFile ${ep.tls?.caFile ?? ""} (${code})`;
  return null;
}

/**
 * SQL quoting for names read from a node's catalog or the config (never for values). Bounded as
 * PostgreSQL bounds them (NAMEDATALEN - 1 bytes, no NUL): a longer name is none a real server
 * sends, and would be truncated by the receiving one into a different name.
 */
export function ident(name: string): string {
  if (typeof name !== "string" || name === "" || name.includes("\0") || utf8.encode(name).length > MAX_NAME_BYTES) {
    throw new Error(
      `refused a SQL name that PostgreSQL could not have sent (1-${MAX_NAME_BYTES} bytes, no NUL): ${JSON.stringify(String(name).slice(0, 80))}`,
    );
  }
  return `"${name.replaceAll('"', '""')}"`;
}
const MAX_NAME_BYTES = 63;
export const qualified = (schema: string, name: string) => `${ident(schema)}.${ident(name)}`;
/** For the agent's own constants and validated config only: values from a node go as bound parameters. */
export const literal = (s: string) => `'${s.replaceAll("'", "''")}'`;

import pg from "pg";
import { explainTlsFailure, pgSsl } from "../pg.js";
import { PG_PASSWORD_ENV, type LanPostgresProbe } from "./config.js";
import { ProbeFailure, TimeoutError, describe, type ProbeContext } from "./common.js";

/**
 * A real login to the master's database, then `SELECT 1`: proves PostgreSQL accepts the
 * replication user, not merely that something listens on 5432. The password never appears in
 * a detail: PostgreSQL's messages do not carry it, and it is scrubbed anyway.
 */
export async function probePostgres(
  p: LanPostgresProbe,
  host: string,
  ctx: ProbeContext,
  timeoutMs: number,
): Promise<string> {
  const client = new pg.Client({
    host,
    port: p.port,
    user: p.user,
    database: p.database,
    password: p.password,
    ssl: pgSsl({ host, tls: p.tls }, "master"),
    connectionTimeoutMillis: timeoutMs,
    query_timeout: timeoutMs,
    application_name: "xivo-ha-lan-probe",
  });
  client.on("error", () => undefined); // a server that goes away after login: not a crash
  // pg would wait for a garbage "message" of garbage length until the timeout; a PostgreSQL
  // server answers a startup packet with R (authentication), E (error) or v (protocol version),
  // and a TLS request with S or N.
  let notPostgres: string | undefined;
  client.connection.stream.prependOnceListener("data", (chunk: Buffer) => {
    if (!"REvSN".includes(String.fromCharCode(chunk[0] ?? 0))) {
      notPostgres = JSON.stringify(chunk.subarray(0, 40).toString("latin1"));
      client.connection.stream.destroy();
    }
  });
  const close = () => void client.end().catch(() => undefined);
  ctx.signal.addEventListener("abort", close, { once: true });
  try {
    ctx.note = "connecting and logging in";
    await client.connect();
    ctx.note = "logged in, no answer to SELECT 1";
    await client.query("SELECT 1");
    return `login as "${p.user}" to "${p.database}" ok`;
  } catch (err) {
    if (notPostgres) throw new ProbeFailure(`not a PostgreSQL server: ${notPostgres}`);
    throw new ProbeFailure(scrub(explain(err, p, host, timeoutMs), p.password));
  } finally {
    ctx.signal.removeEventListener("abort", close);
    await client.end().catch(() => undefined);
  }
}

/** SQLSTATEs (PostgreSQL appendix A) worth a plain reading. */
const SQLSTATE: Record<string, (p: LanPostgresProbe) => string> = {
  "28P01": (p) => `authentication failed for user "${p.user}"`,
  "28000": () => "login rejected (pg_hba.conf)",
  "3D000": (p) => `database "${p.database}" does not exist`,
  "57P03": () => "server is not accepting connections (starting up, shutting down or in recovery)",
  "53300": () => "too many connections",
};

function explain(err: unknown, p: LanPostgresProbe, host: string, timeoutMs: number): string {
  const tls = explainTlsFailure(err, { host, port: p.port, tls: p.tls }, "master", `lan probe "${p.name}" tls`);
  if (tls) return tls;
  const code = (err as { code?: unknown } | undefined)?.code;
  if (err instanceof pg.DatabaseError && typeof code === "string") {
    const known = SQLSTATE[code];
    if (code === "28000") return `${known!(p)}: ${err.message}`.slice(0, 200);
    return known ? known(p) : `${code}: ${err.message}`.slice(0, 200);
  }
  const msg = err instanceof Error ? err.message : String(err);
  if (/timeout expired|connection timeout|Query read timeout/i.test(msg))
    throw new TimeoutError(`timeout after ${timeoutMs} ms`);
  if (/password must be a string|no password/i.test(msg)) {
    return p.password === undefined
      ? `server asks for a password and none is configured (set ${PG_PASSWORD_ENV})`
      : "password authentication could not proceed";
  }
  if (/Connection terminated/i.test(msg)) return "connection closed by the server during login";
  if (/SASL|SCRAM/i.test(msg)) return "authentication failed (SCRAM exchange)";
  return describe(err);
}

function scrub(text: string, password: string | undefined): string {
  return password ? text.split(password).join("[redacted]") : text;
}

import pg from "pg";
import { explainTlsFailure, ident, literal, pgSsl, qualified, type PgEndpoint } from "../pg.js";

/**
 * Connections and catalog look-ups for reconciliation. Every value crosses as text (ids,
 * rows as jsonb text): JavaScript numbers would round bigints and numerics.
 */

/** An operational failure with a message fit for the report (never a password). */
export class FailbackError extends Error {
  override name = "FailbackError";
}

export function describeEndpoint(e: PgEndpoint): string {
  return `${e.user}@${e.host}:${e.port}/${e.database}`;
}

export async function connect(
  role: "master" | "slave",
  e: PgEndpoint,
  t: { connectTimeoutMs: number; statementTimeoutMs: number },
): Promise<pg.Client> {
  const client = new pg.Client({
    host: e.host,
    port: e.port,
    database: e.database,
    user: e.user,
    password: e.password,
    ssl: pgSsl(e, role),
    application_name: `xivo-ha-failback-${role}`,
    connectionTimeoutMillis: t.connectTimeoutMs,
    statement_timeout: t.statementTimeoutMs,
    // Rows leave the slave as JSON text: fix the zone so the same row always reads the same.
    options: "-c TimeZone=UTC",
  });
  // A backend that dies while the client idles emits 'error'; the next query reports it instead.
  client.on("error", () => undefined);
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => undefined);
    throw new FailbackError(
      explainTlsFailure(err, e, role, `failback.${role}.tls`) ??
        `cannot connect to the ${role} (${describeEndpoint(e)}): ${pgMessage(err)}`,
    );
  }
  return client;
}

export function pgMessage(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) return pgMessage(err.errors[0]);
  if (err instanceof Error) return err.message || String((err as { code?: unknown }).code ?? err.name);
  return String(err);
}

export { ident, literal, qualified };

/** Whether the server records when each row was written (`track_commit_timestamp`): the user-state merge orders by it. */
export async function tracksCommitTimes(client: pg.ClientBase): Promise<boolean> {
  const r = await client.query<{ on: boolean }>("SELECT current_setting('track_commit_timestamp') = 'on' AS on");
  return r.rows[0]?.on === true;
}

export interface ColumnInfo {
  name: string;
  notNull: boolean;
  /** 'a' = GENERATED ALWAYS AS IDENTITY, 'd' = BY DEFAULT, '' = none. */
  identity: string;
  generated: boolean;
}

/** The table's live columns, or null when it does not exist. */
export async function columns(client: pg.Client, schema: string, name: string): Promise<ColumnInfo[] | null> {
  const res = await client.query<{ name: string; notnull: boolean; identity: string; generated: string }>(
    `SELECT a.attname AS name, a.attnotnull AS notnull, a.attidentity::text AS identity, a.attgenerated::text AS generated
       FROM pg_attribute a
      WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
      ORDER BY a.attnum`,
    [qualified(schema, name)],
  );
  if (res.rowCount === 0) {
    const exists = await client.query<{ oid: string | null }>("SELECT to_regclass($1)::text AS oid", [
      qualified(schema, name),
    ]);
    if (exists.rows[0]?.oid == null) return null;
  }
  return res.rows.map((r) => ({
    name: r.name,
    notNull: r.notnull,
    identity: r.identity,
    generated: r.generated !== "",
  }));
}

/** The sequence behind a serial or identity column, or null. */
export async function serialSequence(
  client: pg.Client,
  schema: string,
  name: string,
  column: string,
): Promise<string | null> {
  const res = await client.query<{ seq: string | null }>("SELECT pg_get_serial_sequence($1, $2) AS seq", [
    qualified(schema, name),
    column,
  ]);
  return res.rows[0]?.seq ?? null;
}

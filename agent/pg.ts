/** Where a PostgreSQL server is and whom to log in as; the password never goes into a message. */
export interface PgEndpoint {
  host: string;
  port: number;
  database: string;
  user: string;
  password?: string | undefined;
}

/**
 * SQL quoting for names read from a node's catalog or the config (never for values). Bounded as
 * PostgreSQL bounds them (NAMEDATALEN - 1 bytes, no NUL): a longer name is none a real server
 * sends, and would be truncated by the receiving one into a different name.
 */
export function ident(name: string): string {
  if (typeof name !== "string" || name === "" || name.includes("\0") || utf8.encode(name).length > MAX_NAME_BYTES) {
    throw new Error(`refused a SQL name that PostgreSQL could not have sent (1-${MAX_NAME_BYTES} bytes, no NUL): ${JSON.stringify(String(name).slice(0, 80))}`);
  }
  return `"${name.replaceAll('"', '""')}"`;
}
const MAX_NAME_BYTES = 63;
const utf8 = new TextEncoder();
export const qualified = (schema: string, name: string) => `${ident(schema)}.${ident(name)}`;
/** For the agent's own constants and validated config only: values from a node go as bound parameters. */
export const literal = (s: string) => `'${s.replaceAll("'", "''")}'`;

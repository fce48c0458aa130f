/** Where a PostgreSQL server is and whom to log in as; the password never goes into a message. */
export interface PgEndpoint {
  host: string;
  port: number;
  database: string;
  user: string;
  password?: string | undefined;
}

/** SQL quoting for names read from the catalog (never for values a user typed into a query). */
export const ident = (name: string) => `"${name.replaceAll('"', '""')}"`;
export const qualified = (schema: string, name: string) => `${ident(schema)}.${ident(name)}`;
export const literal = (s: string) => `'${s.replaceAll("'", "''")}'`;

/** Where a PostgreSQL server is and whom to log in as; the password never goes into a message. */
export interface PgEndpoint {
  host: string;
  port: number;
  database: string;
  user: string;
  password?: string | undefined;
}

import pg from "pg";
import { explainTlsFailure, pgSsl, type PgEndpoint } from "../pg.js";
import { SESSION_SETTINGS, literal } from "./sql.js";

/**
 * One connection to one node, labelled for error messages ("master 10.0.0.2:5432: …") and
 * never carrying its password into one. Socket loss is captured, not thrown from an event
 * handler, so a node that vanishes fails the run instead of the daemon.
 */

export interface Session {
  readonly label: string;
  readonly client: pg.Client;
  /** True once killed or closed. */
  readonly dead: boolean;
  /** Cuts the socket at once: the server rolls back whatever was open. Safe to call twice. */
  kill(): void;
  /** Orderly close; falls back to kill(). */
  close(): Promise<void>;
}

export class NodeError extends Error {
  override name = "NodeError";
}

export async function openSession(
  role: "master" | "slave",
  ep: PgEndpoint & { connectTimeoutMs: number },
  settings: { statementTimeoutMs: number; lockTimeoutMs: number },
): Promise<Session> {
  const label = `${role} ${ep.host}:${ep.port}`;
  const client = new pg.Client({
    host: ep.host,
    port: ep.port,
    database: ep.database,
    user: ep.user,
    password: ep.password ?? "",
    ssl: pgSsl(ep, role),
    connectionTimeoutMillis: ep.connectTimeoutMs,
    application_name: "xivo-ha-replication",
    // A cut network with no RST would otherwise leave a read waiting forever.
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
  });
  client.on("error", () => {
    // Reported through the failing query; an idle connection's loss surfaces at its next use.
  });
  let dead = false;
  const kill = () => {
    if (dead) return;
    dead = true;
    (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
  };
  try {
    await client.connect();
    const gucs = {
      ...SESSION_SETTINGS,
      statement_timeout: `${settings.statementTimeoutMs}`,
      lock_timeout: `${settings.lockTimeoutMs}`,
      // An agent that dies mid-run must not pin the master's snapshot (and its locks) forever.
      idle_in_transaction_session_timeout: `${settings.statementTimeoutMs}`,
    };
    await client.query(
      Object.entries(gucs)
        .map(([k, v]) => `SET ${k} = ${literal(v)}`)
        .join("; "),
    );
  } catch (err) {
    kill();
    throw new NodeError(explainTlsFailure(err, ep, role, `replication.${role}.tls`) ?? `${label}: ${describe(err)}`);
  }
  return {
    label,
    client,
    get dead() {
      return dead;
    },
    kill,
    async close() {
      if (dead) return;
      dead = true;
      await Promise.race([client.end().catch(() => undefined), new Promise((r) => setTimeout(r, 2_000).unref())]);
      (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
    },
  };
}

/** Runs one node's part, and names the node and the step in any error. */
export async function on<T>(s: Session, what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw new Error(`${s.label}: ${what}: ${describe(err)}`);
  }
}

/** The same step on both nodes at once; neither left running when the other fails. */
export async function onBoth<T>(
  master: Session,
  slave: Session,
  what: string,
  fn: (s: Session) => Promise<T>,
): Promise<[T, T]> {
  const [m, s] = await Promise.allSettled([on(master, what, () => fn(master)), on(slave, what, () => fn(slave))]);
  if (m.status === "rejected") throw m.reason;
  if (s.status === "rejected") throw s.reason;
  return [m.value, s.value];
}

export async function step(s: Session, what: string, sql: string): Promise<void> {
  await on(s, what, () => s.client.query(sql));
}

/** An error's message as a reader wants it: the server's text, its SQLSTATE, the socket's code. */
export function describe(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length) return describe(err.errors[0]);
  if (err instanceof Error) {
    const e = err as Error & { code?: string; detail?: string };
    const msg = err.message || e.code || err.name;
    const code = e.code && !msg.includes(e.code) ? ` (${e.code})` : "";
    return `${msg}${code}${e.detail ? ` — ${e.detail}` : ""}`;
  }
  return String(err);
}

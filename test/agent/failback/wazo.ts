// Wazo's call-record tables (from the shared fixture) on a fresh master and slave, the calls a
// node's Asterisk would write into them, and a view of a database that ignores ids but keeps
// every link, so "the master holds the union, each row once" is one assert.
import type pg from "pg";
import { FailbackConfig, type FailbackTable } from "../../../agent/failback/config.js";
import { connectPostgres, type PostgresServer } from "../../support/postgres.js";
import { CALL_RECORD_SCHEMA, CALL_RECORD_TABLES } from "../../support/wazo-schema.js";
import { until } from "../../support/until.js";

let dbSeq = 0;

export interface Pair {
  database: string;
  master: pg.Client;
  slave: pg.Client;
  /** A valid config for this pair (superuser on both), with overrides merged in. */
  config(over?: Partial<Record<keyof FailbackConfig, unknown>>): FailbackConfig;
  close(): Promise<void>;
}

/** A fresh database with the schema on each server, so every test starts from scratch. */
export async function freshPair(masterServer: PostgresServer, slaveServer: PostgresServer): Promise<Pair> {
  const database = `fb_${++dbSeq}`;
  for (const s of [masterServer, slaveServer]) {
    const admin = await connectPostgres(s, "postgres");
    await admin.query(`CREATE DATABASE ${database}`);
    await admin.end();
  }
  const master = await connectPostgres(masterServer, database);
  const slave = await connectPostgres(slaveServer, database);
  for (const db of [master, slave]) {
    await db.query("SET TimeZone = 'UTC'");
    await db.query(CALL_RECORD_SCHEMA);
  }
  const endpoint = (s: PostgresServer) => ({
    host: s.host,
    port: s.port,
    database,
    user: s.user,
    password: s.password,
  });
  return {
    database,
    master,
    slave,
    config: (over = {}) =>
      FailbackConfig.parse({ master: endpoint(masterServer), slave: endpoint(slaveServer), batchRows: 7, ...over }),
    close: async () => {
      await Promise.all([master.end(), slave.end()]);
    },
  };
}

/**
 * `n` calls as a node's Asterisk and call-logd would write them: a call_log row, its two
 * participants, three CEL rows pointing at it, two queue_log rows. Ids come from the node's own
 * sequences, so a master and a slave that both write collide on them. Text carries quotes,
 * newlines and non-ASCII, timestamps microseconds: the copy must keep them exactly.
 */
export async function writeCalls(db: pg.Client, node: string, n: number, from = 0): Promise<void> {
  for (let i = from; i < from + n; i++) {
    const tag = `${node}-${i}`;
    const start = `2024-05-0${1 + (i % 9)} 10:${String(i % 60).padStart(2, "0")}:00.123456+00`;
    const { rows } = await db.query<{ id: number }>(
      `INSERT INTO call_log (date, date_answer, date_end, source_name, source_exten, destination_name, destination_exten, direction, user_field, conversation_id)
       VALUES ($1, $1::timestamptz + interval '2 s', $1::timestamptz + interval '65.5 s', $2, $3, 'Bob "Bobby" O''Neil', '1002', 'internal', $4, $5) RETURNING id`,
      [start, `Zoë ${tag}`, `10${i}`, `line1\nline2 ${tag}`, `conv-${tag}`],
    );
    const callId = rows[0]!.id;
    await db.query(
      `INSERT INTO call_log_participant (call_log_id, user_uuid, line_id, role, tags, answered) VALUES
       ($1, $2, 1, 'source', '{a,"b c"}', true), ($1, $3, NULL, 'destination', '{}', $4)`,
      [callId, `src-${tag}`, `dst-${tag}`, i % 2 === 0],
    );
    for (const [j, ev] of ["CHAN_START", "ANSWER", "HANGUP"].entries()) {
      await db.query(
        `INSERT INTO cel (eventtype, eventtime, cid_name, cid_num, exten, context, channame, appname, uniqueid, linkedid, extra, call_log_id)
         VALUES ($1, $2::timestamptz + make_interval(secs => $3), 'Zoë', '1001', '1002', 'default', 'PJSIP/abc-0001', 'Dial', $4, $5, $6, $7)`,
        [ev, start, j * 1.000001, `uid-${tag}`, `lnk-${tag}`, j === 2 ? '{"hangupcause":16}' : null, callId],
      );
    }
    await db.query(
      `INSERT INTO queue_log (time, callid, queuename, agent, event, data1) VALUES
       ($1, $2, 'sales', 'NONE', 'ENTERQUEUE', ''), ($1, $2, 'sales', 'Agent/1', 'CONNECT', '3')`,
      [start.slice(0, 26), `q-${tag}`],
    );
  }
}

/** Every row of the four tables, with ids replaced by what they link to; sorted, so comparable. */
export async function view(db: pg.Client): Promise<Record<(typeof CALL_RECORD_TABLES)[number], string[]>> {
  const q = async (sql: string) => (await db.query<{ r: string }>(sql)).rows.map((x) => x.r).sort();
  return {
    call_log: await q(`SELECT (to_jsonb(c) - 'id')::text AS r FROM call_log c`),
    call_log_participant: await q(
      `SELECT jsonb_build_object('p', to_jsonb(p) - 'call_log_id', 'call', c.conversation_id)::text AS r
         FROM call_log_participant p LEFT JOIN call_log c ON c.id = p.call_log_id`,
    ),
    cel: await q(
      `SELECT jsonb_build_object('e', to_jsonb(e) - 'id' - 'call_log_id', 'call', c.conversation_id)::text AS r FROM cel e LEFT JOIN call_log c ON c.id = e.call_log_id`,
    ),
    queue_log: await q(`SELECT (to_jsonb(q) - 'id')::text AS r FROM queue_log q`),
  };
}

export function union(a: Record<string, string[]>, b: Record<string, string[]>): Record<string, string[]> {
  return Object.fromEntries(Object.keys(a).map((k) => [k, [...a[k]!, ...b[k]!].sort()]));
}

export async function counts(db: pg.Client): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const t of [...CALL_RECORD_TABLES, "xivo_ha_reconciled"]) {
    const exists = await db.query<{ r: string | null }>("SELECT to_regclass($1)::text AS r", [t]);
    out[t] = exists.rows[0]!.r
      ? Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM ${t}`)).rows[0]!.n)
      : 0;
  }
  return out;
}

/** The default Wazo table list with one table's settings changed. */
export function tablesWith(name: string, patch: Partial<FailbackTable>): unknown[] {
  return FailbackConfig.parse({ master: { host: "x" } }).tables.map((t) => (t.name === name ? { ...t, ...patch } : t));
}

/** Polls until `probe` yields a value (every caller's is truthy); the bound only keeps a broken test from hanging. */
export const waitFor = <T>(probe: () => Promise<T | undefined | null>, what: string, boundMs = 20_000): Promise<T> =>
  until(what, probe, { timeoutMs: boundMs, everyMs: 20 });

/** The pid of the copy-back's master backend once it waits on a lock (a test holds one). */
export const blockedOnLock = (observer: pg.Client, what: string): Promise<number> =>
  waitFor(
    async () =>
      (
        await observer.query<{ pid: number }>(
          "SELECT pid FROM pg_stat_activity WHERE application_name = 'xivo-ha-failback-master' AND wait_event_type = 'Lock'",
        )
      ).rows[0]?.pid,
    what,
  );

/**
 * The user-service and forward columns of Wazo's userfeatures (xivo-dao's names and types), for
 * a fixture that lacks them.
 */
export const USER_SERVICE_COLUMNS = `ALTER TABLE userfeatures
  ADD COLUMN IF NOT EXISTS enablednd integer NOT NULL DEFAULT 0,
  ADD COLUMN IF NOT EXISTS incallfilter integer NOT NULL DEFAULT 0,
  ADD COLUMN IF NOT EXISTS enableunc integer NOT NULL DEFAULT 0,
  ADD COLUMN IF NOT EXISTS destunc varchar(128) NOT NULL DEFAULT '',
  ADD COLUMN IF NOT EXISTS enablerna integer NOT NULL DEFAULT 0,
  ADD COLUMN IF NOT EXISTS destrna varchar(128) NOT NULL DEFAULT '',
  ADD COLUMN IF NOT EXISTS enablebusy integer NOT NULL DEFAULT 0,
  ADD COLUMN IF NOT EXISTS destbusy varchar(128) NOT NULL DEFAULT ''`;

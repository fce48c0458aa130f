import type pg from "pg";
import {
  ReplicationConfig,
  resolveReplicationSecrets,
  type ResolvedReplicationConfig,
} from "../../../agent/replication/config.js";
import { connectPostgres, startPostgres, type PostgresServer } from "../../support/postgres.js";
import { sequenceValues, tableDigest, tableDigests } from "../../support/replica-compare.js";
import {
  createWazoFullSchema,
  FULL_EXCLUDED_TABLES,
  FULL_REPLICATED_TABLES,
  seedWazoFull,
  type FullSeedOptions,
} from "../../support/wazo-full-schema.js";
import {
  createWazoSchema,
  EXCLUDED_TABLES,
  REPLICATED_TABLES,
  seedWazo,
  type SeedOptions,
} from "../../support/wazo-schema.js";

/**
 * A master and a slave, both real PostgreSQL servers with the Wazo-like schema; the master
 * seeded and given the read-only role the README asks for, the slave with history of its own
 * in the excluded tables. Checksums here are computed differently from the module's own
 * fingerprints (replica-compare.ts: a digest of every row's text) so that the tests judge it
 * independently.
 */

export const REPLICA_USER = "xivo_ha_replica";
export const REPLICA_PASSWORD = "replica-secret-3c1f";

export interface Pair {
  master: PostgresServer;
  slave: PostgresServer;
  /** Superuser clients, for the tests' own checks and changes. */
  m: pg.Client;
  s: pg.Client;
  cfg(overrides?: Partial<ReplicationConfig>): ResolvedReplicationConfig;
  /**
   * Hands the write counts of `m` and `s` to each server's statistics now, as their backends do
   * by themselves within about 10 s of going idle: a memo run between exact runs only sees counted
   * writes (agent/replication/activity.ts).
   */
  counted(): Promise<void>;
  stop(): Promise<void>;
}

/** A schema for both nodes, the master's data, and history of the slave's own in the excluded tables. */
export interface Fixture {
  replicated: readonly string[];
  excluded: readonly string[];
  create(c: pg.ClientBase): Promise<void>;
  seed(c: pg.ClientBase): Promise<void>;
  slaveHistory: string;
}

/** Calls the slave made itself (same call-record tables in both fixtures), its call_log sequence ahead of the master's. */
const SLAVE_CALLS = `INSERT INTO call_log (date, source_name) SELECT timestamptz '2025-01-01 00:00+00' + i * interval '1 hour', 'slave call ' || i FROM generate_series(1, 25) i;
                   INSERT INTO cel (eventtype, eventtime, cid_name, cid_num, exten, context, channame, uniqueid, linkedid) VALUES ('CHAN_START', now(), 'slave', '1', 's', 'ctx', 'PJSIP/slave-0001', 'u', 'l');
                   SELECT nextval('call_log_id_seq') FROM generate_series(1, 40);`;

/** The compact Wazo-like schema of most replication tests (wazo-schema.ts). */
export function compactFixture(seed: SeedOptions = {}): Fixture {
  return {
    replicated: REPLICATED_TABLES,
    excluded: EXCLUDED_TABLES,
    create: createWazoSchema,
    seed: (c) => seedWazo(c, seed),
    slaveHistory: `${SLAVE_CALLS}
                   INSERT INTO stat_agent (name, number) VALUES ('Agent/slave', '1');
                   INSERT INTO netiface (ifname, address) VALUES ('eth0', '10.0.0.2');`,
  };
}

/** Wazo's schema in full (wazo-full-schema.ts). */
export function fullFixture(seed: FullSeedOptions = {}): Fixture {
  return {
    replicated: FULL_REPLICATED_TABLES,
    excluded: FULL_EXCLUDED_TABLES,
    create: createWazoFullSchema,
    seed: (c) => seedWazoFull(c, seed),
    slaveHistory: `${SLAVE_CALLS}
                   INSERT INTO stat_agent (name, number, tenant_uuid) VALUES ('Agent/slave', '1', 'local');
                   INSERT INTO netiface (ifname, networktype, type, family, address) VALUES ('eth0', 'voip', 'iface', 'inet', '10.0.0.2');`,
  };
}

/** A pair with the compact schema seeded with `seed`, or with the given fixture. */
export async function startPair(seed: SeedOptions | Fixture = {}): Promise<Pair> {
  const fixture = "create" in seed ? seed : compactFixture(seed);
  const servers = await Promise.allSettled([
    startPostgres({ database: "asterisk" }),
    startPostgres({ database: "asterisk" }),
  ]);
  const [mr, sr] = servers;
  if (mr.status === "rejected" || sr.status === "rejected") {
    await Promise.all(servers.map((r) => (r.status === "fulfilled" ? r.value.stop() : undefined)));
    throw mr.status === "rejected" ? mr.reason : (sr as PromiseRejectedResult).reason;
  }
  const master = mr.value;
  const slave = sr.value;
  const clients: pg.Client[] = [];
  const stop = async () => {
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
    await Promise.all([master.stop(), slave.stop()]);
  };
  try {
    const m = await connectPostgres(master);
    clients.push(m);
    const s = await connectPostgres(slave);
    clients.push(s);
    await fixture.create(m);
    await fixture.seed(m);
    await m.query(
      `CREATE ROLE ${REPLICA_USER} LOGIN PASSWORD '${REPLICA_PASSWORD}'; GRANT pg_read_all_data TO ${REPLICA_USER}`,
    );
    await fixture.create(s);
    // The slave's own history: replication must leave it alone.
    await s.query(fixture.slaveHistory);
    return {
      master,
      slave,
      m,
      s,
      cfg(overrides = {}) {
        const parsed = ReplicationConfig.parse({
          master: { host: master.host, port: master.port, user: REPLICA_USER, connectTimeoutMs: 5_000 },
          slave: {
            host: slave.host,
            port: slave.port,
            user: slave.user,
            password: slave.password,
            connectTimeoutMs: 5_000,
          },
          lockTimeoutMs: 5_000,
        });
        return resolveReplicationSecrets(
          { ...parsed, ...overrides },
          { XIVO_HA_REPL_MASTER_PASSWORD: REPLICA_PASSWORD },
        );
      },
      async counted() {
        await Promise.all([m, s].map((c) => c.query("SELECT pg_stat_force_next_flush()")));
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Row count and a digest of the rows (replica-compare.ts): equal iff the contents are equal. */
export const checksum = (c: pg.ClientBase, table: string): Promise<string> => tableDigest(c, table);
export const checksums = (c: pg.ClientBase, tables: readonly string[]): Promise<Record<string, string>> =>
  tableDigests(c, tables);

export const ALL_TABLES = [...REPLICATED_TABLES, ...EXCLUDED_TABLES] as const;

/**
 * Where each row physically is and which transaction wrote it, plus the table's storage file:
 * any rewrite (TRUNCATE, DELETE + COPY, UPDATE) changes this, a run that only reads does not.
 */
export async function rowVersions(c: pg.ClientBase, table: string): Promise<string> {
  const r = await c.query<{ f: string; h: string | null }>(
    `SELECT pg_relation_filenode('public.${table}')::text AS f, md5(string_agg(ctid::text || '@' || xmin::text, ',' ORDER BY ctid)) AS h FROM public.${table}`,
  );
  return `${r.rows[0]!.f}:${r.rows[0]!.h ?? "-"}`;
}

/** Every sequence of the schema, as `name → last_value/is_called`. */
export async function sequenceStates(c: pg.ClientBase): Promise<Record<string, string>> {
  const r = await c.query<{ relname: string }>(
    `SELECT relname FROM pg_class WHERE relkind = 'S' AND relnamespace = 'public'::regnamespace ORDER BY relname`,
  );
  const names = r.rows.map((x) => x.relname);
  return sequenceValues(c, names);
}

/** What the whole slave looks like: contents of every table and every sequence. */
export async function snapshot(
  c: pg.ClientBase,
  tables: readonly string[] = ALL_TABLES,
): Promise<{ tables: Record<string, string>; sequences: Record<string, string> }> {
  return { tables: await checksums(c, tables), sequences: await sequenceStates(c) };
}

export async function allRowVersions(c: pg.ClientBase, tables: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const t of tables) out.push(await rowVersions(c, t));
  return out;
}

export interface IndexState {
  oid: string;
  def: string;
  /** Valid, ready and live: usable by queries and kept up by writes. */
  valid: boolean;
  clustered: boolean;
  /** How many entries its last build or vacuum recorded (pg_class.reltuples). */
  entries: number;
  comment: string | null;
}

/** Every index of the schema as a node's catalog has it, by name. */
export async function indexStates(c: pg.ClientBase): Promise<Record<string, IndexState>> {
  const r = await c.query<IndexState & { name: string }>(
    `SELECT ic.relname AS name, ic.oid::text AS oid, pg_get_indexdef(i.indexrelid) AS def,
            i.indisvalid AND i.indisready AND i.indislive AS valid, i.indisclustered AS clustered,
            ic.reltuples::int AS entries, obj_description(ic.oid, 'pg_class') AS comment
       FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
      WHERE ic.relnamespace = 'public'::regnamespace`,
  );
  return Object.fromEntries(r.rows.map(({ name, ...rest }) => [name, rest]));
}

import type pg from "pg";
import type { Config } from "../config.js";
import { connect, describeEndpoint, pgMessage, tracksCommitTimes } from "../failback/db.js";
import { qualified, type PgEndpoint } from "../pg.js";
import { readCatalog } from "../replication/catalog.js";
import type { ResolvedReplicationConfig } from "../replication/config.js";
import { schemaDrift } from "../replication/drift.js";
import { selectSequences, selectTables } from "../replication/select.js";
import { describe, openSession, type Session } from "../replication/session.js";
import { failed, info, ok, warning, type CheckResult } from "./check.js";

/**
 * Replication and copy-back, checked before they are needed: each through the same connection
 * helper the real run uses (so its TLS and timeouts are the run's), read-only on both nodes.
 */

export async function replicationChecks(r: ResolvedReplicationConfig): Promise<CheckResult[]> {
  const out: CheckResult[] = [];
  const settings = { statementTimeoutMs: Math.min(r.statementTimeoutMs, 30_000), lockTimeoutMs: r.lockTimeoutMs };
  const open = async (
    role: "master" | "slave",
    ep: PgEndpoint & { connectTimeoutMs: number },
  ): Promise<Session | null> => {
    try {
      const s = await openSession(role, ep, settings);
      out.push(ok(`replication ${role} login`, `${describeEndpoint(ep)} as configured`));
      return s;
    } catch (err) {
      out.push(
        failed(
          `replication ${role} login`,
          `${describeEndpoint(ep)}: ${(err as Error).message}`,
          `check replication.${role} (host, port, user, password, pg_hba.conf)`,
        ),
      );
      return null;
    }
  };
  const [master, slave] = await Promise.all([open("master", r.master), open("slave", r.slave)]);
  try {
    if (!master || !slave) return out;
    const [mv, sv] = await Promise.all([major(master.client), major(slave.client)]);
    out.push(
      mv === sv
        ? ok("postgresql versions", `both ${mv}`)
        : failed(
            "postgresql versions",
            `master ${mv}, slave ${sv}`,
            "upgrade both nodes to the same PostgreSQL major version",
          ),
    );
    for (const [role, s] of [
      ["master", master],
      ["slave", slave],
    ] as const)
      out.push(await tlsCheck(`replication ${role} tls`, s.client));

    const [mCat, sCat] = await Promise.all([readCatalog(master.client, r.schema), readCatalog(slave.client, r.schema)]);
    const sel = { include: r.include, exclude: r.exclude };
    const tables = { master: selectTables(mCat.tables.keys(), sel), slave: selectTables(sCat.tables.keys(), sel) };
    const seqs = { master: selectSequences(mCat.sequences, sel), slave: selectSequences(sCat.sequences, sel) };

    const unreadable = await names(
      master.client,
      `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = $1 AND c.relname = ANY($2) AND NOT has_table_privilege(c.oid, 'SELECT') ORDER BY 1`,
      [r.schema, tables.master],
    );
    out.push(
      unreadable.length === 0
        ? ok("replica role reads", `${r.master.user} can read all ${tables.master.length} replicated table(s)`)
        : failed(
            "replica role reads",
            `${r.master.user} cannot read: ${unreadable.join(", ")}`,
            `GRANT pg_read_all_data TO ${r.master.user} (on the master)`,
          ),
    );
    out.push(await canSetReplicationRole(`replication slave role`, slave.client, r.slave.user));
    const foreign = await names(
      slave.client,
      `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE c.relkind = 'S' AND n.nspname = $1 AND c.relname = ANY($2) AND NOT pg_has_role(c.relowner, 'USAGE') ORDER BY 1`,
      [r.schema, seqs.slave],
    );
    out.push(
      foreign.length === 0
        ? ok("slave owns sequences", `${r.slave.user} owns all ${seqs.slave.length} replicated sequence(s)`)
        : failed(
            "slave owns sequences",
            `${r.slave.user} does not own: ${foreign.join(", ")}`,
            `ALTER SEQUENCE … OWNER TO ${r.slave.user} (on the slave)`,
          ),
    );
    const drift = schemaDrift(mCat, sCat, tables, seqs);
    out.push(
      drift.length === 0
        ? ok("schema drift", `none across ${tables.master.length} table(s) (nothing applied)`)
        : failed(
            "schema drift",
            `${drift.length} difference(s): ${drift.slice(0, 5).join("; ")}${drift.length > 5 ? "; …" : ""}`,
            "upgrade the slave to the master's Wazo version; replication refuses to run until then",
          ),
    );
    for (const [role, s] of [
      ["master", master],
      ["slave", slave],
    ] as const)
      out.push(await writeCountersCheck(`replication ${role} write counters`, s.client));
    out.push(await sipExpiryCheck(master.client, r.schema));
  } catch (err) {
    out.push(failed("replication checks", describe(err), "see the message"));
  } finally {
    await Promise.all([master?.close(), slave?.close()]);
  }
  return out;
}

export async function failbackChecks(f: NonNullable<Config["failback"]>): Promise<CheckResult[]> {
  const out: CheckResult[] = [];
  const t = { connectTimeoutMs: f.connectTimeoutMs, statementTimeoutMs: Math.min(f.statementTimeoutMs, 30_000) };
  for (const role of ["master", "slave"] as const) {
    let client: pg.Client | null = null;
    try {
      client = await connect(role, f[role], t);
      out.push(ok(`copy-back ${role} login`, describeEndpoint(f[role])));
      out.push(await tlsCheck(`copy-back ${role} tls`, client));
      if (f.userState) out.push(await commitTimestampCheck(`copy-back ${role} commit times`, client));
      // Copy-back reads the slave's call records and inserts them on the master.
      const privilege = role === "master" ? "INSERT" : "SELECT";
      const denied = (
        await client.query<{ t: string }>(
          `SELECT t.s || '.' || t.n AS t FROM unnest($1::text[], $2::text[]) AS t(s, n)
            WHERE to_regclass(quote_ident(t.s) || '.' || quote_ident(t.n)) IS NULL
               OR NOT has_table_privilege(to_regclass(quote_ident(t.s) || '.' || quote_ident(t.n)), $3)`,
          [f.tables.map((x) => x.schema), f.tables.map((x) => x.name), privilege],
        )
      ).rows.map((r) => r.t);
      const name = `copy-back ${role} ${privilege === "INSERT" ? "writes" : "reads"}`;
      out.push(
        denied.length === 0
          ? ok(name, `${f[role].user} may ${privilege} on ${f.tables.map((x) => x.name).join(", ")}`)
          : failed(
              name,
              `${f[role].user} may not ${privilege} on (or there is no) ${denied.join(", ")}`,
              `GRANT ${privilege} ON those tables TO ${f[role].user} (on the ${role})`,
            ),
      );
    } catch (err) {
      out.push(
        failed(
          `copy-back ${role} login`,
          pgMessage(err),
          `check failback.${role} (host, port, user, password, pg_hba.conf)`,
        ),
      );
    } finally {
      await client?.end().catch(() => undefined);
    }
  }
  return out;
}

async function major(c: pg.ClientBase): Promise<number> {
  const r = await c.query<{ v: string }>("SELECT current_setting('server_version_num') AS v");
  return Math.floor(Number(r.rows[0]!.v) / 10000);
}

async function names(c: pg.ClientBase, sql: string, params: unknown[]): Promise<string[]> {
  return (await c.query<{ relname: string }>(sql, params)).rows.map((r) => r.relname);
}

async function canSetReplicationRole(name: string, c: pg.ClientBase, user: string): Promise<CheckResult> {
  try {
    await c.query("BEGIN");
    await c.query("SET LOCAL session_replication_role = replica");
    return ok(name, `${user} may set session_replication_role`);
  } catch (err) {
    return failed(
      name,
      `${user} may not set session_replication_role: ${pgMessage(err)}`,
      `GRANT SET ON PARAMETER session_replication_role TO ${user} (PostgreSQL 15+), or make it superuser`,
    );
  } finally {
    await c.query("ROLLBACK").catch(() => undefined);
  }
}

/**
 * User state changed on both nodes goes to the later change only when each node knows when its
 * rows were written; without it the master's value is kept (agent/failback/userstate-merge.ts).
 * Off on a stock node and not an error, so shown, not judged.
 */
async function commitTimestampCheck(name: string, c: pg.ClientBase): Promise<CheckResult> {
  return (await tracksCommitTimes(c))
    ? ok(name, "track_commit_timestamp is on: user state changed on both nodes goes to the later change")
    : info(
        name,
        "track_commit_timestamp is off: user state changed on both nodes keeps the master's value " +
          "(ALTER SYSTEM SET track_commit_timestamp = on, then restart PostgreSQL, to let the later change win)",
      );
}

/**
 * Between exact runs, replication reads only the tables PostgreSQL's write counters say were
 * written (agent/replication/activity.ts). Without them every run is exact: correct, slower.
 */
async function writeCountersCheck(name: string, c: pg.ClientBase): Promise<CheckResult> {
  const r = await c.query<{ on: boolean }>("SELECT current_setting('track_counts') = 'on' AS on");
  return r.rows[0]?.on
    ? ok(name, "track_counts is on: runs between exact ones read only the tables written since")
    : info(
        name,
        "track_counts is off: every replication run reads every table (and autovacuum does not run); " +
          "ALTER SYSTEM SET track_counts = on, then SELECT pg_reload_conf()",
      );
}

/** What the connection actually negotiated; the setting to compare it to is the endpoint's own. */
async function tlsCheck(name: string, c: pg.ClientBase): Promise<CheckResult> {
  const r = await c.query<{ ssl: boolean; version: string | null }>(
    "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
  );
  const row = r.rows[0];
  return row?.ssl ? ok(name, `encrypted (${row.version})`) : info(name, "not encrypted, as configured");
}

/** The seed's advice for SIP registrations: short enough that phones find the slave fast. */
const SIP_EXPIRY_ADVICE = { min: 20, max: 120, default: 40 } as const;

/**
 * Registration expiry as the master's `asterisk` database holds it: XiVO's `staticsip` general
 * section (minexpiry / maxexpiry / defaultexpiry), or Wazo's PJSIP `aor` options of each tenant's
 * global SIP template (minimum_expiration / maximum_expiration / default_expiration).
 */
export async function sipExpiryCheck(c: pg.ClientBase, schema: string): Promise<CheckResult> {
  // The replication session's search_path is pg_catalog only: every name is qualified.
  const t = (name: string) => qualified(schema, name);
  const name = "sip registration expiry";
  const read = async (sql: string): Promise<Map<string, number> | null> => {
    try {
      await c.query("SAVEPOINT xivo_ha_doctor");
      const rows = (await c.query<{ k: string; v: string }>(sql)).rows;
      await c.query("RELEASE SAVEPOINT xivo_ha_doctor");
      const m = new Map<string, number>();
      // Several tenants, several global templates: the slowest one is what phones wait for.
      for (const r of rows) if (/^\d+$/.test(r.v.trim())) m.set(r.k, Math.max(m.get(r.k) ?? 0, Number(r.v.trim())));
      return m.size ? m : null;
    } catch {
      await c.query("ROLLBACK TO SAVEPOINT xivo_ha_doctor").catch(() => undefined);
      return null; // not this generation's table
    }
  };
  await c.query("BEGIN READ ONLY");
  try {
    const xivo = await read(`SELECT var_name AS k, var_val AS v FROM ${t("staticsip")}
       WHERE category = 'general' AND commented = 0 AND var_name IN ('minexpiry', 'maxexpiry', 'defaultexpiry')`);
    const wazo = xivo
      ? null
      : await read(`SELECT o.key AS k, o.value AS v FROM ${t("endpoint_sip_section_option")} o
           JOIN ${t("endpoint_sip_section")} s ON s.uuid = o.endpoint_sip_section_uuid
           JOIN ${t("tenant")} tn ON tn.global_sip_template_uuid = s.endpoint_sip_uuid
          WHERE s.type = 'aor' AND o.key IN ('minimum_expiration', 'maximum_expiration', 'default_expiration')`);
    const got = xivo ?? wazo;
    if (!got) return info(name, "not checked: no expiry setting found in the master's database");
    const [min, max, def] = xivo
      ? ["minexpiry", "maxexpiry", "defaultexpiry"]
      : ["minimum_expiration", "maximum_expiration", "default_expiration"];
    const v = { min: got.get(min!), max: got.get(max!), default: got.get(def!) };
    const seen = `${min} ${v.min ?? "unset"}, ${max} ${v.max ?? "unset"}, ${def} ${v.default ?? "unset"}`;
    const a = SIP_EXPIRY_ADVICE;
    const off = (v.max ?? Infinity) > a.max || (v.default ?? Infinity) > a.max || (v.min ?? 0) > a.min;
    return off
      ? warning(
          name,
          `${seen}: phones may take that long to register on the slave after a failover`,
          `set ${min} ${a.min}, ${max} ${a.max}, ${def} ${a.default}`,
        )
      : ok(name, seen);
  } finally {
    await c.query("ROLLBACK").catch(() => undefined);
  }
}

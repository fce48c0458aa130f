import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type pg from "pg";
import { z } from "zod";
import type { Logger } from "../log.js";
import { writeFileAtomic } from "../state.js";
import type { FailbackConfig, UserStateConfig, UserStateTable } from "./config.js";
import type { CopyContext } from "./copy.js";
import { columns, connect, FailbackError, ident, pgMessage, qualified, tracksCommitTimes } from "./db.js";
import * as ledger from "./ledger.js";
import { changedSince, mergeRow, type NodeRow } from "./userstate-merge.js";

/**
 * What the slave's users changed while it was active (DND, forwards…), back on the master at
 * failback. At failover, before the slave's telephony starts, the agent records the baseline: the
 * user-state columns as the slave replicated them from the master, by user key, in its state
 * directory. At failback, inside the copy-back's master transaction, every user the slave changed
 * since is merged column by column (userstate-merge.ts) and written to the master, and recorded
 * in the ledger under this failover's baseline id: a rolled-back run leaves nothing, a committed
 * one is never applied again.
 */

export const BASELINE_FILE = "userstate-baseline.json";

const Baseline = z.object({
  v: z.literal(1),
  /** Names this failover in the ledger: each failover's changes are applied once. */
  id: z.string().regex(/^[0-9a-f]{32}$/),
  takenAt: z.number().int(),
  tables: z.array(
    z.object({
      schema: z.string(),
      name: z.string(),
      key: z.string(),
      columns: z.array(z.string()).min(1),
      /** [user key, the columns' JSON texts]. */
      rows: z.array(z.tuple([z.string(), z.array(z.string())])),
    }),
  ),
});
type Baseline = z.infer<typeof Baseline>;

export interface UserStateResult {
  table: string;
  /** Users whose settings differ on the slave from the baseline. */
  changedOnSlave: number;
  /** Users the master received at least one setting for. */
  applied: number;
  /** Users whose every slave change lost to a later master change. */
  keptMaster: number;
  /** Users a committed run already handled for this failover. */
  alreadyDone: number;
  /** Users deleted on the master meanwhile, or created on the slave: left alone. */
  skipped: number;
  notes: string[];
}

export interface UserStateReport {
  /** The failover's baseline id, or null when none was recorded. */
  baseline: string | null;
  tables: UserStateResult[];
  notes: string[];
}

const MAX_NOTES = 50;

/**
 * A node's rows as key → JSON text of each column, plus the commit time of the row's last write
 * when `commitTimes` (the node tracks them, asked once per copy-back: tracksCommitTimes).
 */
async function readRows(
  client: pg.Client,
  t: UserStateTable,
  cols: string[],
  opts: { keys?: string[]; limit?: number; forUpdate?: boolean; commitTimes?: boolean },
): Promise<Map<string, NodeRow>> {
  const ts = opts.commitTimes
    ? `to_char(pg_xact_commit_timestamp(x.xmin) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US')`
    : "NULL::text";
  const values = cols.map((c) => `coalesce(to_jsonb(x.${ident(c)})::text, 'null')`).join(", ");
  const params: unknown[] = [];
  let sql = `SELECT x.${ident(t.key)}::text AS k, ARRAY[${values}]::text[] AS v, ${ts} AS ts FROM ${qualified(t.schema, t.name)} x`;
  if (opts.keys) {
    params.push(opts.keys);
    sql += ` WHERE x.${ident(t.key)}::text = ANY($1::text[])`;
  }
  if (opts.limit) sql += ` LIMIT ${opts.limit + 1}`;
  if (opts.forUpdate) sql += " FOR UPDATE OF x";
  const res = await client.query<{ k: string; v: string[]; ts: string | null }>(sql, params);
  if (opts.limit && res.rows.length > opts.limit) {
    throw new FailbackError(
      `${t.schema}.${t.name}: more than ${opts.limit} rows (failback.userState.maxRows): user state not handled`,
    );
  }
  return new Map(res.rows.map((r) => [r.k, { values: r.v, committedAt: r.ts }]));
}

/** The table and its columns on one node: present, plain (not generated). */
async function checkColumns(client: pg.Client, node: string, t: UserStateTable, cols: string[]): Promise<void> {
  const have = await columns(client, t.schema, t.name);
  if (!have) throw new FailbackError(`user state: table ${t.schema}.${t.name} does not exist on the ${node}`);
  const byName = new Map(have.map((c) => [c.name, c]));
  const bad = [t.key, ...cols].filter((c) => !byName.has(c) || byName.get(c)!.generated);
  if (bad.length)
    throw new FailbackError(
      `user state: ${t.schema}.${t.name}: column(s) ${bad.join(", ")} missing (or generated) on the ${node}`,
    );
}

/** The key must name one row: NOT NULL with a one-column unique index, on the master. */
async function checkKey(master: pg.Client, t: UserStateTable): Promise<void> {
  const res = await master.query<{ ok: boolean }>(
    `SELECT EXISTS (
       SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
        WHERE i.indrelid = to_regclass($1) AND i.indisunique AND i.indnkeyatts = 1 AND i.indpred IS NULL
          AND a.attname = $2 AND a.attnotnull) AS ok`,
    [qualified(t.schema, t.name), t.key],
  );
  if (!res.rows[0]?.ok)
    throw new FailbackError(
      `user state: ${t.schema}.${t.name}: key ${t.key} is not NOT NULL with a unique index on the master`,
    );
}

/**
 * At failover, before the slave's telephony starts: records what the slave holds (replicated from
 * the master). Keeps an existing baseline when a copy-back is still pending: the slave has not
 * replicated since, so its rows still carry the last failover's unapplied changes. Never throws,
 * and bounded (3 s to connect, 5 s per statement): a failover must not hang on it; without a
 * baseline the failback applies no user state and says so.
 */
export async function recordBaseline(
  cfg: FailbackConfig | null | undefined,
  stateDir: string,
  keepExisting: boolean,
  log: Logger,
): Promise<void> {
  const us = cfg?.userState;
  if (!cfg || !us) return;
  if (keepExisting && (await readBaseline(stateDir)).baseline) {
    log("userstate.baseline_kept", { reason: "the last failover's copy-back is still pending" });
    return;
  }
  let slave: pg.Client | undefined;
  try {
    slave = await connect("slave", cfg.slave, {
      // The failover waits on this: the slave's own database answers in milliseconds or is broken.
      connectTimeoutMs: Math.min(cfg.connectTimeoutMs, 3_000),
      statementTimeoutMs: Math.min(cfg.statementTimeoutMs, 5_000),
    });
    await slave.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    const tables: Baseline["tables"] = [];
    for (const t of us.tables) {
      await checkColumns(slave, "slave", t, t.columns);
      const rows = await readRows(slave, t, t.columns, { limit: us.maxRows });
      tables.push({
        schema: t.schema,
        name: t.name,
        key: t.key,
        columns: t.columns,
        rows: [...rows].map(([k, r]) => [k, r.values]),
      });
    }
    await slave.query("COMMIT");
    const b: Baseline = { v: 1, id: randomBytes(16).toString("hex"), takenAt: Date.now(), tables };
    await writeFileAtomic(join(stateDir, BASELINE_FILE), JSON.stringify(b), 0o640);
    log("userstate.baseline", { id: b.id, tables: tables.map((t) => ({ name: t.name, rows: t.rows.length })) });
  } catch (err) {
    const error = err instanceof FailbackError ? err.message : pgMessage(err);
    log(
      "userstate.baseline_failed",
      { error, consequence: "the slave's user-state changes will not go back" },
      "error",
    );
  } finally {
    await slave?.end().catch(() => undefined);
  }
}

async function readBaseline(stateDir: string): Promise<{ baseline: Baseline | null; problem: string | null }> {
  let text: string;
  try {
    text = await readFile(join(stateDir, BASELINE_FILE), "utf8");
  } catch {
    return { baseline: null, problem: "no user-state baseline was recorded at failover" };
  }
  try {
    const parsed = Baseline.safeParse(JSON.parse(text));
    if (parsed.success) return { baseline: parsed.data, problem: null };
  } catch {}
  return { baseline: null, problem: `the user-state baseline ${BASELINE_FILE} is damaged` };
}

/** The copy-back's own context: the same clients, transaction, ledger and checkpoint. */
type UserStateContext = Omit<CopyContext, "idMaps">;

/** Inside the caller's master transaction and slave snapshot: merge back what the slave's users changed. */
export async function copyUserState(
  ctx: UserStateContext,
  cfg: UserStateConfig,
  stateDir: string | undefined,
): Promise<UserStateReport> {
  const { baseline, problem } = stateDir
    ? await readBaseline(stateDir)
    : { baseline: null, problem: "no state directory given" };
  if (!baseline) {
    ctx.log("failback.userstate_skipped", { reason: problem });
    return { baseline: null, tables: [], notes: [`user state not copied back: ${problem}`] };
  }
  const notes: string[] = [];
  const tables: UserStateResult[] = [];
  const commitTimes = { slave: await tracksCommitTimes(ctx.slave), master: await tracksCommitTimes(ctx.master) };
  for (const t of cfg.tables) {
    ctx.checkpoint();
    const b = baseline.tables.find((x) => x.schema === t.schema && x.name === t.name && x.key === t.key);
    if (!b) {
      notes.push(`${t.schema}.${t.name}: not in the baseline (configured after the failover): skipped`);
      continue;
    }
    const r = await copyTable(ctx, t, b, baseline.id, cfg.maxRows, commitTimes);
    ctx.log("failback.userstate", { ...r });
    tables.push(r);
  }
  return { baseline: baseline.id, tables, notes };
}

async function copyTable(
  ctx: UserStateContext,
  t: UserStateTable,
  b: Baseline["tables"][number],
  baselineId: string,
  maxRows: number,
  commitTimes: { slave: boolean; master: boolean },
): Promise<UserStateResult> {
  const tbl = `${t.schema}.${t.name}`;
  const result: UserStateResult = {
    table: tbl,
    changedOnSlave: 0,
    applied: 0,
    keptMaster: 0,
    alreadyDone: 0,
    skipped: 0,
    notes: [],
  };
  const note = (s: string) => {
    if (result.notes.length < MAX_NOTES) result.notes.push(s);
    else if (result.notes.length === MAX_NOTES) result.notes.push("(more notes left out)");
  };
  // Only config names reach SQL; the baseline says which of them it holds, and where.
  const at = t.columns.map((c) => b.columns.indexOf(c));
  const cols = t.columns.filter((_, i) => at[i]! >= 0);
  const late = t.columns.filter((_, i) => at[i]! < 0);
  if (late.length) note(`column(s) ${late.join(", ")} not in the baseline (configured after the failover): skipped`);
  if (cols.length === 0) return result;
  await checkColumns(ctx.slave, "slave", t, cols);
  await checkColumns(ctx.master, "master", t, cols);
  await checkKey(ctx.master, t);
  const base = new Map(b.rows.map(([k, v]) => [k, at.filter((i) => i >= 0).map((i) => v[i] ?? "null")]));

  const slaveRows = await readRows(ctx.slave, t, cols, { limit: maxRows, commitTimes: commitTimes.slave });
  const changed: string[] = [];
  for (const [k, r] of slaveRows) {
    const before = base.get(k);
    if (!before) {
      result.skipped++;
      note(`user ${k}: created on the slave while it was active: skipped (create it on the master)`);
    } else if (changedSince(before, r.values)) changed.push(k);
  }
  result.changedOnSlave = changed.length;
  const ledgerTbl = `userstate:${tbl}`;
  const originKey = (k: string) => `${baselineId}:${k}`;

  for (let i = 0; i < changed.length; i += ctx.batchRows) {
    ctx.checkpoint();
    const keys = changed.slice(i, i + ctx.batchRows);
    const done = await ledger.lookup(ctx.master, ctx.ledger, ctx.origin, ledgerTbl, keys.map(originKey));
    const todo = keys.filter((k) => !done.has(originKey(k)));
    result.alreadyDone += keys.length - todo.length;
    if (todo.length === 0) continue;
    // Locked until the copy-back commits: the merge decides on what it writes over.
    const masterRows = await readRows(ctx.master, t, cols, {
      keys: todo,
      forUpdate: true,
      commitTimes: commitTimes.master,
    });
    const docs: string[] = [];
    const decided: string[] = [];
    for (const k of todo) {
      const m = masterRows.get(k);
      if (!m) {
        result.skipped++;
        note(`user ${k}: deleted on the master meanwhile: skipped`);
        continue;
      }
      const merge = mergeRow(cols, base.get(k)!, slaveRows.get(k)!, m);
      for (const c of merge.conflicts)
        note(`user ${k}: ${c.column} changed on both nodes, ${c.winner} kept (${c.why})`);
      decided.push(k);
      if (merge.fromSlave.length === 0) {
        result.keptMaster++;
        continue;
      }
      result.applied++;
      docs.push(rowDoc(t.key, k, cols, merge.merged));
    }
    if (docs.length) {
      const sets = cols.map((c) => `${ident(c)} = r.${ident(c)}`).join(", ");
      await ctx.master.query(
        `UPDATE ${qualified(t.schema, t.name)} m SET ${sets}
           FROM json_populate_recordset(NULL::${qualified(t.schema, t.name)}, $1::json) r
          WHERE m.${ident(t.key)} = r.${ident(t.key)}`,
        [`[${docs.join(",")}]`],
      );
    }
    await ledger.record(
      ctx.master,
      ctx.ledger,
      ctx.origin,
      ledgerTbl,
      decided.map(originKey),
      decided.map(() => null),
    );
  }
  return result;
}

/**
 * One row as JSON text for json_populate_recordset: the values are PostgreSQL's own JSON texts,
 * put in unparsed (no rounding), each checked to be one JSON value so a damaged one cannot shift
 * the document. The whole goes to the master as a bound parameter.
 */
function rowDoc(key: string, k: string, cols: string[], values: string[]): string {
  const fields = cols.map((c, i) => {
    const v = values[i]!;
    try {
      JSON.parse(v);
    } catch {
      throw new FailbackError(`user state: user ${k}: the value of ${c} is not JSON`);
    }
    return `${JSON.stringify(c)}:${v}`;
  });
  return `{${JSON.stringify(key)}:${JSON.stringify(k)},${fields.join(",")}}`;
}

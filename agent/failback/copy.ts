import type pg from "pg";
import type { FailbackTable } from "./config.js";
import { columns, FailbackError, ident, literal, qualified, serialSequence, type ColumnInfo } from "./db.js";
import * as ledger from "./ledger.js";

/**
 * Copies one table's slave rows into the master, inside the master transaction the caller holds
 * open. Rows travel as jsonb text and land through json_populate_recordset with the master's own
 * row type, so every column type round-trips exactly and no value is parsed in JavaScript.
 *
 * Per batch: skip what the ledger holds; in natural-key mode also what the master already has;
 * rewrite parent references to the parents' master ids; reserve ids from the master's own
 * sequence (so nothing collides with rows the master wrote meanwhile, and we know each new row's
 * id without relying on the order of INSERT … RETURNING); insert; record the ledger.
 */

export interface CopyContext {
  slave: pg.Client;
  master: pg.Client;
  origin: string;
  ledger: ledger.LedgerRef;
  batchRows: number;
  /** Per parent table name: slave id → master id, for every row of this run (copied or skipped). */
  idMaps: Map<string, Map<string, string>>;
  /** Throws when the run must stop (aborted); called between batches. */
  checkpoint: () => void;
  log: (event: string, fields: Record<string, unknown>) => void;
}

export interface TableResult {
  name: string;
  copied: number;
  alreadyThere: number;
}

interface Plan {
  t: FailbackTable;
  tbl: string;
  target: string;
  copyCols: string[];
  sequence: string | null;
  overriding: boolean;
  keepIds: boolean;
}

interface SlaveRow {
  doc: string;
  id: string | null;
  nk: string | null;
  [ref: `r${number}`]: string | null;
}

/** Checks both tables against the config and each other; errors name the table and column. */
async function plan(ctx: CopyContext, t: FailbackTable, referenced: boolean): Promise<Plan> {
  const tbl = `${t.schema}.${t.name}`;
  const [s, m] = await Promise.all([columns(ctx.slave, t.schema, t.name), columns(ctx.master, t.schema, t.name)]);
  if (!s) throw new FailbackError(`table ${tbl} does not exist on the slave`);
  if (!m) throw new FailbackError(`table ${tbl} does not exist on the master`);
  const onMaster = new Map(m.map((c) => [c.name, c]));
  const slaveOnly = s.filter((c) => !c.generated && !onMaster.has(c.name)).map((c) => c.name);
  if (slaveOnly.length > 0) {
    throw new FailbackError(
      `${tbl}: column(s) ${slaveOnly.join(", ")} exist on the slave but not on the master (different schema versions?)`,
    );
  }
  const need = (col: string, what: string): ColumnInfo => {
    const sc = s.find((c) => c.name === col);
    const mc = onMaster.get(col);
    if (!sc || !mc)
      throw new FailbackError(`${tbl}: ${what} column ${col} is missing on the ${sc ? "master" : "slave"}`);
    return mc;
  };
  for (const k of t.key ?? []) {
    if (!need(k, "key").notNull)
      throw new FailbackError(
        `${tbl}: key column ${k} is nullable on the master; a natural key must be NOT NULL (or use key: null)`,
      );
  }
  for (const r of t.references) need(r.column, "reference");
  let sequence: string | null = null;
  let overriding = false;
  if (t.idColumn) {
    overriding = need(t.idColumn, "id").identity === "a";
    sequence = await serialSequence(ctx.master, t.schema, t.name, t.idColumn);
    if (!sequence)
      throw new FailbackError(
        `${tbl}: idColumn ${t.idColumn} has no sequence on the master (expected serial or identity)`,
      );
  }
  const copyCols = s.filter((c) => !c.generated && !onMaster.get(c.name)!.generated).map((c) => c.name);
  return { t, tbl, target: qualified(t.schema, t.name), copyCols, sequence, overriding, keepIds: referenced };
}

export async function copyTable(
  ctx: CopyContext,
  t: FailbackTable,
  referenced: boolean,
  cursorName: string,
): Promise<TableResult> {
  const p = await plan(ctx, t, referenced);
  const idMap = new Map<string, string>();
  if (p.keepIds) ctx.idMaps.set(t.name, idMap);
  const parentMaps = t.references.map((r) => ctx.idMaps.get(r.table)!);
  // Natural keys seen in this run: a second slave row with the same key is the same row.
  const seenKeys = new Map<string, string | null>();
  const result: TableResult = { name: t.name, copied: 0, alreadyThere: 0 };

  const dropped = [t.idColumn, ...t.references.map((r) => r.column)].filter((c): c is string => !!c);
  const select = [
    `(to_jsonb(x) - ARRAY[${dropped.map(literal).join(", ")}]::text[])::text AS doc`,
    t.idColumn ? `x.${ident(t.idColumn)}::text AS id` : "NULL::text AS id",
    t.key ? `jsonb_build_array(${t.key.map((k) => `x.${ident(k)}`).join(", ")})::text AS nk` : "NULL::text AS nk",
    ...t.references.map((r, i) => `x.${ident(r.column)}::text AS r${i}`),
  ];
  const order = t.idColumn ? [t.idColumn] : (t.key ?? []);
  await ctx.slave.query(
    `DECLARE ${ident(cursorName)} NO SCROLL CURSOR FOR SELECT ${select.join(", ")} FROM ${p.target} x` +
      (order.length ? ` ORDER BY ${order.map((c) => `x.${ident(c)}`).join(", ")}` : ""),
  );
  for (;;) {
    ctx.checkpoint();
    const { rows } = await ctx.slave.query<SlaveRow>(`FETCH ${ctx.batchRows} FROM ${ident(cursorName)}`);
    if (rows.length === 0) break;
    await copyBatch(ctx, p, rows, parentMaps, idMap, seenKeys, result);
    ctx.log("failback.batch", {
      table: t.name,
      rows: rows.length,
      copied: result.copied,
      alreadyThere: result.alreadyThere,
    });
  }
  await ctx.slave.query(`CLOSE ${ident(cursorName)}`);
  return result;
}

async function copyBatch(
  ctx: CopyContext,
  p: Plan,
  rows: SlaveRow[],
  parentMaps: Map<string, string>[],
  idMap: Map<string, string>,
  seenKeys: Map<string, string | null>,
  result: TableResult,
): Promise<void> {
  const { t } = p;
  const originKey = (r: SlaveRow) => (t.key ? r.nk! : r.id!);
  const remember = (r: SlaveRow, masterId: string | null) => {
    if (p.keepIds && r.id !== null && masterId !== null) idMap.set(r.id, masterId);
    if (t.key) seenKeys.set(r.nk!, masterId);
  };

  // 1. What a committed run already copied, and (natural key) what this run already met.
  const known = await ledger.lookup(ctx.master, ctx.ledger, ctx.origin, p.tbl, rows.map(originKey));
  let pending: SlaveRow[] = [];
  const inBatch = new Set<string>();
  const dups: SlaveRow[] = []; // same natural key as an earlier row of this batch
  for (const r of rows) {
    const k = originKey(r);
    const hit = known.has(k) ? known.get(k)! : t.key && seenKeys.has(k) ? seenKeys.get(k)! : undefined;
    if (hit === undefined && inBatch.has(k)) dups.push(r);
    else if (hit === undefined) {
      pending.push(r);
      inBatch.add(k);
    } else {
      result.alreadyThere++;
      remember(r, hit);
    }
  }
  if (pending.length === 0) return;

  // 2. Parent references → the parents' master ids.
  const refFields = (r: SlaveRow): [string, string | null][] =>
    t.references.map((ref, i) => {
      const v = r[`r${i}`] ?? null;
      if (v === null) return [ref.column, null];
      const mapped = parentMaps[i]!.get(v);
      if (mapped === undefined) {
        throw new FailbackError(
          `${p.tbl}: ${ref.column} = ${v} refers to a ${ref.table} row that is neither on the slave nor in the ledger`,
        );
      }
      return [ref.column, mapped];
    });
  const refs = new Map(pending.map((r) => [r, refFields(r)]));

  // 3. Natural key: rows the master already holds (its own, or copied outside the ledger).
  const keyHits: { row: SlaveRow; masterId: string | null }[] = [];
  if (t.key) {
    const docs = pending.map((r) => withFields(r.doc, refs.get(r)!));
    const idExpr = t.idColumn ? `m.${ident(t.idColumn)}::text` : "NULL::text";
    const found = await ctx.master.query<{ i: number; m: string | null }>(
      `SELECT DISTINCT ON (r.ordinality) (r.ordinality - 1)::int AS i, ${idExpr} AS m
         FROM json_populate_recordset(NULL::${p.target}, $1::json) WITH ORDINALITY AS r
         JOIN ${p.target} m ON ${t.key.map((k) => `m.${ident(k)} = r.${ident(k)}`).join(" AND ")}
        ORDER BY r.ordinality${t.idColumn ? `, m.${ident(t.idColumn)}` : ""}`,
      [`[${docs.join(",")}]`],
    );
    const hitAt = new Map(found.rows.map((f) => [f.i, f.m]));
    const rest: SlaveRow[] = [];
    pending.forEach((r, i) => (hitAt.has(i) ? keyHits.push({ row: r, masterId: hitAt.get(i)! }) : rest.push(r)));
    for (const h of keyHits) remember(h.row, h.masterId);
    result.alreadyThere += keyHits.length;
    pending = rest;
  }

  // 4. Fresh ids from the master's sequence, in slave order; insert; ledger.
  let ids: (string | null)[] = pending.map(() => null);
  if (p.sequence && pending.length > 0) {
    const res = await ctx.master.query<{ id: string }>(
      "SELECT nextval($1::regclass)::text AS id FROM generate_series(1, $2::int)",
      [p.sequence, pending.length],
    );
    ids = res.rows.map((r) => r.id).sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : BigInt(a) > BigInt(b) ? 1 : 0));
  }
  if (pending.length > 0) {
    const docs = pending.map((r, i) =>
      withFields(r.doc, [...(t.idColumn ? [[t.idColumn, ids[i]!] as [string, string]] : []), ...refs.get(r)!]),
    );
    const cols = p.copyCols.map(ident).join(", ");
    await ctx.master.query(
      `INSERT INTO ${p.target} (${cols})${p.overriding ? " OVERRIDING SYSTEM VALUE" : ""}
       SELECT ${cols} FROM json_populate_recordset(NULL::${p.target}, $1::json)`,
      [`[${docs.join(",")}]`],
    );
    pending.forEach((r, i) => remember(r, ids[i]!));
    result.copied += pending.length;
  }
  for (const d of dups) {
    result.alreadyThere++;
    remember(d, seenKeys.get(d.nk!) ?? null);
  }
  await ledger.record(
    ctx.master,
    ctx.ledger,
    ctx.origin,
    p.tbl,
    [...keyHits.map((h) => originKey(h.row)), ...pending.map(originKey)],
    [...keyHits.map((h) => h.masterId), ...ids],
  );
}

/** Adds fields to a JSON object's text without parsing it (values stay text: no rounding). */
export function withFields(doc: string, fields: [string, string | null][]): string {
  if (fields.length === 0) return doc;
  const head = fields.map(([k, v]) => `${JSON.stringify(k)}:${v === null ? "null" : JSON.stringify(v)}`).join(",");
  const rest = doc.trimStart().slice(1).trimStart();
  return rest.startsWith("}") ? `{${head}}` : `{${head},${rest}`;
}

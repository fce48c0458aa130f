import type { RoundSummary } from "../../protocol/verdict.js";
import {
  bucketMedians,
  HOUR,
  percentile,
  tally,
  type AgentAction,
  type Interval,
  type State,
  type StateChange,
} from "./uptime.js";

/**
 * What the status page and the uptime API read from a cluster's Durable Object storage, and how
 * it is kept bounded. Functions over the object's SqlStorage, called from ClusterMonitor.
 *
 *  - `rounds`: sampled probe rounds, kept RAW_RETENTION (48 h): a round is stored when its class
 *    or probe list differs from the last stored one, and otherwise once per ROUND_SAMPLE_MS (a
 *    row written, and later deleted, at every round was most of a cluster's bill). The
 *    per-probe round-trip times are a compact JSON array in the order of a `probe_sets` row
 *    (the probe names), so a row does not repeat the names.
 *  - `hourly`: one row per completed hour, kept AGGREGATE_RETENTION (400 d): ms up / degraded /
 *    down / unknown / maintenance (the same arithmetic as the uptime API), stored round count,
 *    and per probe [p50, max] round-trip time over the stored rounds.
 *  - `gaps`: periods when the probe loop did not run (worker outage, lost alarm): unknown time.
 *
 * Bound per cluster (worst case: intervalSec 2, 16 probes, 40-character names, and a class
 * that changes at every round so that every round is stored):
 *   rounds  48 h / 2 s = 86 400 rows × ~130 B (at, class, duration, set id, 16 × "12345,")   ≈ 11 MB
 *   hourly  400 d × 24 = 9 600 rows × ~950 B ({"<40 chars>":[p50,max]} × 16 + 6 integers)  ≈ 9 MB
 *   gaps    ≤ MAX_GAPS = 10 000 rows × ~30 B                                                ≈ 0.3 MB
 *   probe_sets: one row per distinct probe list still referenced by a raw round (config edits)
 * so ≈ 20 MB at worst; ≈ 1.5 MB for the default 10 s interval and three short-named probes.
 * Pruning runs once per completed hour, with the hourly roll-up, as range deletes on primary keys.
 */

export const RAW_RETENTION_MS = 48 * HOUR;
export const AGGREGATE_RETENTION_MS = 400 * 24 * HOUR;
const MAX_GAPS = 10_000;
/** Roll-up catches up at most this many hours per alarm (more would exceed the raw retention). */
const MAX_ROLLUP_HOURS = 48;
/**
 * A round like the last stored one is stored once per this long: the sparkline draws 15-minute
 * medians, so five samples each; the verdict and uptime never read this table.
 */
export const ROUND_SAMPLE_MS = 3 * 60_000;

/** No round for longer than this means nobody was looking: the time is unknown, not up. */
export const gapThresholdMs = (intervalSec: number) => 2 * intervalSec * 1000 + 30_000;

export function createStatusTables(sql: SqlStorage): void {
  sql.exec(`
    CREATE TABLE IF NOT EXISTS probe_sets (id INTEGER PRIMARY KEY AUTOINCREMENT, names TEXT NOT NULL UNIQUE);
    CREATE TABLE IF NOT EXISTS rounds (
      at INTEGER PRIMARY KEY, class TEXT NOT NULL, duration_ms INTEGER NOT NULL,
      probe_set INTEGER NOT NULL, rtt TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS hourly (
      hour INTEGER PRIMARY KEY, up_ms INTEGER NOT NULL, degraded_ms INTEGER NOT NULL, down_ms INTEGER NOT NULL,
      unknown_ms INTEGER NOT NULL, maintenance_ms INTEGER NOT NULL, rounds INTEGER NOT NULL, rtt TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS gaps (id INTEGER PRIMARY KEY AUTOINCREMENT, from_at INTEGER NOT NULL, to_at INTEGER NOT NULL);
  `);
}

function probeSetId(sql: SqlStorage, names: string[]): number {
  const key = JSON.stringify(names);
  const find = () => sql.exec<{ id: number }>("SELECT id FROM probe_sets WHERE names = ?", key).toArray()[0]?.id;
  // Looked up first: an INSERT OR IGNORE that inserts nothing is still billed a row written.
  const id = find();
  if (id !== undefined) return id;
  sql.exec("INSERT INTO probe_sets (names) VALUES (?)", key);
  return find()!;
}

/**
 * Stores one round if due (inside the round's transaction): see ROUND_SAMPLE_MS. `previousAt`
 * is the previous round's time: a longer silence than the threshold before this round is
 * recorded as a gap.
 */
export function recordRound(
  sql: SqlStorage,
  round: RoundSummary,
  previousAt: number | null,
  intervalSec: number,
): void {
  const set = probeSetId(
    sql,
    round.probes.map((p) => p.name),
  );
  const last = sql
    .exec<{ at: number; class: string; probe_set: number }>(
      "SELECT at, class, probe_set FROM rounds ORDER BY at DESC LIMIT 1",
    )
    .toArray()[0];
  const due = !last || last.class !== round.class || last.probe_set !== set || round.at - last.at >= ROUND_SAMPLE_MS;
  if (due) storeRound(sql, round, set);
  if (previousAt !== null && round.at - previousAt > gapThresholdMs(intervalSec)) {
    sql.exec("INSERT INTO gaps (from_at, to_at) VALUES (?, ?)", previousAt, round.at);
  }
}

function storeRound(sql: SqlStorage, round: RoundSummary, set: number): void {
  // Whole milliseconds are plenty for a sparkline and keep the row small.
  const rtt = JSON.stringify(round.probes.map((p) => (p.rttMs === null ? null : Math.round(p.rttMs))));
  sql.exec(
    "INSERT OR REPLACE INTO rounds (at, class, duration_ms, probe_set, rtt) VALUES (?, ?, ?, ?, ?)",
    round.at,
    round.class,
    Math.round(round.durationMs),
    set,
    rtt,
  );
}

// ---- reading the history -------------------------------------------------------------------------

export interface History {
  changes: StateChange[];
  actions: AgentAction[];
  gaps: Interval[];
}

/**
 * The verdict changes relevant to [from, to) (the last one before `from` included: it gives the
 * state at `from`), every failover / failback the history holds (a failover's end may be far
 * from its start), and the loop's gaps — plus the ongoing one, if the last round is too old.
 */
export function readHistory(sql: SqlStorage, from: number, to: number, ongoingGap: Interval | null): History {
  const gaps = readGaps(sql, from, to);
  if (ongoingGap) gaps.push(ongoingGap);
  return { changes: readChanges(sql, from, to), actions: readActions(sql, to), gaps };
}

/**
 * Every history read below is bounded whatever the history holds (a flood of agent reports
 * with stolen credentials included): the JSON is taken apart in SQL, only the fields used leave
 * the database, reasons are clipped, and failovers / failbacks are the newest MAX_ACTION_REPORTS.
 */
const MAX_PAGE_REASON_CHARS = 500;
const MAX_ACTION_REPORTS = 1_000;
const clippedReason = (expr: string) =>
  `CASE WHEN length(${expr}) > ${MAX_PAGE_REASON_CHARS} THEN substr(${expr}, 1, ${MAX_PAGE_REASON_CHARS - 1}) || '…' ELSE ${expr} END`;

function readChanges(sql: SqlStorage, from: number, to: number): StateChange[] {
  return sql
    .exec<{ at: number; reason: string; state: State }>(
      `SELECT at, ${clippedReason("reason")} AS reason, json_extract(data, '$.to') AS state FROM events
       WHERE type = 'verdict.changed' AND at < ?
         AND at >= COALESCE((SELECT MAX(at) FROM events WHERE type = 'verdict.changed' AND at <= ?), 0)
       ORDER BY at, id`,
      to,
      from,
    )
    .toArray()
    .map((r) => ({ at: r.at, reason: r.reason, to: r.state }));
}

function readActions(sql: SqlStorage, to: number): AgentAction[] {
  // An action still in progress is not an outcome: its report says ok false only because it is not done.
  const rows = sql
    .exec<{ at: number; kind: AgentAction["kind"]; ok: number; reason: string | null; action_at: number }>(
      `SELECT at, kind, ok, ${clippedReason("reason")} AS reason, action_at FROM (
         SELECT id, at, json_extract(data, '$.lastAction.kind') AS kind, json_extract(data, '$.lastAction.ok') AS ok,
                json_extract(data, '$.lastAction.reason') AS reason, json_extract(data, '$.lastAction.at') AS action_at,
                json_extract(data, '$.lastAction.inProgress') AS in_progress
         FROM events WHERE type = 'agent.changed' AND at < ?)
       WHERE kind IN ('failover', 'failback') AND COALESCE(in_progress, 0) = 0
       ORDER BY at DESC, id DESC LIMIT ?`,
      to,
      MAX_ACTION_REPORTS,
    )
    .toArray();
  return rows
    .reverse()
    .map((r) => ({ at: r.at, kind: r.kind, ok: r.ok === 1, reason: r.reason ?? "", actionAt: r.action_at }));
}

function readGaps(sql: SqlStorage, from: number, to: number): Interval[] {
  return sql
    .exec<{ from_at: number; to_at: number }>(
      "SELECT from_at, to_at FROM gaps WHERE to_at > ? AND from_at < ?",
      from,
      to,
    )
    .toArray()
    .map((g) => ({ from: g.from_at, to: g.to_at }));
}

/** Every probe's round-trip time in the raw rounds of [from, to), oldest first, by probe name. */
function* roundSamples(
  sql: SqlStorage,
  from: number,
  to: number,
): Generator<{ at: number; name: string; rtt: number | null }> {
  const sets = new Map<number, string[]>();
  for (const r of sql
    .exec<{ at: number; probe_set: number; rtt: string }>(
      "SELECT at, probe_set, rtt FROM rounds WHERE at >= ? AND at < ? ORDER BY at",
      from,
      to,
    )
    .toArray()) {
    let names = sets.get(r.probe_set);
    if (!names) {
      const row = sql.exec<{ names: string }>("SELECT names FROM probe_sets WHERE id = ?", r.probe_set).toArray()[0];
      sets.set(r.probe_set, (names = row ? (JSON.parse(row.names) as string[]) : []));
    }
    const rtts = JSON.parse(r.rtt) as (number | null)[];
    for (const [i, rtt] of rtts.entries()) {
      const name = names[i];
      if (name !== undefined) yield { at: r.at, name, rtt };
    }
  }
}

export interface ProbeSeries {
  name: string;
  /** Median round-trip time per bucket, ms; null where the probe never answered. */
  points: (number | null)[];
  last: number | null;
}

/**
 * Per-probe latency over [from, to), from the raw rounds, in `buckets` medians. The span starts
 * at the oldest round when that is later than `from`, so a young cluster draws a line, not a dot.
 */
export function readLatency(sql: SqlStorage, since: number, to: number, buckets: number): ProbeSeries[] {
  const oldest = sql.exec<{ at: number | null }>("SELECT MIN(at) AS at FROM rounds WHERE at >= ?", since).one().at;
  const from = oldest === null ? since : Math.min(oldest, to - 1);
  const byProbe = new Map<string, { at: number; rtt: number | null }[]>();
  for (const { at, name, rtt } of roundSamples(sql, from, to)) {
    let list = byProbe.get(name);
    if (!list) byProbe.set(name, (list = []));
    list.push({ at, rtt });
  }
  return [...byProbe.entries()].map(([name, pts]) => ({
    name,
    points: bucketMedians(pts, from, to, buckets),
    last: pts[pts.length - 1]?.rtt ?? null,
  }));
}

export interface HourRow {
  hour: number;
  upMs: number;
  degradedMs: number;
  downMs: number;
  unknownMs: number;
  maintenanceMs: number;
  rounds: number;
  /** Per probe: [p50, max] round-trip time in ms over the hour. */
  rtt: Record<string, number[]>;
}

export function readHourly(sql: SqlStorage, from: number): HourRow[] {
  return sql
    .exec<{
      hour: number;
      up_ms: number;
      degraded_ms: number;
      down_ms: number;
      unknown_ms: number;
      maintenance_ms: number;
      rounds: number;
      rtt: string;
    }>("SELECT * FROM hourly WHERE hour >= ? ORDER BY hour", from)
    .toArray()
    .map((r) => ({
      hour: r.hour,
      upMs: r.up_ms,
      degradedMs: r.degraded_ms,
      downMs: r.down_ms,
      unknownMs: r.unknown_ms,
      maintenanceMs: r.maintenance_ms,
      rounds: r.rounds,
      rtt: JSON.parse(r.rtt) as Record<string, number[]>,
    }));
}

// ---- roll-up and pruning ---------------------------------------------------------------------------

/**
 * Called after every round; does real work only once per completed hour: rolls the completed
 * hours up into `hourly` and prunes what is past retention. Returns the hours rolled up.
 */
export function maintainStatus(sql: SqlStorage, now: number, maintenance: readonly Interval[]): number {
  const currentHour = Math.floor(now / HOUR) * HOUR;
  const last = sql.exec<{ h: number | null }>("SELECT MAX(hour) AS h FROM hourly").one().h;
  let start: number;
  if (last !== null) start = last + HOUR;
  else {
    const oldest = sql.exec<{ at: number | null }>("SELECT MIN(at) AS at FROM rounds").one().at;
    if (oldest === null) return 0;
    start = Math.floor(oldest / HOUR) * HOUR;
  }
  if (start >= currentHour) return 0;
  start = Math.max(start, currentHour - MAX_ROLLUP_HOURS * HOUR);

  let rolled = 0;
  for (let hour = start; hour < currentHour; hour += HOUR) {
    const end = hour + HOUR;
    // Only what the tally needs: the failovers (agent events) play no part in an hour's bar.
    const t = tally({
      changes: readChanges(sql, hour, end),
      gaps: readGaps(sql, hour, end),
      maintenance,
      from: hour,
      to: end,
    });
    const perProbe = new Map<string, number[]>();
    const rounds = sql
      .exec<{ n: number }>("SELECT count(*) AS n FROM rounds WHERE at >= ? AND at < ?", hour, end)
      .one().n;
    for (const { name, rtt } of roundSamples(sql, hour, end)) {
      if (rtt === null) continue;
      const list = perProbe.get(name) ?? [];
      list.push(rtt);
      perProbe.set(name, list);
    }
    const rtt: Record<string, [number, number]> = {};
    for (const [name, values] of perProbe) rtt[name] = [percentile(values, 0.5)!, Math.max(...values)];
    sql.exec(
      `INSERT OR REPLACE INTO hourly (hour, up_ms, degraded_ms, down_ms, unknown_ms, maintenance_ms, rounds, rtt)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      hour,
      t.upMs,
      t.degradedMs,
      t.downMs,
      t.unknownMs,
      t.maintenanceMs,
      rounds,
      JSON.stringify(rtt),
    );
    rolled++;
  }
  prune(sql, now);
  return rolled;
}

function prune(sql: SqlStorage, now: number): void {
  sql.exec("DELETE FROM rounds WHERE at < ?", now - RAW_RETENTION_MS);
  sql.exec("DELETE FROM hourly WHERE hour < ?", now - AGGREGATE_RETENTION_MS);
  sql.exec("DELETE FROM gaps WHERE to_at < ?", now - AGGREGATE_RETENTION_MS);
  sql.exec("DELETE FROM gaps WHERE id <= (SELECT MAX(id) FROM gaps) - ?", MAX_GAPS);
  sql.exec("DELETE FROM probe_sets WHERE id NOT IN (SELECT DISTINCT probe_set FROM rounds)");
}

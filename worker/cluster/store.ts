import type { EventPage, HistoryEvent } from "../../protocol/events.js";
import { describeZodError } from "../http/errors.js";
import { CHECKPOINT_MS, monitorToStore, RECORDS, reportToStore, type RecordKey, type RecordOf } from "./records.js";

/** The history keeps this many events; older ones are dropped. */
const MAX_EVENTS = 10_000;

function parseRecord<K extends RecordKey>(key: K, text: string): RecordOf<K> | null {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    console.error(`stored ${key} record is not JSON: read as absent`);
    return null;
  }
  const result = RECORDS[key].safeParse(json);
  if (result.success) return result.data as RecordOf<K>;
  console.error(`stored ${key} record does not parse (${describeZodError(result.error).message}): read as absent`);
  return null;
}

/** Records that may wait in memory between writes, and the rule that says when they must not (records.ts). */
const WRITE_BEHIND: { [K in RecordKey]?: (stored: RecordOf<K> | null, next: RecordOf<K>) => RecordOf<K> | null } = {
  monitor: monitorToStore,
  report: reportToStore,
};

/** A record as this object holds it: the newest value, and the text and value last written (or read). */
interface Held {
  value: unknown;
  written: string;
  stored: unknown;
}

/**
 * A cluster's own storage: the parsed key-value records (records.ts) and the history of events.
 * The status tables and the outbox have their own modules (worker/status/, worker/notify/).
 */
export class ClusterStore {
  /**
   * Per key, the newest value and the text last written or read: the verdict GET reads the same
   * records every time, and a write-behind record is newer in memory than in storage. A row whose
   * text differs from the one held (edited by hand, or a transaction that rolled back) wins.
   */
  private readonly held = new Map<RecordKey, Held>();
  private readonly startedAt = Date.now();
  /** Whether a report has come in since this object started (memory holds the newest). */
  private reportHeard = false;

  constructor(private readonly sql: SqlStorage) {}

  /** Whether this object's tables exist: they are created by the first configuration, never by a read. */
  tablesExist(): boolean {
    return this.sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'kv'").toArray().length > 0;
  }

  createTables(): void {
    this.sql.exec(`
      CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS events (
        id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, type TEXT NOT NULL,
        reason TEXT NOT NULL, data TEXT NOT NULL);
    `);
  }

  /**
   * The record under `key`, parsed, or null. A record that no longer parses (hand-edited, or
   * written by a worker whose schema has since changed incompatibly) is logged and read as absent:
   * the loop and the routes carry on as if it had never been written, and the next write replaces it.
   */
  get<K extends RecordKey>(key: K): RecordOf<K> | null {
    const row = this.sql.exec<{ value: string }>("SELECT value FROM kv WHERE key = ?", key).toArray()[0];
    if (!row) {
      this.held.delete(key);
      return null;
    }
    const held = this.held.get(key);
    if (held?.written === row.value) return held.value as RecordOf<K> | null;
    const value = parseRecord(key, row.value);
    this.held.set(key, { value, written: row.value, stored: value }); // an unreadable record is logged once, not at every read
    return value;
  }

  /**
   * Stores a record: written only when its text changes (an unchanged row costs nothing), and for
   * a write-behind record only when its rule says so; memory holds the newest either way.
   */
  put<K extends RecordKey>(key: K, value: RecordOf<K>): void {
    if (key === "report") this.reportHeard = true;
    this.get(key); // what storage holds now, unless already held
    const held = this.held.get(key);
    const stored = (held?.stored ?? null) as RecordOf<K> | null;
    const rule = WRITE_BEHIND[key] as ((s: RecordOf<K> | null, n: RecordOf<K>) => RecordOf<K> | null) | undefined;
    const toStore = rule ? rule(stored, value) : value;
    if (toStore === null && held) {
      held.value = value;
      return;
    }
    const text = JSON.stringify(toStore ?? value);
    if (held?.written !== text) {
      this.sql.exec(
        "INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        key,
        text,
      );
    }
    this.held.set(key, { value, written: text, stored: toStore ?? value });
  }

  /**
   * When the agent last reported, for the dead man's switch. An object restarted since holds the
   * report as last written, up to CHECKPOINT_MS older than the agent's last one: until the agent
   * reports again it counts from the latest time the agent may have reported, so a restart may
   * delay an agent.lost by that much and never raises a false one.
   */
  lastReportAt(): number | null {
    const receivedAt = this.get("report")?.receivedAt ?? null;
    if (receivedAt === null || this.reportHeard) return receivedAt;
    return Math.max(receivedAt, Math.min(receivedAt + CHECKPOINT_MS, this.startedAt));
  }

  /** Appends an event to the history and returns its id. */
  record(type: HistoryEvent["type"], at: number, reason: string, data: Record<string, unknown>): number {
    this.sql.exec(
      "INSERT INTO events (at, type, reason, data) VALUES (?, ?, ?, ?)",
      at,
      type,
      reason,
      JSON.stringify(data),
    );
    this.sql.exec("DELETE FROM events WHERE id <= (SELECT MAX(id) FROM events) - ?", MAX_EVENTS);
    return this.sql.exec<{ id: number }>("SELECT MAX(id) AS id FROM events").one().id;
  }

  /** The history after event `since`, oldest first, `limit` at most; `next` is the cursor for more. */
  events(since: number, limit: number): EventPage {
    const rows = this.sql
      .exec<{ id: number; at: number; type: HistoryEvent["type"]; reason: string; data: string }>(
        "SELECT id, at, type, reason, data FROM events WHERE id > ? ORDER BY id LIMIT ?",
        since,
        limit,
      )
      .toArray();
    const events = rows.map((r) => ({ ...r, data: JSON.parse(r.data) as Record<string, unknown> }));
    return { events, next: events.length === limit ? events[events.length - 1]!.id : null };
  }
}

import type { EventPage, HistoryEvent } from "../../protocol/events.js";
import { describeZodError } from "../http/errors.js";
import { RECORDS, type RecordKey, type RecordOf } from "./records.js";

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

/**
 * A cluster's own storage: the parsed key-value records (records.ts) and the history of events.
 * The status tables and the outbox have their own modules (worker/status/, worker/notify/).
 */
export class ClusterStore {
  /** The last text read per key and what it parsed to: the verdict GET reads the same records every time. */
  private readonly parsed = new Map<RecordKey, { text: string; value: unknown }>();

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
    if (!row) return null;
    const memo = this.parsed.get(key);
    if (memo?.text === row.value) return memo.value as RecordOf<K> | null;
    const value = parseRecord(key, row.value);
    this.parsed.set(key, { text: row.value, value }); // an unreadable record is logged once, not at every read
    return value;
  }

  put<K extends RecordKey>(key: K, value: RecordOf<K>): void {
    this.sql.exec("INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", key, JSON.stringify(value));
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

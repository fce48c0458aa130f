/**
 * What a cluster's Durable Object does that Cloudflare bills: SQLite rows read and written (as
 * the cursors report them, summed per kind of statement), setAlarm calls (each billed as a row
 * written), invocations by kind and WebSocket messages sent. Only `npm run bench:cost` turns it
 * on (the COST_METER var of its wrangler dev); a deployment never builds one.
 */

import type { MeterSnapshot } from "./meter-snapshot.js";

export type { MeterSnapshot };

/** "VERB table" for a statement: the verb, and the first table it names (INTO, FROM, UPDATE, TABLE). */
export function statementKind(query: string): string {
  const verb = /^\s*(\w+)/.exec(query)?.[1]?.toUpperCase() ?? "?";
  if (verb === "UPDATE") return `UPDATE ${/^\s*UPDATE\s+(\w+)/i.exec(query)?.[1] ?? "?"}`;
  const table = /\b(?:INTO|FROM|TABLE(?:\s+IF\s+NOT\s+EXISTS)?)\s+(\w+)/i.exec(query)?.[1];
  return table ? `${verb} ${table}` : verb;
}

/** A cursor's counts grow as it is read: the last few are settled again at every exec and snapshot. */
const OPEN_CURSORS = 8;

interface Open {
  cursor: SqlStorageCursor<Record<string, SqlStorageValue>>;
  kind: string;
  read: number;
  written: number;
}

const add = (sums: Record<string, number>, key: string, n: number) => {
  if (n) sums[key] = (sums[key] ?? 0) + n;
};

export class Meter {
  private readonly counts: MeterSnapshot = {
    invocations: {},
    rowsRead: {},
    rowsWritten: {},
    setAlarm: 0,
    wsSent: 0,
    alarmMs: 0,
    dbBytes: 0,
  };
  private open: Open[] = [];
  private db: SqlStorage | null = null;

  count(invocation: string, n = 1): void {
    add(this.counts.invocations, invocation, n);
  }

  sent(n: number): void {
    this.counts.wsSent += n;
  }

  alarmTook(ms: number): void {
    this.counts.alarmMs += ms;
  }

  private settle(): void {
    for (const o of this.open) {
      add(this.counts.rowsRead, o.kind, o.cursor.rowsRead - o.read);
      add(this.counts.rowsWritten, o.kind, o.cursor.rowsWritten - o.written);
      o.read = o.cursor.rowsRead;
      o.written = o.cursor.rowsWritten;
    }
    this.open = this.open.slice(-OPEN_CURSORS);
  }

  /** The same SqlStorage, with every cursor counted. */
  sql(sql: SqlStorage): SqlStorage {
    this.db = sql;
    const exec = (query: string, ...bindings: unknown[]) => {
      this.settle();
      const cursor = sql.exec(query, ...bindings);
      this.open.push({ cursor, kind: statementKind(query), read: 0, written: 0 });
      return cursor;
    };
    return new Proxy(sql, {
      get: (target, prop) => (prop === "exec" ? exec : bound(target, prop)),
    });
  }

  /** The same storage, with setAlarm counted. */
  storage(storage: DurableObjectStorage): DurableObjectStorage {
    const setAlarm: DurableObjectStorage["setAlarm"] = (...args) => {
      this.counts.setAlarm++;
      return storage.setAlarm(...args);
    };
    return new Proxy(storage, {
      get: (target, prop) => (prop === "setAlarm" ? setAlarm : bound(target, prop)),
    });
  }

  snapshot(): MeterSnapshot {
    this.settle();
    return { ...structuredClone(this.counts), dbBytes: this.db?.databaseSize ?? 0 };
  }
}

/** A property of a runtime object: its methods must run with the object itself as `this`. */
function bound(target: object, prop: string | symbol): unknown {
  const value = Reflect.get(target, prop, target);
  return typeof value === "function" ? value.bind(target) : value;
}

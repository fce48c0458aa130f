import { type Readable, Transform, type TransformCallback } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Tid } from "./answers.js";
import type { TableInfo } from "./catalog.js";
import { CopyInFrames, copyOutFrames } from "./frames.js";
import { describe, type Session } from "./session.js";
import { copyInSql, copyOutSql, copyRowsOutSql, type CopyFormat } from "./sql.js";

/**
 * Rows master → slave as streams: `COPY … TO STDOUT` on the master, `COPY … FROM STDIN` on the
 * slave. The slave's load is the slow end (index upkeep), so the master's side of the copies is
 * read ahead, in order, on the run's one master connection (its one snapshot): while the slave
 * loads one table, the next ones are already in memory, within a byte budget, and the slave never
 * waits for the master between tables. If either end fails, the pipe into the slave is torn
 * down, which sends CopyFail: its transaction is then aborted, never half-loaded.
 */

/** One copy's SQL on each node; null when there is nothing to send (a delta adding no row). */
export type CopyJob = { out: string; in: string } | null;

/**
 * Below this many rows a table is sent as it lies: its load is quick whatever the order. A table
 * whose row count is not known (null) is sorted: cheap if it is small, worth it if it is not.
 */
const ORDER_FROM_ROWS = 1000;

/**
 * One whole table, in primary-key order unless small (see copyOutSql). FREEZE only into a table
 * truncated in this transaction (see copyInSql).
 */
export function tableCopy(
  schema: string,
  t: TableInfo,
  format: CopyFormat,
  freeze: boolean,
  masterRows: number | null,
): CopyJob {
  const ordered = masterRows === null || masterRows >= ORDER_FROM_ROWS;
  return { out: copyOutSql(schema, t, format, ordered), in: copyInSql(schema, t, format, freeze) };
}

/** The master's rows at the given places (see copyRowsOutSql), appended to the slave's table. */
export function rowsCopy(schema: string, t: TableInfo, tids: Tid[], format: CopyFormat): CopyJob {
  if (!tids.length) return null;
  return { out: copyRowsOutSql(schema, t, format, tids), in: copyInSql(schema, t, format, false) };
}

/**
 * What the master sends arrives one TLS record (8 KB) or one socket read at a time; the slave is
 * sent ~64 KB per write instead (whole CopyData messages, see frames.ts): an eighth of the
 * writes and wake-ups.
 */
const BATCH_BYTES = 64 * 1024;
/**
 * How far the master may run ahead of the slave: a table's COPY starts only while less than this
 * is held, and one table holds at most this much before its COPY waits (TCP back-pressure on the
 * master), so memory stays under about twice this.
 */
export const READ_AHEAD_BYTES = 16 * 1024 * 1024;

class Batch extends Transform {
  private parts: Buffer[] = [];
  private size = 0;
  constructor(
    private readonly held: (n: number) => void,
    limit: number,
  ) {
    super({ readableHighWaterMark: limit });
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.parts.push(chunk);
    this.size += chunk.length;
    if (this.size >= BATCH_BYTES) this.release();
    cb();
  }
  override _flush(cb: TransformCallback): void {
    if (this.size) this.release();
    cb();
  }
  private release(): void {
    const b = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.size);
    this.parts = [];
    this.size = 0;
    this.held(b.length);
    this.push(b);
  }
}

export interface Feed {
  /** Job `i` into the slave (jobs are taken in order); its rows as the slave counted them, and the bytes. */
  copy(i: number, slave: Session): Promise<{ rows: number; bytes: number }>;
  /** The master's failure, naming the table it was reading: the run's real cause, whichever copy it surfaced in. */
  readonly failure: Error | null;
  /** Stops reading ahead (the run failed elsewhere); every stream not yet loaded is torn down. */
  stop(err: Error): void;
  /** Settles once the master has nothing more to send, or has failed. */
  readonly done: Promise<void>;
}

/**
 * Starts reading the master's side of `jobs` at once, in order. Nothing else may be sent on the
 * master's connection until `done` settles (its queries would queue behind a COPY that waits
 * for the slave). `names[i]` names job i's table in errors.
 */
export function readAhead(master: Session, jobs: CopyJob[], names: string[], budget = READ_AHEAD_BYTES): Feed {
  const slots = jobs.map(() => deferred<Readable | null>());
  for (const s of slots) s.promise.catch(() => undefined); // taken (and their failure seen) in order
  const live = new Set<Batch>();
  let held = 0;
  let wake: (() => void) | null = null;
  let failure: Error | null = null;
  const fail = (err: Error) => {
    failure ??= err;
    for (const s of slots) s.reject(failure);
    for (const b of live) b.destroy(failure);
    live.clear();
    wake?.();
  };
  const done = (async () => {
    for (const [i, job] of jobs.entries()) {
      if (failure) return;
      if (!job) {
        slots[i]!.resolve(null);
        continue;
      }
      while (held >= budget && !failure) await new Promise<void>((r) => (wake = r));
      if (failure) return;
      const batch = new Batch((n) => (held += n), budget);
      // Its failure reaches the run through `failure` and the copy that takes it; a batch read
      // whole and not yet taken has no other listener, and its 'error' must not go uncaught.
      batch.on("error", () => undefined);
      live.add(batch);
      slots[i]!.resolve(batch);
      try {
        await pipeline(master.client.query(copyOutFrames(job.out)), batch);
      } catch (err) {
        fail(failure ?? new Error(`copying table ${names[i]}: ${master.label}: ${describe(err)}`));
        // A COPY OUT torn down halfway leaves the master's protocol state unusable: cut it (its
        // transaction only read).
        master.kill();
        return;
      }
    }
  })();
  return {
    get failure() {
      return failure;
    },
    stop: fail,
    done,
    async copy(i, slave) {
      const source = await slots[i]!.promise;
      if (!source) return { rows: 0, bytes: 0 };
      const sink = slave.client.query(new CopyInFrames(jobs[i]!.in));
      let bytes = 0;
      // Attached in the same tick as the pipe: both listeners see every chunk.
      source.on("data", (chunk: Buffer) => {
        bytes += chunk.length;
        held -= chunk.length;
        if (held < budget) wake?.();
      });
      source.once("end", () => live.delete(source as Batch));
      await pipeline(source, sink);
      return { rows: sink.rowCount, bytes };
    },
  };
}

function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

import { Readable } from "node:stream";
import type pg from "pg";
import copyStreams from "pg-copy-streams";

/**
 * COPY between two servers without unwrapping each row. The master sends one CopyData message
 * per row, and a CopyData message is exactly what the slave's `COPY … FROM STDIN` takes: so the
 * master's messages are passed on as they are, whole, instead of being cut out of their frames
 * (one small buffer per row, pg-copy-streams' way) and framed again. Only the boundaries are
 * read, to find the end of the copy and never to pass on anything but whole CopyData messages:
 * the slave parses the very same framing, so nothing from the master can reach it outside the
 * payload of a CopyData message, and a CopyFail sent after a failure starts on a message boundary.
 */

const COPY_DATA = 0x64; // d
const COPY_DONE = 0x63; // c
const ERROR = 0x45; // E
/** May come between CopyData messages (protocol-flow.html#PROTOCOL-COPY): read past. */
const SKIPPED = new Set([
  0x48 /* CopyOutResponse */, 0x4e /* Notice */, 0x53 /* ParameterStatus */, 0x41 /* Notification */,
]);
/** A message longer than PostgreSQL could send (1 GB) is a broken or hostile stream. */
const MAX_MESSAGE = 0x40000000 + 64;

interface PgConnection {
  stream: {
    read(): Buffer | null;
    resume(): void;
    pause(): void;
    listeners(event: "data"): unknown[];
    on(event: string, fn: (...a: never[]) => void): void;
    removeListener(event: string, fn: (...a: never[]) => void): void;
    write(b: Buffer): boolean;
  };
  query(text: string): void;
}

/** `COPY … TO STDOUT` as a stream of buffers each holding whole CopyData messages (header included). */
export class CopyOutFrames extends Readable {
  /** Rows the master said it sent (its CommandComplete). */
  rowCount = 0;
  private connection: PgConnection | null = null;
  private pgData: ((b: Buffer) => void) | null = null;
  private readonly onReadable = () => this.forward();
  private wanted = false;
  private forwarding = false;
  private over = false;
  private complete = false;
  /** An incomplete message: its bytes so far, and its whole length once its header is in. */
  private held: Buffer[] = [];
  private have = 0;
  private need = 0;

  constructor(private readonly text: string) {
    super();
  }

  /** Called by node-postgres when the query's turn comes: the socket's data is ours until the copy ends. */
  submit(connection: PgConnection): void {
    this.connection = connection;
    const s = connection.stream;
    const handlers = s.listeners("data") as ((b: Buffer) => void)[];
    if (handlers.length !== 1) throw new Error(`COPY: ${handlers.length} data listeners on the connection`);
    this.pgData = handlers[0]!;
    s.removeListener("data", this.pgData);
    s.pause();
    s.on("readable", this.onReadable);
    connection.query(this.text);
  }

  override _read(): void {
    this.wanted = true;
    this.forward();
  }

  private forward(): void {
    if (this.forwarding || !this.wanted || !this.connection) return;
    this.forwarding = true;
    try {
      let chunk: Buffer | null;
      while (this.wanted && !this.over && (chunk = this.connection.stream.read()) !== null)
        this.wanted = this.chunkIn(chunk);
    } catch (err) {
      this.destroy(err as Error);
    } finally {
      this.forwarding = false;
    }
  }

  /** One chunk off the socket; false once the reader wants no more for now. */
  private chunkIn(chunk: Buffer): boolean {
    if (!this.have) return this.scan(chunk);
    if (!this.need) {
      if (this.have + chunk.length < 5) return this.hold(chunk);
      this.need = 1 + checkedLength(Buffer.concat([...this.held, chunk], 5).readUInt32BE(1));
    }
    const missing = this.need - this.have;
    if (chunk.length < missing) return this.hold(chunk);
    const message = Buffer.concat([...this.held, chunk.subarray(0, missing)], this.need);
    this.held = [];
    this.have = 0;
    this.need = 0;
    const rest = chunk.subarray(missing);
    if (message[0] === COPY_DATA) {
      const more = this.push(message);
      return rest.length ? this.scan(rest) && more : more;
    }
    return this.scan(Buffer.concat([message, rest]));
  }

  private hold(part: Buffer): boolean {
    this.held.push(part);
    this.have += part.length;
    return true;
  }

  /** Whole messages from the start of `buf`; what is left incomplete is held for the next chunk. */
  private scan(buf: Buffer): boolean {
    let start = 0;
    let i = 0;
    let more = true;
    while (i + 5 <= buf.length) {
      const code = buf[i]!;
      const end = i + 1 + checkedLength(buf.readUInt32BE(i + 1));
      if (code === COPY_DATA) {
        if (end > buf.length) break;
        i = end;
        continue;
      }
      if (start < i) more = this.push(buf.subarray(start, i)) && more;
      if (SKIPPED.has(code)) {
        if (end > buf.length) break;
        i = start = end;
        continue;
      }
      if (code === COPY_DONE) {
        if (end > buf.length) break;
        this.finish(buf.subarray(end), true);
      } else if (code === ERROR) {
        // node-postgres reads it and fails this stream (handleError): it must not end as if complete.
        this.finish(buf.subarray(i), false);
      } else throw new Error(`COPY: unexpected message ${JSON.stringify(String.fromCharCode(code))} from the server`);
      return false;
    }
    if (start < i) more = this.push(buf.subarray(start, i)) && more;
    if (i < buf.length) {
      const rest = buf.subarray(i);
      this.held = [rest];
      this.have = rest.length;
      this.need = rest.length >= 5 ? 1 + checkedLength(rest.readUInt32BE(1)) : 0;
    }
    return more;
  }

  /** Hands the socket back to node-postgres with what follows the copy (CommandComplete, ReadyForQuery, or an error). */
  private finish(rest: Buffer, complete: boolean): void {
    this.over = true;
    this.complete = complete;
    const s = this.connection!.stream;
    s.removeListener("readable", this.onReadable);
    s.on("data", this.pgData!);
    if (rest.length) this.pgData!(rest);
    // As pg-copy-streams does: resumed after the current data event has run its course.
    process.nextTick(() => s.resume());
    if (complete) this.push(null);
  }

  // node-postgres' query interface.
  handleError(err: Error): void {
    this.destroy(err);
  }
  handleCommandComplete(msg: { text?: string }): void {
    const m = /COPY (\d+)/.exec(msg?.text ?? "");
    if (m) this.rowCount = Number(m[1]);
  }
  handleReadyForQuery(): void {
    if (!this.complete) this.destroy(new Error("COPY: the server ended the copy without CopyDone"));
  }
}

function checkedLength(n: number): number {
  if (n < 4 || n > MAX_MESSAGE) throw new Error(`COPY: a protocol message of length ${n}: the stream is broken`);
  return n;
}

type CopyIn = ReturnType<typeof copyStreams.from>;
/** pg-copy-streams' COPY FROM STDIN, whose class the package does not export by name. */
const CopyFrom = (copyStreams.from("") as unknown as { constructor: new (text: string) => CopyIn }).constructor;

/** `COPY … FROM STDIN` fed buffers of whole CopyData messages (CopyOutFrames'), written to the slave as they are. */
export class CopyInFrames extends CopyFrom {
  flushChunk(chunk: Buffer): boolean {
    return (
      this as unknown as { connection: PgConnection & { stream: { write(b: Buffer): boolean } } }
    ).connection.stream.write(chunk);
  }
}

export function copyOutFrames(text: string): CopyOutFrames & pg.Submittable {
  return new CopyOutFrames(text) as CopyOutFrames & pg.Submittable;
}

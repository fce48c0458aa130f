import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { CopyOutFrames } from "../../../agent/replication/frames.js";

/**
 * CopyOutFrames on the bytes a server sends, cut at every size: what it passes on is exactly the
 * CopyData messages, whole; what follows the copy goes back to node-postgres; an error never
 * ends the stream as if the copy were complete; a broken framing is refused. The real servers'
 * side is covered by every replication test (all copies go through it).
 */

const msg = (code: string, body: Buffer) => {
  const h = Buffer.alloc(5);
  h[0] = code.charCodeAt(0);
  h.writeUInt32BE(body.length + 4, 1);
  return Buffer.concat([h, body]);
};
const data = [Buffer.from("row one"), Buffer.alloc(100_000, 7), Buffer.from(""), Buffer.from("é")].map((b) =>
  msg("d", b),
);
const before = [msg("H", Buffer.from([0, 0, 0])), msg("N", Buffer.from("notice\0"))];
const after = Buffer.concat([msg("C", Buffer.from("COPY 4\0")), msg("Z", Buffer.from("I"))]);
const error = msg("E", Buffer.from("SERROR\0Mboom\0\0"));

/** Feeds `bytes` in pieces of `size` to a CopyOutFrames on a stand-in connection. */
async function run(bytes: Buffer, size: number) {
  const stream = new PassThrough();
  const toPg: Buffer[] = [];
  stream.on("data", (b: Buffer) => toPg.push(b));
  const q = new CopyOutFrames("COPY x TO STDOUT");
  q.submit({ stream, query: () => undefined } as never);
  const out: Buffer[] = [];
  const done = new Promise<Error | null>((resolve) => {
    q.on("data", (b: Buffer) => out.push(b));
    q.on("end", () => resolve(null));
    q.on("error", resolve);
  });
  for (let i = 0; i < bytes.length; i += size) {
    stream.write(bytes.subarray(i, i + size));
    await new Promise((r) => setImmediate(r));
  }
  const ended = await Promise.race([done, new Promise((r) => setTimeout(() => r("open"), 50))]);
  return { q, out, toPg: Buffer.concat(toPg), ended };
}

/** Each buffer passed on must be a run of whole CopyData messages. */
function wholeFrames(out: Buffer[]): boolean {
  return out.every((b) => {
    let i = 0;
    while (i < b.length) {
      if (b[i] !== 0x64 || i + 5 > b.length) return false;
      i += 1 + b.readUInt32BE(i + 1);
    }
    return i === b.length;
  });
}

describe("CopyOutFrames", () => {
  for (const size of [1, 2, 3, 5, 6, 7, 13, 4096, 65_536, 1 << 20])
    it(`passes on the CopyData messages whole, the rest to node-postgres (pieces of ${size} bytes)`, async () => {
      const bytes = Buffer.concat([...before, ...data, msg("c", Buffer.alloc(0)), after]);
      const r = await run(bytes, size);
      expect(r.ended).toBeNull();
      expect(wholeFrames(r.out)).toBe(true);
      expect(Buffer.concat(r.out).equals(Buffer.concat(data))).toBe(true);
      expect(r.toPg.equals(after)).toBe(true);
    });

  for (const size of [1, 5, 4096])
    it(`an ErrorResponse mid-copy goes to node-postgres and the stream does not end (pieces of ${size} bytes)`, async () => {
      const r = await run(Buffer.concat([...before, data[0]!, data[1]!, error, after]), size);
      expect(r.ended).toBe("open");
      expect(r.toPg.equals(Buffer.concat([error, after]))).toBe(true);
      r.q.handleError(new Error("boom"));
      r.q.handleReadyForQuery();
      expect(r.q.destroyed).toBe(true);
      expect(Buffer.concat(r.out).equals(Buffer.concat([data[0]!, data[1]!]))).toBe(true);
    });

  it("refuses a message shorter than its own length field, and one no server sends mid-copy", async () => {
    const short = Buffer.from([0x64, 0, 0, 0, 2, 1, 2]);
    const r1 = await run(Buffer.concat([data[0]!, short]), 3);
    expect(String(r1.ended)).toMatch(/length 2: the stream is broken/);
    const r2 = await run(Buffer.concat([data[0]!, msg("D", Buffer.from("x"))]), 4096);
    expect(String(r2.ended)).toMatch(/unexpected message "D"/);
  });

  it("a copy that stops without CopyDone fails", async () => {
    const r = await run(Buffer.concat([data[0]!]), 4096);
    expect(r.ended).toBe("open");
    r.q.handleReadyForQuery();
    expect(r.q.destroyed).toBe(true);
  });
});

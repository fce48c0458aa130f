import { pipeline } from "node:stream/promises";
import copyStreams from "pg-copy-streams";
import type { TableInfo } from "./catalog.js";
import type { Session } from "./session.js";
import { copyInSql, copyOutSql, type CopyFormat } from "./sql.js";

/**
 * One table, master → slave, as a stream: `COPY … TO STDOUT` on the master piped straight into
 * `COPY … FROM STDIN` on the slave, never held in memory. If either end fails the pipe is torn
 * down, which sends CopyFail to the slave: its transaction is then aborted, never half-loaded.
 */
export async function copyTable(
  master: Session,
  slave: Session,
  schema: string,
  table: TableInfo,
  opts: { format: CopyFormat; freeze: boolean },
): Promise<{ rows: number; bytes: number }> {
  const source = master.client.query(copyStreams.to(copyOutSql(schema, table, opts.format)));
  const sink = slave.client.query(copyStreams.from(copyInSql(schema, table, opts.format, opts.freeze)));
  let bytes = 0;
  const done = pipeline(source, sink);
  source.on("data", (chunk: Buffer) => (bytes += chunk.length));
  await done;
  return { rows: sink.rowCount, bytes };
}

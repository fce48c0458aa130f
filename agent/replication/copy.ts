import { pipeline } from "node:stream/promises";
import copyStreams from "pg-copy-streams";
import type { TableInfo } from "./catalog.js";
import type { Session } from "./session.js";
import type { Tid } from "./answers.js";
import { copyInSql, copyOutSql, copyRowsOutSql, type CopyFormat } from "./sql.js";

/**
 * Rows master → slave as a stream: `COPY … TO STDOUT` on the master piped straight into
 * `COPY … FROM STDIN` on the slave, never held in memory. If either end fails the pipe is torn
 * down, which sends CopyFail to the slave: its transaction is then aborted, never half-loaded.
 */
async function pipeCopy(master: Session, slave: Session, outSql: string, inSql: string) {
  const source = master.client.query(copyStreams.to(outSql));
  const sink = slave.client.query(copyStreams.from(inSql));
  let bytes = 0;
  const done = pipeline(source, sink);
  source.on("data", (chunk: Buffer) => (bytes += chunk.length));
  await done;
  return { rows: sink.rowCount, bytes };
}

/** One whole table. */
export async function copyTable(
  master: Session,
  slave: Session,
  schema: string,
  table: TableInfo,
  opts: { format: CopyFormat; freeze: boolean },
): Promise<{ rows: number; bytes: number }> {
  return pipeCopy(
    master,
    slave,
    copyOutSql(schema, table, opts.format),
    copyInSql(schema, table, opts.format, opts.freeze),
  );
}

/** The master's rows at the given places (see copyRowsOutSql), appended to the slave's table. */
export async function copyRows(
  master: Session,
  slave: Session,
  schema: string,
  table: TableInfo,
  tids: Tid[],
  format: CopyFormat,
): Promise<{ rows: number; bytes: number }> {
  if (!tids.length) return { rows: 0, bytes: 0 };
  return pipeCopy(master, slave, copyRowsOutSql(schema, table, format, tids), copyInSql(schema, table, format, false));
}

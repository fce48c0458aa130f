import type { Session } from "./session.js";
import { literal, qualified, sequencesSql } from "./sql.js";

/**
 * Every replicated sequence takes the master's state (last_value and is_called, read in the
 * snapshot). setval alone is not transactional — a rolled-back run would leave it moved — so
 * each sequence is first `ALTER SEQUENCE … RESTART`ed, which gives it a new storage file in this
 * transaction; the setval then writes into that file, and a rollback discards both. Sequences
 * already equal are not touched.
 */
export async function syncSequences(master: Session, slave: Session, schema: string, names: string[]): Promise<string[]> {
  const sql = sequencesSql(schema, names);
  if (!sql) return [];
  type Row = { name: string; last_value: string; is_called: boolean };
  const read = async (s: Session) => {
    try {
      return new Map((await s.client.query<Row>(sql)).rows.map((r) => [r.name, r]));
    } catch (err) {
      throw Object.assign(err as Error, { message: `${s.label}: reading sequences: ${(err as Error).message}` });
    }
  };
  const [m, s] = await Promise.all([read(master), read(slave)]);
  const changed = names.filter((n) => {
    const a = m.get(n);
    const b = s.get(n);
    return !a || !b || a.last_value !== b.last_value || a.is_called !== b.is_called;
  });
  if (!changed.length) return [];
  const stmts = changed.map((n) => {
    const v = m.get(n)!;
    const q = qualified(schema, n);
    return `ALTER SEQUENCE ${q} RESTART; SELECT setval(${literal(q)}::regclass, ${v.last_value}, ${v.is_called})`;
  });
  try {
    await slave.client.query(stmts.join("; "));
  } catch (err) {
    throw Object.assign(err as Error, { message: `${slave.label}: setting sequences: ${(err as Error).message}` });
  }
  return changed;
}

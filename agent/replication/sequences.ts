import { int8 } from "./answers.js";
import type { Session } from "./session.js";
import { qualified, sequencesSql } from "./sql.js";

/**
 * Every replicated sequence takes the master's state (last_value and is_called, read in the
 * snapshot). setval alone is not transactional — a rolled-back run would leave it moved — so
 * each sequence is first `ALTER SEQUENCE … RESTART`ed, which gives it a new storage file in this
 * transaction; the setval then writes into that file, and a rollback discards both. Sequences
 * already equal are not touched.
 *
 * What the master sends is checked before anything runs on the slave (an int8 and a boolean, or
 * the run is refused), and it reaches the slave only as bound parameters, never as SQL text.
 */
export async function syncSequences(
  master: Session,
  slave: Session,
  schema: string,
  names: string[],
): Promise<string[]> {
  const sql = sequencesSql(schema, names);
  if (!sql) return [];
  const read = async (s: Session) => {
    let rows: unknown[];
    try {
      rows = (await s.client.query(sql)).rows;
    } catch (err) {
      throw Object.assign(err as Error, { message: `${s.label}: reading sequences: ${(err as Error).message}` });
    }
    return sequenceStates(s.label, names, rows);
  };
  const [m, s] = await Promise.all([read(master), read(slave)]);
  const changed = names.filter((n) => {
    const a = m.get(n)!;
    const b = s.get(n)!;
    return a.lastValue !== b.lastValue || a.isCalled !== b.isCalled;
  });
  if (!changed.length) return [];
  try {
    await slave.client.query(changed.map((n) => `ALTER SEQUENCE ${qualified(schema, n)} RESTART`).join("; "));
    await slave.client.query(
      "SELECT count(setval(u.s::regclass, u.v, u.c)) FROM unnest($1::text[], $2::int8[], $3::bool[]) AS u(s, v, c)",
      [
        changed.map((n) => qualified(schema, n)),
        changed.map((n) => m.get(n)!.lastValue),
        changed.map((n) => m.get(n)!.isCalled),
      ],
    );
  } catch (err) {
    throw Object.assign(err as Error, { message: `${slave.label}: setting sequences: ${(err as Error).message}` });
  }
  return changed;
}

export interface SequenceState {
  /** int8 as decimal text: JavaScript numbers would round it. */
  lastValue: string;
  isCalled: boolean;
}

/**
 * One node's answer to sequencesSql, checked: exactly one row per listed sequence, `last_value`
 * a decimal int8, `is_called` a boolean. Anything else is refused with the node and sequence named.
 */
export function sequenceStates(label: string, names: string[], rows: unknown[]): Map<string, SequenceState> {
  const out = new Map<string, SequenceState>();
  const bad = (what: string) => new Error(`${label}: reading sequences: ${what}; refused, nothing applied`);
  for (const row of rows) {
    const r = row as { i?: unknown; last_value?: unknown; is_called?: unknown };
    const name = typeof r.i === "number" && Number.isInteger(r.i) ? names[r.i] : undefined;
    if (name === undefined || out.has(name)) throw bad("an answer row for no listed sequence");
    const v = int8(r.last_value);
    if (v === null) {
      throw bad(
        `sequence ${name}: last_value is not a 64-bit integer (${JSON.stringify(String(r.last_value).slice(0, 40))})`,
      );
    }
    if (typeof r.is_called !== "boolean") throw bad(`sequence ${name}: is_called is not a boolean`);
    out.set(name, { lastValue: v, isCalled: r.is_called });
  }
  const missing = names.filter((n) => !out.has(n));
  if (missing.length) throw bad(`no state for sequence(s) ${missing.join(", ")}`);
  return out;
}

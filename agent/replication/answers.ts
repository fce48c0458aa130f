/**
 * Checks on what a node answers, before any of it is used: a hostile master's text must never
 * reach the slave's SQL, and a malformed answer refuses the run rather than mislead it. Pure.
 */

const INT8_MIN = -(2n ** 63n);
const INT8_MAX = 2n ** 63n - 1n;

/** A decimal int8 as PostgreSQL prints it, canonical (no leading zeros, no `-0`); null for anything else. */
export function int8(v: unknown): string | null {
  if (typeof v !== "string" || !/^-?[0-9]{1,19}$/.test(v)) return null;
  const n = BigInt(v);
  return n < INT8_MIN || n > INT8_MAX ? null : n.toString();
}

/** A sum of int8s as numeric (`sum(int8)`), canonical; null for anything else. */
export function integerSum(v: unknown): string | null {
  return typeof v === "string" && /^-?[0-9]{1,40}$/.test(v) ? BigInt(v).toString() : null;
}

/** A row's physical place, `(block,offset)`. */
export interface Tid {
  block: number;
  offset: number;
}

/** A tid as PostgreSQL prints it; null for anything else. */
export function tid(v: unknown): Tid | null {
  const m = typeof v === "string" ? /^\(([0-9]{1,10}),([0-9]{1,5})\)$/.exec(v) : null;
  if (!m) return null;
  const block = Number(m[1]);
  const offset = Number(m[2]);
  return block <= 0xffff_ffff && offset >= 1 && offset <= 0xffff ? { block, offset } : null;
}

/** Written back out from its two checked numbers only. */
export const tidText = (t: Tid) => `(${t.block},${t.offset})`;

/**
 * Which tables and sequences a run replicates: pure, so the rules test without a database.
 * Tables by include/exclude globs on their name; a sequence owned by a table (serial, identity)
 * follows its table, so the sequences of excluded tables stay alone as in Wazo's script; a free
 * sequence is judged by its own name.
 */

export interface Selection {
  include: readonly string[];
  exclude: readonly string[];
}

/** `*` any run of characters, `?` exactly one; the whole name must match; case-sensitive like PostgreSQL's quoted names. */
export function globToRegExp(glob: string): RegExp {
  const body = [...glob]
    .map((ch) => (ch === "*" ? ".*" : ch === "?" ? "." : ch.replace(/[.+^${}()|[\]\\]/g, "\\$&")))
    .join("");
  return new RegExp(`^${body}$`, "s");
}

/**
 * xivo-ha's own tables (the failback ledger on the master) are bookkeeping of this pair, never
 * data to replicate, whatever the include and exclude lists say.
 */
export const OWN_TABLES = "xivo_ha_*";

export function matcher(sel: Selection): (name: string) => boolean {
  const inc = sel.include.map(globToRegExp);
  const exc = [...sel.exclude, OWN_TABLES].map(globToRegExp);
  return (name) => inc.some((r) => r.test(name)) && !exc.some((r) => r.test(name));
}

export interface SequenceRef {
  name: string;
  /** The table that owns it (OWNED BY, serial, identity), or null for a free sequence. */
  ownedBy: string | null;
}

export function selectTables(names: Iterable<string>, sel: Selection): string[] {
  const ok = matcher(sel);
  return [...names].filter(ok).sort();
}

export function selectSequences(seqs: Iterable<SequenceRef>, sel: Selection): string[] {
  const ok = matcher(sel);
  return [...seqs]
    .filter((s) => ok(s.ownedBy ?? s.name))
    .map((s) => s.name)
    .sort();
}

import type { Catalog } from "./catalog.js";

/**
 * Schema drift between master and slave over the replicated set. Wazo never replicates the
 * schema: both nodes must run the same version. When they do not, copying would fail halfway
 * or, worse, load rows into the wrong columns, so the run is refused and every difference named.
 * Pure: two catalogs in, one line per difference out, in a stable order.
 */
export function schemaDrift(
  master: Catalog,
  slave: Catalog,
  tables: { master: string[]; slave: string[] },
  sequences: { master: string[]; slave: string[] },
): string[] {
  const out: string[] = [];
  const slaveTables = new Set(tables.slave);
  const masterTables = new Set(tables.master);
  for (const name of union(tables.master, tables.slave)) {
    if (!slaveTables.has(name)) {
      out.push(`table ${name}: on the master only`);
      continue;
    }
    if (!masterTables.has(name)) {
      out.push(`table ${name}: on the slave only`);
      continue;
    }
    const m = new Map(master.tables.get(name)?.columns.map((c) => [c.name, c]));
    const s = new Map(slave.tables.get(name)?.columns.map((c) => [c.name, c]));
    for (const col of union([...m.keys()], [...s.keys()])) {
      const mc = m.get(col);
      const sc = s.get(col);
      if (!sc) out.push(`column ${name}.${col}: on the master only (${mc?.type})`);
      else if (!mc) out.push(`column ${name}.${col}: on the slave only (${sc.type})`);
      else if (mc.type !== sc.type)
        out.push(`column ${name}.${col}: type ${mc.type} on the master, ${sc.type} on the slave`);
      else if (mc.generated !== sc.generated)
        out.push(
          `column ${name}.${col}: ${mc.generated ? "generated" : "plain"} on the master, ${sc.generated ? "generated" : "plain"} on the slave`,
        );
    }
  }
  const slaveSeqs = new Set(sequences.slave);
  const masterSeqs = new Set(sequences.master);
  for (const name of union(sequences.master, sequences.slave)) {
    if (!slaveSeqs.has(name)) out.push(`sequence ${name}: on the master only`);
    else if (!masterSeqs.has(name)) out.push(`sequence ${name}: on the slave only`);
  }
  return out;
}

function union(a: Iterable<string>, b: Iterable<string>): string[] {
  return [...new Set([...a, ...b])].sort();
}

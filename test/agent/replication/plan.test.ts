import { describe, expect, it } from "vitest";
import type { Catalog, TableInfo } from "../../../agent/replication/catalog.js";
import {
  ReplicationConfig,
  redactReplication,
  resolveReplicationSecrets,
  WAZO_EXCLUDE,
} from "../../../agent/replication/config.js";
import { schemaDrift } from "../../../agent/replication/drift.js";
import { globToRegExp, selectSequences, selectTables } from "../../../agent/replication/select.js";
import { copyInSql, copyOutSql, fingerprintSql, ident, planClear, skipEmpty } from "../../../agent/replication/sql.js";

// The pure rules of a run: which objects, how to empty them, what counts as drift.

const table = (name: string, cols: [string, string, boolean?][], primaryKey: string[] = []): TableInfo => ({
  name,
  columns: cols.map(([n, type, generated]) => ({ name: n, type, generated: generated ?? false })),
  primaryKey,
  estimatedRows: null,
});
const catalog = (tables: TableInfo[], sequences: Catalog["sequences"] = []): Catalog => ({
  tables: new Map(tables.map((t) => [t.name, t])),
  sequences,
  referencedBy: new Map(),
});

describe("selection", () => {
  const wazo = { include: ["*"], exclude: [...WAZO_EXCLUDE] };

  it("globs match whole names, * and ? only, everything else literal", () => {
    expect(globToRegExp("stat_*").test("stat_agent")).toBe(true);
    expect(globToRegExp("stat_*").test("xstat_agent")).toBe(false);
    expect(globToRegExp("a.b").test("axb")).toBe(false);
    expect(globToRegExp("q?eue").test("queue")).toBe(true);
  });

  it("leaves out Wazo's list by default, stat_* included", () => {
    expect(
      selectTables(
        ["userfeatures", "cel", "stat_queue", "call_log", "call_log_participant", "queue_log", "queue"],
        wazo,
      ),
    ).toEqual(["queue", "userfeatures"]);
  });

  it("a sequence follows its owning table; a free one is judged by its name", () => {
    const seqs = [
      { name: "cel_id_seq", ownedBy: "cel" },
      { name: "userfeatures_id_seq", ownedBy: "userfeatures" },
      { name: "stat_x", ownedBy: null },
      { name: "provisioning_seq", ownedBy: null },
    ];
    expect(selectSequences(seqs, wazo)).toEqual(["provisioning_seq", "userfeatures_id_seq"]);
  });
});

describe("planClear", () => {
  const refs = (pairs: [string, string][]) => {
    const m = new Map<string, Set<string>>();
    for (const [to, from] of pairs) m.set(to, (m.get(to) ?? new Set()).add(from));
    return m;
  };

  it("truncates a foreign-key cycle together", () => {
    const r = refs([
      ["voicemail", "public.userfeatures"],
      ["userfeatures", "public.voicemail"],
    ]);
    expect(planClear("public", ["userfeatures", "voicemail"], r)).toEqual({
      truncate: ["userfeatures", "voicemail"],
      delete: [],
    });
  });

  it("deletes from a table a kept table references, and from what that one references in turn", () => {
    // call_log_participant (kept) → userfeatures → context; voicemail (copied) → userfeatures.
    const r = refs([
      ["userfeatures", "public.call_log_participant"],
      ["context", "public.userfeatures"],
      ["userfeatures", "public.voicemail"],
    ]);
    expect(planClear("public", ["context", "userfeatures", "voicemail", "queue"], r)).toEqual({
      truncate: ["voicemail", "queue"],
      delete: ["context", "userfeatures"],
    });
  });

  it("a reference from another schema counts as kept", () => {
    expect(planClear("public", ["context"], refs([["context", "other.context"]]))).toEqual({
      truncate: [],
      delete: ["context"],
    });
  });

  it("skipEmpty: leaves every empty table alone when nothing truncated is referenced from one", () => {
    const plan = { truncate: ["a", "b", "c"], delete: ["d"] };
    expect(skipEmpty("public", plan, new Set(["a", "b", "d"]), refs([["a", "public.b"]]))).toEqual(
      new Set(["a", "b", "d"]),
    );
  });

  it("skipEmpty: truncates an empty table whose foreign key points at a truncated one, and in turn what points at that", () => {
    // c (empty) → b (empty) → a (truncated): TRUNCATE a needs b in the list, which needs c.
    const plan = { truncate: ["a", "b", "c", "e"], delete: [] };
    const r = refs([
      ["a", "public.b"],
      ["b", "public.c"],
      ["e", "public.e"],
    ]);
    expect(skipEmpty("public", plan, new Set(["b", "c", "e"]), r)).toEqual(new Set(["e"]));
  });

  it("skipEmpty: a reference from another schema is not one of ours", () => {
    const plan = { truncate: ["a", "b"], delete: [] };
    expect(skipEmpty("public", plan, new Set(["b"]), refs([["a", "other.b"]]))).toEqual(new Set(["b"]));
  });
});

describe("schemaDrift", () => {
  it("names every difference: missing tables, columns, types, generated-ness, sequences", () => {
    const m = catalog(
      [
        table("a", [
          ["id", "integer"],
          ["x", "text"],
          ["g", "text", true],
        ]),
        table("b", [["id", "integer"]]),
      ],
      [{ name: "a_id_seq", ownedBy: "a" }],
    );
    const s = catalog([
      table("a", [
        ["id", "bigint"],
        ["y", "text"],
        ["g", "text"],
      ]),
      table("c", [["id", "integer"]]),
    ]);
    expect(schemaDrift(m, s, { master: ["a", "b"], slave: ["a", "c"] }, { master: ["a_id_seq"], slave: [] })).toEqual([
      "column a.g: generated on the master, plain on the slave",
      "column a.id: type integer on the master, bigint on the slave",
      "column a.x: on the master only (text)",
      "column a.y: on the slave only (text)",
      "table b: on the master only",
      "table c: on the slave only",
      "sequence a_id_seq: on the master only",
    ]);
  });

  it("finds none between equal catalogs", () => {
    const c = catalog([table("a", [["id", "integer"]])]);
    expect(schemaDrift(c, c, { master: ["a"], slave: ["a"] }, { master: [], slave: [] })).toEqual([]);
  });
});

describe("SQL", () => {
  const t = table('user"s', [
    ["id", "integer"],
    ["full", "text", true],
    ["name", "text"],
  ]);

  it("never lists a generated column, quotes every name", () => {
    expect(copyOutSql("public", t, "binary")).toBe(
      `COPY "public"."user""s" ("id", "name") TO STDOUT WITH (FORMAT binary)`,
    );
    expect(copyInSql("public", t, "text", true)).toBe(
      `COPY "public"."user""s" ("id", "name") FROM STDIN WITH (FORMAT text, FREEZE)`,
    );
    expect(fingerprintSql("public", t)).toContain(`ROW(t."id", t."name")::text`);
  });

  it("sends a table in primary-key order when asked, and as it lies when it has no key", () => {
    const keyed = table(
      'k"y',
      [
        ["a b", "uuid"],
        ["n", "int"],
        ["g", "text", true],
      ],
      ["n", "a b"],
    );
    expect(copyOutSql("public", keyed, "binary", true)).toBe(
      `COPY (SELECT t."a b", t."n" FROM ONLY "public"."k""y" AS t ORDER BY t."n", t."a b") TO STDOUT WITH (FORMAT binary)`,
    );
    expect(copyOutSql("public", t, "binary", true)).toBe(
      `COPY "public"."user""s" ("id", "name") TO STDOUT WITH (FORMAT binary)`,
    );
  });
});

describe("config", () => {
  it("defaults to Wazo's database, schema and exclusions; passwords from the environment", () => {
    const cfg = ReplicationConfig.parse({});
    expect(cfg).toMatchObject({
      everyMs: 300_000,
      schema: "public",
      include: ["*"],
      master: { user: "xivo_ha_replica", port: 5432, database: "asterisk" },
      slave: { host: "127.0.0.1", user: "asterisk" },
    });
    expect(cfg.exclude).toEqual([...WAZO_EXCLUDE]);
    const r = resolveReplicationSecrets(
      cfg,
      { XIVO_HA_REPL_MASTER_PASSWORD: "m-pw", XIVO_HA_REPL_SLAVE_PASSWORD: "s-pw" },
      "10.0.0.1",
    );
    expect(r.master).toMatchObject({ host: "10.0.0.1", password: "m-pw" });
    expect(r.slave.password).toBe("s-pw");
    expect(JSON.stringify(redactReplication(r))).not.toMatch(/m-pw|s-pw/);
  });

  it("refuses unknown fields and a run with no master host", () => {
    expect(() => ReplicationConfig.parse({ master: { hots: "x" } })).toThrow();
    expect(() => resolveReplicationSecrets(ReplicationConfig.parse({}), {})).toThrow(/master\.host/);
  });
});

describe("ident", () => {
  it("quotes any name PostgreSQL could send, and refuses what it could not (too long, NUL, empty)", () => {
    expect(ident(`a"b; DROP TABLE x; --`)).toBe(`"a""b; DROP TABLE x; --"`);
    expect(ident("a".repeat(63))).toBe(`"${"a".repeat(63)}"`);
    for (const bad of ["", "a".repeat(64), "é".repeat(32), "a\0b"])
      expect(() => ident(bad)).toThrow(/refused a SQL name that PostgreSQL could not have sent/);
  });
});

describe("xivo-ha's own tables", () => {
  it("are never replicated, whatever the lists say (the failback ledger lives on the master)", () => {
    expect(selectTables(["userfeatures", "xivo_ha_reconciled"], { include: ["*"], exclude: [] })).toEqual([
      "userfeatures",
    ]);
  });
});

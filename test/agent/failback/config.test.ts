import { describe, expect, it } from "vitest";
import {
  FailbackConfig,
  MASTER_PASSWORD_ENV,
  parseFailbackConfig,
  redactFailback,
  SLAVE_PASSWORD_ENV,
} from "../../../agent/failback/config.js";
import { withFields } from "../../../agent/failback/copy.js";

const minimal = { master: { host: "10.0.0.1" } };

function errorOf(raw: unknown): string {
  try {
    parseFailbackConfig(raw, {});
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error("expected the config to be refused");
}

describe("failback config", () => {
  it("defaults to Wazo's slave-written tables, parents first, and no file hooks", () => {
    const c = parseFailbackConfig(minimal, {});
    expect(
      c.tables.map((t) => [t.name, t.key, t.idColumn, t.references.map((r) => `${r.column}->${r.table}`)]),
    ).toEqual([
      ["call_log", null, "id", []],
      ["call_log_participant", ["uuid"], undefined, ["call_log_id->call_log"]],
      ["cel", null, "id", ["call_log_id->call_log"]],
      ["queue_log", null, "id", []],
    ]);
    expect(c).toMatchObject({
      master: { host: "10.0.0.1", port: 5432, database: "asterisk", user: "asterisk" },
      slave: { host: "127.0.0.1", port: 5432, database: "asterisk", user: "asterisk" },
      ledger: { schema: "public", table: "xivo_ha_reconciled", create: true },
      fileSync: [],
    });
    expect(c.origin).toBeUndefined();
  });

  it("names the field of every mistake", () => {
    expect(errorOf({})).toBe("invalid failback config:\n  master: Invalid input: expected object, received undefined");
    const msg = errorOf({
      ...minimal,
      tables: [
        { name: "cel", key: null, idColumn: "id", references: [{ column: "call_log_id", table: "call_log" }] },
        { name: "call_log", key: null },
        { name: "queue log", key: null, idColumn: "id" },
      ],
      fileSync: [{ name: "vm", argv: [] }],
      batchRows: 0,
    });
    expect(msg.split("\n").slice(1)).toEqual([
      "  tables[2].name: expected a SQL identifier (letters, digits, _)",
      "  batchRows: Too small: expected number to be >=1",
      "  fileSync[0].argv: Too small: expected array to have >=1 items",
      "  tables[0].references[0].table: expected a table listed before cel with an idColumn",
      "  tables[1].idColumn: expected an idColumn when key is null (the slave's id identifies the row)",
    ]);
    expect(
      errorOf({
        ...minimal,
        tables: [
          { name: "cel", key: null, idColumn: "id", references: [{ column: "call_log_id", table: "call_log" }] },
          { name: "call_log", key: null },
        ],
        fileSync: [
          { name: "vm", argv: ["true"] },
          { name: "vm", argv: ["true"] },
        ],
      })
        .split("\n")
        .slice(1),
    ).toEqual([
      "  tables[0].references[0].table: expected a table listed before cel with an idColumn",
      "  tables[1].idColumn: expected an idColumn when key is null (the slave's id identifies the row)",
      "  fileSync[1].name: duplicate hook name vm",
    ]);
    expect(errorOf({ ...minimal, extra: 1 })).toMatch(/\(root\): Unrecognized key: "extra"/);
  });

  it("user state: Wazo's userfeatures services and forwards by default; off with null; names a bad field", () => {
    const [uf] = parseFailbackConfig(minimal, {}).userState!.tables;
    expect(uf).toMatchObject({ name: "userfeatures", schema: "public", key: "uuid" });
    // DND, call filtering, and each forward (unconditional, no answer, busy) with its destination.
    const forwards = ["unc", "rna", "busy"].flatMap((f) => [`enable${f}`, `dest${f}`]);
    expect(uf!.columns).toEqual(expect.arrayContaining(["enablednd", "incallfilter", ...forwards]));
    expect(parseFailbackConfig({ ...minimal, userState: null }, {}).userState).toBeNull();
    const msg = errorOf({
      ...minimal,
      userState: {
        tables: [
          { name: "userfeatures", key: "uuid", columns: ["enablednd", "uuid", "dest unc", "enablednd"] },
          { name: "userfeatures", key: "id", columns: [] },
        ],
        maxRows: 0,
      },
    });
    expect(msg.split("\n").slice(1)).toEqual([
      "  userState.tables[0].columns[2]: expected a SQL identifier (letters, digits, _)",
      "  userState.tables[0].columns[1]: expected a column other than the key",
      "  userState.tables[0].columns[3]: duplicate column enablednd",
      "  userState.tables[1].columns: Too small: expected array to have >=1 items",
      "  userState.maxRows: Too small: expected number to be >=1",
      "  userState.tables[1].name: duplicate table public.userfeatures",
    ]);
  });

  it("takes passwords from the environment over the file, and redacts them", () => {
    const c = parseFailbackConfig(
      { master: { host: "m", password: "from-file" }, slave: { host: "127.0.0.1", password: "slave-file" } },
      { [MASTER_PASSWORD_ENV]: "from-env" },
    );
    expect(c.master.password).toBe("from-env");
    expect(c.slave.password).toBe("slave-file");
    expect(parseFailbackConfig(minimal, { [SLAVE_PASSWORD_ENV]: "s" }).slave.password).toBe("s");
    const shown = JSON.stringify(redactFailback(c));
    expect(shown).not.toContain("from-env");
    expect(shown).not.toContain("slave-file");
    expect(redactFailback(parseFailbackConfig(minimal, {})).master.password).toBeUndefined();
  });

  it("keeps the schema's defaults stable for the lead's wiring", () => {
    expect(FailbackConfig.parse(minimal)).toEqual(parseFailbackConfig(minimal, {}));
  });
});

describe("withFields (ids spliced into a row's JSON text, never parsed)", () => {
  it("keeps big numbers exactly and handles an empty object", () => {
    expect(withFields('{"amount": 12345678901234567890.123}', [["id", "9007199254740993"]])).toBe(
      '{"id":"9007199254740993","amount": 12345678901234567890.123}',
    );
    expect(
      withFields("{}", [
        ["id", "1"],
        ["call_log_id", null],
      ]),
    ).toBe('{"id":"1","call_log_id":null}');
    expect(withFields('{"a": 1}', [])).toBe('{"a": 1}');
  });
});

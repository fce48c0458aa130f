import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { readState, removeLeftoverTemps, statePath, writeState, type RoleState } from "../../agent/state.js";
import { reap, spawnTs, tempDir, waitForLine } from "./helpers.js";

let dir: { path: string; remove: () => Promise<void> };
beforeEach(async () => (dir = await tempDir()));
afterEach(() => dir.remove());

const active: RoleState = {
  v: 1,
  role: "active",
  since: 1_700_000_000_000,
  lastAction: { kind: "failover", at: 1_700_000_000_000, ok: true, reason: "edge and LAN both see the master down" },
  lastSeq: 17,
  reconcilePending: true,
};

describe("role state file", () => {
  it("reads back what was written", async () => {
    await writeState(dir.path, active);
    expect(await readState(dir.path)).toEqual({ ok: true, state: active });
  });

  it("reads a file written before reconcilePending existed as not pending", async () => {
    const { reconcilePending: _, ...older } = active;
    await writeFile(statePath(dir.path), JSON.stringify(older));
    expect(await readState(dir.path)).toEqual({ ok: true, state: { ...older, reconcilePending: false } });
  });

  it("creates the state directory when missing", async () => {
    const nested = join(dir.path, "var", "lib", "xivo-ha");
    await writeState(nested, active);
    expect((await readState(nested)).ok).toBe(true);
  });

  it("reports a missing file as role unknown", async () => {
    const r = await readState(dir.path);
    expect(r).toMatchObject({ ok: false, role: "unknown", problem: "missing" });
    expect(r.ok || r.detail).toContain(statePath(dir.path));
  });

  it.each([
    ["empty", ""],
    ["truncated JSON", '{"v":1,"role":"act'],
    ["not an object", "[1,2,3]"],
    ["unknown role", JSON.stringify({ ...active, role: "primary" })],
    ["missing field", JSON.stringify({ v: 1, role: "standby" })],
  ])("reports a corrupt file (%s) as role unknown, naming the file", async (_, text) => {
    await writeFile(statePath(dir.path), text);
    const r = await readState(dir.path);
    expect(r).toMatchObject({ ok: false, role: "unknown", problem: "corrupt" });
    expect(r.ok || r.detail).toContain(statePath(dir.path));
  });

  it("names the bad field of a wrong-shaped file", async () => {
    await writeFile(statePath(dir.path), JSON.stringify({ ...active, role: "primary" }));
    const r = await readState(dir.path);
    expect(r.ok || r.detail).toMatch(/role:/);
  });

  it("refuses to write an invalid state", async () => {
    await expect(writeState(dir.path, { ...active, role: "unknown" as "active" })).rejects.toThrow();
    expect((await readState(dir.path)).ok).toBe(false);
  });

  it("ignores a temp file left by a writer that crashed before rename", async () => {
    await writeState(dir.path, active);
    await writeFile(`${statePath(dir.path)}.999999.deadbeef.tmp`, '{"v":1,"role":"stand');
    expect(await readState(dir.path)).toEqual({ ok: true, state: active });
    expect(await removeLeftoverTemps(dir.path)).toEqual(["role.json.999999.deadbeef.tmp"]);
    expect(await readdir(dir.path)).toEqual(["role.json"]);
  });

  it("keeps a temp file whose writer is still alive", async () => {
    const live = `role.json.${process.pid}.cafe.tmp`;
    await writeFile(join(dir.path, live), "{}");
    expect(await removeLeftoverTemps(dir.path)).toEqual([]);
    expect(await readdir(dir.path)).toContain(live);
  });

  it("leaves a whole state on disk when the writer is SIGKILLed mid-stream", async () => {
    for (let round = 0; round < 3; round++) {
      const child = spawnTs("state-writer.ts", [dir.path]);
      try {
        await waitForLine(child, /writing/);
        child.kill("SIGKILL");
      } finally {
        await reap(child);
      }
      const r = await readState(dir.path);
      expect(r.ok, r.ok ? "" : r.detail).toBe(true);
      await removeLeftoverTemps(dir.path);
      expect((await readdir(dir.path)).filter((n) => n.endsWith(".tmp"))).toEqual([]);
    }
    // No temp file was ever read in place of the real one: it parses as exactly one state.
    expect(JSON.parse(await readFile(statePath(dir.path), "utf8")).v).toBe(1);
  });
});

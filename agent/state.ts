import { randomBytes } from "node:crypto";
import { mkdir, open, readdir, readFile, rename, unlink } from "node:fs/promises";
import { dirname, join } from "node:path";
import { z } from "zod";
import { AgentReport } from "../protocol/report.js";
import { pidAlive } from "./proc.js";

export const STATE_FILE = "role.json";
export const SEQ_FILE = "seq.json";

/** What the keeper persists between loops and across restarts. */
export const RoleState = z.object({
  v: z.literal(1),
  role: z.enum(["standby", "active"]),
  /** Agent clock, epoch ms, when `role` was entered: shown, never used for decisions. */
  since: z.number().int().nonnegative(),
  lastAction: AgentReport.shape.lastAction,
  /** Written by older agents, before seq.json owned the replay floor: read once, to migrate it. */
  lastSeq: z.number().int().nonnegative().nullable().optional(),
  /**
   * Set at failover: the slave's telephony may write call records while active, which must be
   * copied back to the master (failback reconciliation) before master → slave replication
   * resumes. Cleared only when that copy-back succeeds, so a crash never skips it.
   */
  reconcilePending: z.boolean().default(false),
});
export type RoleState = z.input<typeof RoleState>;

export type StateRead =
  | { ok: true; state: RoleState }
  | { ok: false; role: "unknown"; problem: "missing" | "corrupt"; detail: string };

export function statePath(dir: string): string {
  return join(dir, STATE_FILE);
}

/** Never throws for a missing or damaged file: the role is then `unknown` and the caller decides. */
export async function readState(dir: string): Promise<StateRead> {
  const path = statePath(dir);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return { ok: false, role: "unknown", problem: "missing", detail: `${path} does not exist` };
    return { ok: false, role: "unknown", problem: "corrupt", detail: `cannot read ${path}: ${code ?? String(e)}` };
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { ok: false, role: "unknown", problem: "corrupt", detail: `${path} is not JSON` };
  }
  const parsed = RoleState.safeParse(raw);
  if (!parsed.success) {
    const fields = parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ");
    return { ok: false, role: "unknown", problem: "corrupt", detail: `${path} is not a role state (${fields})` };
  }
  return { ok: true, state: parsed.data };
}

/**
 * Atomic replace: readers see the old file or the new one, never a mix. The temp file lives in the
 * same directory (rename is atomic only within a filesystem); fsync before rename so the new name
 * never points at unwritten data, fsync the directory so the rename itself survives power loss.
 */
export async function writeState(dir: string, state: RoleState): Promise<void> {
  await writeAtomic(dir, STATE_FILE, `${JSON.stringify(RoleState.parse(state), null, 2)}\n`);
}

/** A file of the state directory (role, seq), made if missing, replaced atomically. */
async function writeAtomic(dir: string, name: string, text: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o750 });
  await writeFileAtomic(join(dir, name), text, 0o640);
}

/** Atomic replace of any file (see writeState), created with `mode` less the umask, or exactly `mode`. */
export async function writeFileAtomic(
  path: string,
  text: string,
  mode: number,
  opts: { exactMode?: boolean } = {},
): Promise<void> {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  const fh = await open(tmp, "wx", mode);
  try {
    await fh.writeFile(text);
    if (opts.exactMode) await fh.chmod(mode);
    await fh.sync();
  } catch (e) {
    await fh.close();
    await unlink(tmp).catch(() => {});
    throw e;
  }
  await fh.close();
  try {
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => {});
    throw e;
  }
  const d = await open(dirname(path), "r");
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

/** writeAtomic's temp names for the state files: `<file>.<pid>.<hex>.tmp`. */
const LEFTOVER_TEMP = new RegExp(
  `^(?:${[STATE_FILE, SEQ_FILE].map((f) => f.replaceAll(".", "\\.")).join("|")})\\.(\\d+)\\.[0-9a-f]+\\.tmp$`,
);

/** Removes temp files left by writers that died mid-write (their pid, in the name, is gone). */
export async function removeLeftoverTemps(dir: string): Promise<string[]> {
  const removed: string[] = [];
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const pid = Number(LEFTOVER_TEMP.exec(name)?.[1]);
    if (!pid || pidAlive(pid)) continue;
    await unlink(join(dir, name)).catch(() => {});
    removed.push(name);
  }
  return removed;
}

/**
 * The verdict client's replay floor, in a file of its own: it is written on every new verdict,
 * outside the action lock, and so must never rewrite role.json (it could bring back a role or a
 * reconcilePending that a command changed meanwhile).
 */
export const SeqState = z.object({
  v: z.literal(1),
  lastSeq: z.number().int().nonnegative(),
  /** The cluster incarnation `lastSeq` belongs to (worker's createdAt); null before the worker sent one. */
  incarnation: z.number().int().nullable().default(null),
});
export type SeqState = z.input<typeof SeqState>;

/** Null when missing or unreadable: the floor then falls back to role.json's older `lastSeq`. */
export async function readSeq(dir: string): Promise<z.infer<typeof SeqState> | null> {
  try {
    const parsed = SeqState.safeParse(JSON.parse(await readFile(join(dir, SEQ_FILE), "utf8")));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

export async function writeSeq(dir: string, seq: SeqState): Promise<void> {
  await writeAtomic(dir, SEQ_FILE, `${JSON.stringify(SeqState.parse(seq))}\n`);
}

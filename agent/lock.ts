import { randomBytes } from "node:crypto";
import { link, mkdir, readFile, rename, unlink, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { z } from "zod";
import { bootId, pidAlive, processStartTicks } from "./proc.js";

/**
 * An exclusive lock file, so two agents, or `run` and a manual command, never act at once
 * (the original cron script had none and overlapping runs raced). The file names its holder;
 * a holder that is dead — pid gone, pid reused by another process, or recorded before a
 * reboot — is taken over.
 */

export const LockHolder = z.object({
  pid: z.number().int().positive(),
  /** /proc start time of the holder, to tell it from a later process that reused its pid. */
  startTicks: z.string().nullable(),
  bootId: z.string().nullable(),
  /** What the holder is doing, e.g. "run" or "failover": shown to whoever waits. */
  purpose: z.string(),
  /** Agent clock, epoch ms: shown only. */
  since: z.number().int(),
});
export type LockHolder = z.infer<typeof LockHolder>;

export class LockBusyError extends Error {
  override name = "LockBusyError";
  constructor(
    message: string,
    readonly holder: LockHolder | null,
  ) {
    super(message);
  }
}

export interface Lock {
  path: string;
  holder: LockHolder;
  /** False if the file no longer names us (it was removed or, after a lost race, replaced). */
  stillHeld(): Promise<boolean>;
  release(): Promise<void>;
}

export interface AcquireOptions {
  purpose: string;
  /** How long to wait for a live holder; 0 fails at once. */
  waitMs: number;
  pollMs?: number;
}

export function holderAlive(h: LockHolder): boolean {
  const boot = bootId();
  if (h.bootId && boot && h.bootId !== boot) return false;
  if (!pidAlive(h.pid)) return false;
  const ticks = processStartTicks(h.pid);
  if (h.startTicks && ticks && h.startTicks !== ticks) return false;
  return true;
}

function parseHolder(text: string): LockHolder | null {
  try {
    const r = LockHolder.safeParse(JSON.parse(text));
    return r.success ? r.data : null;
  } catch {
    return null;
  }
}

async function readText(path: string): Promise<string | null> {
  try {
    return await readFile(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw e;
  }
}

const uniqueSuffix = () => `${process.pid}.${randomBytes(4).toString("hex")}`;

/** Creates the lock file only if absent; its content appears whole (link of a written file). */
async function tryCreate(path: string, text: string): Promise<boolean> {
  const tmp = `${path}.${uniqueSuffix()}.new`;
  await writeFile(tmp, text, { mode: 0o644 });
  try {
    await link(tmp, path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw e;
  } finally {
    await unlink(tmp).catch(() => {});
  }
}

/**
 * Removes a dead holder's file. Moving it aside first (atomic) and re-reading it tells us whether
 * we moved the dead holder's file or one a faster contender created meanwhile; the latter is put back.
 * Only a third contender creating the file in the instant before that put-back can still end up
 * beside a holder; `stillHeld()` before acting lets the loser notice.
 */
async function takeOver(path: string, staleText: string): Promise<void> {
  const aside = `${path}.${uniqueSuffix()}.stale`;
  try {
    await rename(path, aside);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return;
    throw e;
  }
  const moved = await readText(aside);
  if (moved !== staleText) await link(aside, path).catch(() => {});
  await unlink(aside).catch(() => {});
}

export async function acquireLock(path: string, opts: AcquireOptions): Promise<Lock> {
  const me: LockHolder = {
    pid: process.pid,
    startTicks: processStartTicks(process.pid),
    bootId: bootId(),
    purpose: opts.purpose,
    since: Date.now(),
  };
  const text = JSON.stringify(me) + "\n";
  await mkdir(dirname(path), { recursive: true, mode: 0o750 }); // first run: no state dir yet
  const deadline = performance.now() + opts.waitMs;
  for (;;) {
    if (await tryCreate(path, text)) return held(path, me, text);
    const current = await readText(path);
    if (current === null) continue; // released between our attempt and the read
    const holder = parseHolder(current);
    if (!holder || !holderAlive(holder)) {
      // Unreadable content can only come from outside the agent: treat it as abandoned too.
      await takeOver(path, current);
      continue;
    }
    if (performance.now() >= deadline) {
      throw new LockBusyError(
        `lock ${path} is held by pid ${holder.pid} (${holder.purpose}, since ${new Date(holder.since).toISOString()}); ` +
          `gave up after waiting ${opts.waitMs} ms`,
        holder,
      );
    }
    await sleep(opts.pollMs ?? 100);
  }
}

function held(path: string, holder: LockHolder, text: string): Lock {
  const stillHeld = async () => (await readText(path)) === text;
  return {
    path,
    holder,
    stillHeld,
    async release() {
      if (await stillHeld()) await unlink(path).catch(() => {});
    },
  };
}

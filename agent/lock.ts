import { createHash, randomBytes } from "node:crypto";
import { link, mkdir, readFile, unlink, writeFile } from "node:fs/promises";
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
  /** Makes every record unique, so a dead holder's content, once removed, never comes back. */
  nonce: z.string().optional(),
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
  /**
   * False if the file no longer names us (removed or replaced by hand). Checked by the callers
   * right before they act, as a last defence: the takeover itself never lets two hold it.
   */
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
 * Removes a dead holder's file, once. Taking over goes through a mark file named for the dead
 * content, created exclusively: of all the contenders that saw that content, only the one whose
 * mark exists removes the lock file, and only while it still holds that content. Nobody else
 * changes a file naming a dead holder, so between that check and the unlink it cannot change,
 * and as every record is unique (its nonce) a removed content never comes back: a contender
 * that arrives late finds other content and leaves it. Then all race for the free file through
 * the exclusive create: exactly one wins. A contender that died holding a mark is itself a dead
 * holder, taken over the same way.
 */
async function takeOver(path: string, staleText: string, me: string, depth = 0): Promise<void> {
  const mark = `${path}.takeover-${createHash("sha256").update(staleText).digest("hex").slice(0, 16)}`;
  if (await tryCreate(mark, me)) {
    try {
      if ((await readText(path)) === staleText) await unlink(path).catch(() => {});
    } finally {
      await unlink(mark).catch(() => {});
    }
    return;
  }
  const markText = await readText(mark);
  if (markText === null || depth >= 3) return;
  const taker = parseHolder(markText);
  if (!taker || !holderAlive(taker)) await takeOver(mark, markText, me, depth + 1);
}

export async function acquireLock(path: string, opts: AcquireOptions): Promise<Lock> {
  const me: LockHolder = {
    pid: process.pid,
    startTicks: processStartTicks(process.pid),
    bootId: bootId(),
    purpose: opts.purpose,
    since: Date.now(),
    nonce: randomBytes(8).toString("hex"),
  };
  const text = `${JSON.stringify(me)}\n`;
  await mkdir(dirname(path), { recursive: true, mode: 0o750 }); // first run: no state dir yet
  const deadline = performance.now() + opts.waitMs;
  for (;;) {
    if (await tryCreate(path, text)) return held(path, me, text);
    const current = await readText(path);
    if (current === null) continue; // released between our attempt and the read
    const holder = parseHolder(current);
    if (!holder || !holderAlive(holder)) {
      // Unreadable content can only come from outside the agent: treat it as abandoned too.
      await takeOver(path, current, text);
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

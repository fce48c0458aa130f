import { readFileSync } from "node:fs";

/**
 * Whether a process with this pid runs (EPERM: it exists but belongs to someone else). A zombie
 * counts as dead: where PID 1 does not reap (containers), a killed orphan stays one.
 */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  const state = procStat(pid)?.[0];
  return state !== "Z" && state !== "X";
}

/** Fields of /proc/<pid>/stat from field 3 (state) on, or null off Linux / when gone. */
function procStat(pid: number): string[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // comm (field 2) may contain spaces and parentheses: split after the last ')'.
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  } catch {
    return null;
  }
}

/**
 * The process's start time in clock ticks since boot (/proc/<pid>/stat field 22), or null off
 * Linux or when the process is gone. With the boot id it tells a live holder from a reused pid.
 */
export function processStartTicks(pid: number): string | null {
  return procStat(pid)?.[19] ?? null;
}

let cachedBootId: string | null | undefined;

/** Changes at every reboot, so a pid recorded before one is known dead. Null off Linux. */
export function bootId(): string | null {
  if (cachedBootId === undefined) {
    try {
      cachedBootId = readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
    } catch {
      cachedBootId = null;
    }
  }
  return cachedBootId;
}

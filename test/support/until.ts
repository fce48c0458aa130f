/**
 * Polls `fn` every `everyMs` until it yields something truthy, and returns that. Gives up after
 * `timeoutMs` with an error naming `what` (and `detail()`, e.g. a process's recent output): the
 * bound only keeps a broken run from hanging, it is never the thing measured.
 */
export async function until<T>(
  what: string,
  fn: () => T | null | undefined | false | Promise<T | null | undefined | false>,
  opts: { timeoutMs?: number; everyMs?: number; detail?: () => string } = {},
): Promise<T> {
  const { timeoutMs = 60_000, everyMs = 50, detail } = opts;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${detail ? `; ${detail()}` : ""}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

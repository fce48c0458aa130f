/** What every benchmark here prints: nearest-rank percentiles over a sample. */
export function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

export const median = (xs: number[]) => pct(xs, 50);

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

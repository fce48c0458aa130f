import { type LanMonitor, type LanView, nextLanDelayMs } from "./monitor.js";
import type { LanConfig } from "./config.js";

/**
 * The LAN monitor's rounds on their own self-rescheduling beat: each round, once done, sets the
 * timer for the next (nextLanDelayMs: sooner while a change is being confirmed). `now()` runs a
 * round at once, unless one is in flight (that one is the answer), and restarts the beat after it.
 */
export class LanLoop {
  private busy = false;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly lan: LanMonitor,
    private readonly cfg: Pick<LanConfig, "intervalMs" | "confirmIntervalMs">,
    /** Called after every round with the state before it and the view after it. */
    private readonly onRound: (before: LanView["state"], view: LanView) => void,
  ) {}

  start(): void {
    void this.now();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  async now(): Promise<void> {
    if (this.busy || this.stopped) return;
    this.busy = true;
    clearTimeout(this.timer);
    try {
      const before = this.lan.view.state;
      this.onRound(before, await this.lan.round());
    } finally {
      this.busy = false;
      if (!this.stopped) this.timer = setTimeout(() => void this.now(), nextLanDelayMs(this.cfg, this.lan.view));
    }
  }
}

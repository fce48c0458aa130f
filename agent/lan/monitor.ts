import { applyRound, initialTracker, type Tracker } from "../../protocol/hysteresis.js";
import { classifyRound } from "../../protocol/round.js";
import type { MasterState, RoundClass } from "../../protocol/verdict.js";
import type { LanConfig } from "./config.js";
import { runLanProbe, type LanProbeResult } from "./probe.js";

/** How the slave sees the master from the LAN, after hysteresis. */
export interface LanView {
  /** `unknown` until `fall` bad or `rise` good rounds have run. */
  state: MasterState;
  /** Why the state is what it is (set when the state last changed). */
  reason: string;
  /** Epoch ms of the last completed round (of the monitor's creation before any round). */
  at: number;
  /** Epoch ms when `state` was entered. */
  since: number;
  /** The last round's probe results, in config order. */
  probes: LanProbeResult[];
  /** Rounds completed so far. */
  rounds: number;
  /** The last round alone, before hysteresis; null before the first. */
  lastRound: { class: RoundClass; reason: string } | null;
}

/**
 * When the next LAN round is due: after a round that disagrees with the view (or while the view
 * has no opinion yet), a confirmation round comes `confirmIntervalMs` later, so `fall` / `rise`
 * rounds accumulate fast; once a round agrees with the view, the normal `intervalMs` beat.
 * `fall` and `rise` keep their meaning: only the spacing changes.
 */
export function nextLanDelayMs(cfg: Pick<LanConfig, "intervalMs" | "confirmIntervalMs">, view: LanView): number {
  if (!view.lastRound) return cfg.confirmIntervalMs;
  return view.lastRound.class === view.state ? cfg.intervalMs : cfg.confirmIntervalMs;
}

/**
 * The agent's second signal: rounds of LAN probes (all at once), classified like the edge's
 * (protocol/round.ts) and smoothed by the same hysteresis (fall/rise, no grace: `unknown` lasts
 * exactly until enough rounds agree). A round in progress is shared, never doubled.
 */
export class LanMonitor {
  private tracker: Tracker;
  private current: LanView;
  private inflight: Promise<LanView> | null = null;

  constructor(
    private readonly cfg: LanConfig,
    private readonly masterHost: string,
    now = Date.now(),
  ) {
    this.tracker = initialTracker(now, "no LAN round yet");
    this.current = {
      state: "unknown",
      reason: this.tracker.reason,
      at: now,
      since: now,
      probes: [],
      rounds: 0,
      lastRound: null,
    };
  }

  get view(): LanView {
    return this.current;
  }

  /** Runs one round; `now` (epoch ms) stamps it, by default the clock when the probes are done. */
  round(now?: number): Promise<LanView> {
    this.inflight ??= this.runRound(now).finally(() => (this.inflight = null));
    return this.inflight;
  }

  private async runRound(now: number | undefined): Promise<LanView> {
    const probes = await Promise.all(
      this.cfg.probes.map((p) =>
        // runLanProbe never rejects; this is a belt for the braces.
        runLanProbe(p, this.masterHost).catch(
          (err: unknown): LanProbeResult => ({
            name: p.name,
            kind: p.kind,
            critical: p.critical,
            ok: false,
            detail: String(err),
            rttMs: null,
          }),
        ),
      ),
    );
    const at = now ?? Date.now();
    const round = classifyRound(probes);
    this.tracker = applyRound(
      this.tracker,
      { ...round, at },
      { fall: this.cfg.fall, rise: this.cfg.rise, graceUntil: 0 },
    ).tracker;
    this.current = {
      state: this.tracker.state,
      reason: this.tracker.reason,
      at,
      since: this.tracker.since,
      probes,
      rounds: this.current.rounds + 1,
      lastRound: round,
    };
    return this.current;
  }
}

import type { Command, ServicesConfig } from "../../agent/config.js";
import { Keeper, type Clock, type KeeperConfig, type VerdictView } from "../../agent/keeper.js";
import type { Logger } from "../../agent/log.js";
import type { MasterState, Verdict } from "../../protocol/verdict.js";
import { fixture } from "./helpers.js";

/**
 * A keeper pass with real service processes (fake-service.mjs stands in for asterisk) in `dir`
 * and a real state file there; the two signals are plain inputs, set by hand.
 */
const FAKE = fixture("fake-service.mjs");

export const fakeService = (dir: string, verb: string): Command => ({
  argv: [process.execPath, FAKE, verb, dir],
  timeoutMs: 15_000,
});

export const fakeServices = (dir: string): ServicesConfig => ({
  start: [fakeService(dir, "start")],
  stop: [fakeService(dir, "stop")],
  status: [fakeService(dir, "status")],
  retry: { retries: 0, backoffMs: 10, maxBackoffMs: 10 },
});

/** A hand-driven clock: the keeper's durations come from `mono`, never from the wall. */
export function manualClock(): Clock & { advance(ms: number): void } {
  let mono = 1_000;
  return { mono: () => mono, now: () => 1_700_000_000_000 + mono, advance: (ms) => (mono += ms) };
}

export function signals(clock: Clock) {
  let verdict: { verdict: Verdict; receivedAtMono: number } | null = null;
  let fresh: "fresh" | "stale" | "none" = "none";
  let lan: MasterState = "unknown";
  const view: VerdictView = { freshness: () => fresh, latest: () => verdict };
  return {
    view,
    lan: () => ({ state: lan }),
    /**
     * A fresh verdict whose state began `upForMs` ago on the worker's clock; `maintenance`: a
     * window relative to its issuedAt (`from`/`to` offsets in ms).
     */
    edge(state: MasterState, upForMs = 0, maintenance: { from: number; to: number; reason: string } | null = null) {
      const issuedAt = 5_000_000;
      const m = maintenance && {
        active: maintenance.from <= 0 && 0 < maintenance.to,
        from: issuedAt + maintenance.from,
        to: issuedAt + maintenance.to,
        reason: maintenance.reason,
      };
      verdict = {
        verdict: {
          v: 1,
          clusterId: "c",
          state,
          since: issuedAt - upForMs,
          reason: `edge says ${state}`,
          seq: 1,
          issuedAt,
          ageMs: 100,
          lastRound: null,
          nonce: null,
          maintenance: m,
        },
        receivedAtMono: clock.mono(),
      };
      fresh = "fresh";
    },
    stale() {
      fresh = "stale";
    },
    setLan(s: MasterState) {
      lan = s;
    },
  };
}

export function keeperIn(dir: string, extra: Partial<KeeperConfig> = {}, log?: Logger) {
  const clock = manualClock();
  const s = signals(clock);
  const cfg: KeeperConfig = {
    mode: "auto",
    requireLanConfirmation: true,
    failbackHoldDownMs: 60_000,
    noVerdictAlertMs: 60_000,
    stateDir: dir,
    lockWaitMs: 2_000,
    services: fakeServices(dir),
    enforceEveryMs: 0,
    ...extra,
  };
  return { k: new Keeper({ config: cfg, verdicts: s.view, lan: s.lan, clock, log }), s, clock };
}

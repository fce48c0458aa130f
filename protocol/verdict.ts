import { z } from "zod";
import { EpochMs } from "./time.js";

/** How the edge sees the master. `unknown` until enough rounds have run (startup grace). */
export const MasterState = z.enum(["up", "degraded", "down", "unknown"]);
export type MasterState = z.infer<typeof MasterState>;

/** What one round found, before hysteresis. */
export const RoundClass = z.enum(["up", "degraded", "down"]);
export type RoundClass = z.infer<typeof RoundClass>;

export const ProbeKind = z.enum(["http", "tcp", "sip"]);
export type ProbeKind = z.infer<typeof ProbeKind>;

/**
 * Bounds that keep every verdict far inside the agent's envelope limit (a 256 KiB payload,
 * protocol/signing.ts) whatever the probes return: at most MAX_PROBES results (a cluster has no
 * more, worker/config.ts), details clipped by the prober, names of 40 characters. The reason
 * lists the failing probes ("name: detail; " each), so it is at most 16 × 344 plus a sentence,
 * under MAX_REASON_CHARS. Even with every character escaped to six by JSON, that is < 100 K.
 */
export const MAX_PROBES = 16;
export const MAX_DETAIL_CHARS = 300;
export const MAX_REASON_CHARS = 8_000;
/** A cluster probes from at most this many vantage points (worker/config.ts). */
export const MAX_VANTAGES = 5;
/** Attempts a probe may make inside one round (its first plus retries, worker/probe/index.ts). */
export const MAX_PROBE_ATTEMPTS = 4;

export const ProbeResult = z.object({
  name: z.string(),
  kind: ProbeKind,
  critical: z.boolean(),
  ok: z.boolean(),
  /** Why it failed (or what it saw when it succeeded, e.g. "SIP/2.0 200 OK"). */
  detail: z.string().max(MAX_DETAIL_CHARS),
  /** Round-trip time in ms as measured by the prober; null when nothing answered. */
  rttMs: z.number().nonnegative().nullable(),
  /**
   * Attempts made in the round: the one that succeeded, or all those that failed. Absent from
   * probers that predate retries (and the agent's LAN probes), so their results still parse.
   */
  attempts: z.number().int().min(1).max(MAX_PROBE_ATTEMPTS).optional(),
});
export type ProbeResult = z.infer<typeof ProbeResult>;

export const RoundSummary = z.object({
  /** Worker clock, epoch ms, when the round completed. */
  at: EpochMs,
  durationMs: z.number().nonnegative(),
  class: RoundClass,
  probes: z.array(ProbeResult).max(MAX_PROBES),
  /** True when the round came early to confirm a previous one that disagreed with the verdict. */
  confirmation: z.boolean().optional(),
});
export type RoundSummary = z.infer<typeof RoundSummary>;

export const MaintenanceWindow = z.object({
  /** True while the window is in force: the master may go down on purpose. */
  active: z.boolean(),
  from: EpochMs,
  to: EpochMs,
  reason: z.string(),
});
export type MaintenanceWindow = z.infer<typeof MaintenanceWindow>;

/** What one vantage said in a round: its class, or `silent` when it did not answer in time. */
export const VantageVote = z.object({
  name: z.string().max(20),
  vote: z.enum(["up", "degraded", "down", "silent"]),
});
export type VantageVote = z.infer<typeof VantageVote>;

/** The count behind the last round when the master is probed from several vantages. */
export const QuorumRound = z.object({
  /** Worker clock, epoch ms, when the votes were counted. */
  at: EpochMs,
  /** How many vantages must agree that the master is bad. */
  quorum: z.number().int().min(1).max(MAX_VANTAGES),
  /** `none`: fewer vantages answered than the quorum, so the round had no opinion. */
  outcome: z.enum(["up", "degraded", "down", "none"]),
  votes: z.array(VantageVote).min(1).max(MAX_VANTAGES),
});
export type QuorumRound = z.infer<typeof QuorumRound>;

export const Verdict = z.object({
  v: z.literal(1),
  clusterId: z.string(),
  state: MasterState,
  /** Worker clock, epoch ms, when `state` was entered. */
  since: EpochMs,
  reason: z.string().max(MAX_REASON_CHARS),
  /** Increases by one with every completed round; never goes back. */
  seq: z.number().int().nonnegative(),
  /** Worker clock, epoch ms, when this verdict was signed. */
  issuedAt: EpochMs,
  /**
   * issuedAt − lastRound.at, measured on the worker's own clock, so that freshness never
   * depends on the agent's clock. Null before the first round.
   */
  ageMs: z.number().int().nonnegative().nullable(),
  lastRound: RoundSummary.nullable(),
  /** The caller's nonce, echoed so that a poll answer cannot be replayed. Null for pushes. */
  nonce: z.string().nullable(),
  /**
   * The planned maintenance window in force at `issuedAt` (`active`), else the next scheduled
   * one, else null. Epoch ms on the worker's clock. Defaults to null so that verdicts from a
   * worker that predates it still parse.
   */
  maintenance: MaintenanceWindow.nullable().default(null),
  /**
   * Worker clock, epoch ms, when the cluster was created: a cluster deleted and created again
   * restarts `seq` at 0 under a later incarnation. Signed with the rest, so the agent can tell
   * a new cluster from a replay. Absent from workers that predate it: the agent then keeps
   * judging pushes on `seq` alone.
   */
  incarnation: z.number().int().optional(),
  /**
   * Which vantages voted what in the last round, when the cluster probes from several. Absent
   * with one vantage (as from workers that predate it); agents that predate it ignore it.
   */
  quorum: QuorumRound.optional(),
});
export type Verdict = z.infer<typeof Verdict>;

/** A nonce the agent sends with a poll: unguessable, URL-safe, bounded. */
export const Nonce = z.string().regex(/^[A-Za-z0-9_-]{8,128}$/, "8 to 128 characters of A-Z a-z 0-9 _ -");

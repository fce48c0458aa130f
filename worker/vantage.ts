import { DurableObject } from "cloudflare:workers";
import { z } from "zod";
import { Host } from "../protocol/probe-fields.js";
import type { RoundSummary } from "../protocol/verdict.js";
import type { Env } from "./env.js";
import { runRound, type RoundTarget } from "./round.js";

/**
 * One vantage point of one cluster: a Durable Object created with the vantage's location hint,
 * id `${clusterId}/${vantageName}`, that runs a probe round when the cluster's alarm asks and
 * answers with what it saw and where it runs. It stores nothing: the cluster's object counts the
 * votes and keeps the results (worker/cluster/quorum.ts).
 */

export interface VantageRequest {
  vantage: string;
  target: RoundTarget;
  /** The cluster stops waiting after this long; a test fault `hang` answers just after it. */
  deadlineMs: number;
}

export interface VantageAnswer {
  round: RoundSummary;
  reason: string;
  /** Where the object really runs: a Cloudflare colo ("CDG"), or why that is unknown. */
  location: string;
}

/** The colo is looked up once an hour (an object does not move often), a failure retried sooner. */
const LOCATION_TTL_MS = 3_600_000;
const LOCATION_RETRY_MS = 300_000;
const TRACE_TIMEOUT_MS = 2_000;
export const NOT_ON_CLOUDFLARE = "unknown (not on Cloudflare)";

const HostOverrides = z.record(z.string(), Host);
const TestFaults = z.record(z.string(), z.enum(["hang", "throw"]));

/** A test-only JSON binding; anything unreadable is logged and ignored. */
function testBinding<T>(schema: z.ZodType<T>, raw: string | undefined, name: string): T | null {
  if (!raw) return null;
  try {
    const parsed = schema.safeParse(JSON.parse(raw));
    if (parsed.success) return parsed.data;
  } catch {
    // not JSON: logged below
  }
  console.error(`${name} is not valid: ignored`);
  return null;
}

/** The round as this vantage sees it: every host it probes replaced by the override, if any. */
export function viewFrom(target: RoundTarget, host: string | undefined): RoundTarget {
  if (!host) return target;
  return { master: { host }, probes: target.probes.map((p) => (p.host ? { ...p, host } : p)) };
}

/** `colo=XYZ` from a /cdn-cgi/trace body. */
export function coloOf(trace: string): string | null {
  return /^colo=([A-Za-z0-9]{2,10})$/m.exec(trace)?.[1] ?? null;
}

export class Vantage extends DurableObject<Env> {
  private location: { text: string; until: number } | null = null;
  /** The test bindings, read once: an object's env does not change, and a round runs every few seconds. */
  private readonly faults = testBinding(TestFaults, this.env.VANTAGE_TEST_FAULTS, "VANTAGE_TEST_FAULTS");
  private readonly hosts = testBinding(HostOverrides, this.env.VANTAGE_HOST_OVERRIDES, "VANTAGE_HOST_OVERRIDES");

  async round(request: VantageRequest): Promise<VantageAnswer> {
    const fault = this.faults?.[request.vantage];
    if (fault === "throw") throw new Error(`vantage ${request.vantage}: test fault`);
    if (fault === "hang") await new Promise((resolve) => setTimeout(resolve, request.deadlineMs + 1_000));
    const { reason, ...round } = await runRound(viewFrom(request.target, this.hosts?.[request.vantage]));
    // After the round, so the trace fetch never takes a connection a probe needs.
    return { round, reason, location: await this.where() };
  }

  private async where(): Promise<string> {
    const now = Date.now();
    if (this.location && this.location.until > now) return this.location.text;
    const url = this.env.TRACE_URL;
    let text = NOT_ON_CLOUDFLARE;
    let ttl = LOCATION_TTL_MS;
    if (url) {
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(TRACE_TIMEOUT_MS) });
        const colo = res.ok ? coloOf(await res.text()) : null;
        text = colo ?? `unknown (trace answered HTTP ${res.status} without a colo)`;
      } catch (err) {
        text = `unknown (trace failed: ${(err as Error).message.slice(0, 100)})`;
      }
      if (text.startsWith("unknown")) ttl = LOCATION_RETRY_MS;
    }
    this.location = { text, until: now + ttl };
    return text;
  }
}

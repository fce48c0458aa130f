import type { ClusterMonitor } from "./cluster.js";
import type { Registry } from "./registry.js";
import type { Vantage } from "./vantage.js";

export interface Env {
  CLUSTER: DurableObjectNamespace<ClusterMonitor>;
  REGISTRY: DurableObjectNamespace<Registry>;
  /** The vantage points of clusters that probe from several places (worker/vantage.ts). */
  VANTAGE: DurableObjectNamespace<Vantage>;
  /**
   * A `/cdn-cgi/trace` URL a vantage fetches to learn the Cloudflare location (colo) it runs in,
   * e.g. https://www.cloudflare.com/cdn-cgi/trace. Unset (locally): "unknown (not on Cloudflare)".
   */
  TRACE_URL?: string;
  /**
   * Tests only, never in wrangler.toml: JSON {"<vantage name>": "<host>"} giving a vantage its own
   * view of the master (every host it probes replaced), since locally all vantages run in one place.
   */
  VANTAGE_HOST_OVERRIDES?: string;
  /** Tests only, never in wrangler.toml: JSON {"<vantage name>": "hang" | "throw"} to make a vantage silent. */
  VANTAGE_TEST_FAULTS?: string;
  /** Bearer token for the admin API (wrangler secret). Unset or under 32 characters: the admin API answers 503. */
  ADMIN_TOKEN?: string;
  /** Ed25519 private key as JWK JSON (wrangler secret). Unset: verdicts answer 503. */
  SIGNING_KEY?: string;
  /** Set only by `npm run bench:cost`: counts what the cluster objects are billed for. */
  COST_METER?: string;
  /** Subrequests one cron invocation may make (the plan's limit); unset: 50, the Workers Free limit. */
  CRON_SUBREQUESTS?: string;
  /** "enabled" only in the scale bench's wrangler config: a test-only route drops a loop's alarm. */
  TEST_ALARM_DROP?: string;
}

/** What a Durable Object method answers instead of throwing: the route maps it to HTTP. */
export type Outcome<T> =
  | { ok: true; value: T }
  | {
      ok: false;
      status: 400 | 401 | 404 | 409 | 429 | 503;
      code: string;
      message: string;
      field?: string;
      retryAfterSec?: number;
    };

export const fail = (
  status: 400 | 401 | 404 | 409 | 429 | 503,
  code: string,
  message: string,
  extra: { field?: string; retryAfterSec?: number } = {},
) => ({ ok: false, status, code, message, ...extra }) as const;
export const done = <T>(value: T) => ({ ok: true, value }) as const;

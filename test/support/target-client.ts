// Client for the loopback target control server (test/support/targets.ts). Fetch only, no node:
// imports: the same module runs in Node tests and inside workerd.

export const KINDS = ["http", "tcp", "sip-tcp", "sip-tls", "sip-udp"] as const;
/**
 * Hostile SIP answers too: `long-reason` (a final response whose reason phrase fills most of the
 * header block, in characters JSON escapes), `huge-body` (Content-Length of a gigabyte, then
 * bytes streamed without end) and `endless-headers` (a status line, then header lines without
 * end); the last two on stream transports only.
 */
export const MODES = [
  "ok",
  "error",
  "garbage",
  "silent",
  "closed",
  "long-reason",
  "huge-body",
  "endless-headers",
] as const;

export type Kind = (typeof KINDS)[number];
export type Mode = (typeof MODES)[number];

/** A SIP request as the target received it. Header names are kept as sent (compact forms too). */
export interface SipRequestRecord {
  method: string;
  requestUri: string;
  headers: [string, string][];
  raw: string;
}

export interface TargetInfo {
  name: string;
  kind: Kind;
  port: number;
  mode: Mode;
  script: Mode[];
  status: number | null;
  /** Connections accepted so far (datagrams received, for sip-udp), including reset ones. */
  connections: number;
  /** SIP requests received, oldest first, at most 50. */
  requests: SipRequestRecord[];
}

export interface SetOptions {
  /** Modes consumed one per incoming connection (per datagram for UDP) before `mode` applies. */
  script?: Mode[];
  /** Status for the "ok" mode (HTTP or SIP); omitted means the default 200. */
  status?: number;
}

export interface Target {
  readonly name: string;
  readonly port: number;
  readonly kind: Kind;
  /** Replaces mode, script and status (omitted fields go back to their defaults). */
  set(mode: Mode, opts?: SetOptions): Promise<void>;
  info(): Promise<TargetInfo>;
  remove(): Promise<void>;
}

export async function createTarget(
  controlPort: number,
  kind: Kind,
  opts: { mode?: Mode; status?: number } = {},
): Promise<Target> {
  const created = (await call(controlPort, "POST", "/targets", { kind, ...opts })) as { name: string; port: number };
  const path = `/targets/${encodeURIComponent(created.name)}`;
  return {
    name: created.name,
    port: created.port,
    kind,
    async set(mode, setOpts = {}) {
      await call(controlPort, "PUT", path, { mode, ...setOpts });
    },
    async info() {
      return (await call(controlPort, "GET", path)) as TargetInfo;
    },
    async remove() {
      await call(controlPort, "DELETE", path);
    },
  };
}

async function call(controlPort: number, method: string, path: string, body?: unknown): Promise<unknown> {
  const init: RequestInit = { method };
  if (body !== undefined) {
    init.headers = { "content-type": "application/json" };
    init.body = JSON.stringify(body);
  }
  const res = await fetch(`http://127.0.0.1:${controlPort}${path}`, init);
  // Always read the body: workerd warns about (and may stall on) unconsumed responses.
  const text = await res.text();
  if (!res.ok) throw new Error(`${errorMessage(text)} (target control ${method} ${path}: HTTP ${res.status})`);
  return text === "" ? undefined : JSON.parse(text);
}

function errorMessage(text: string): string {
  try {
    const parsed = JSON.parse(text) as { error?: unknown };
    if (typeof parsed.error === "string") return parsed.error;
  } catch {
    // not JSON: fall through to the raw text
  }
  return text || "no message";
}

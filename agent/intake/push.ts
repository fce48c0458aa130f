import type { IncomingMessage } from "node:http";
import WebSocket from "ws";
import { backoffDelay, refusedDelay, type BackoffPolicy } from "./backoff.js";
import { clusterUrl, describe, errorBody, isConfigRefusal } from "./poll.js";

/**
 * The push socket: one outbound WebSocket to the worker (the LAN never needs an inbound port),
 * reopened with capped, jittered exponential backoff whenever it closes. It knows nothing of
 * verdicts: it hands every text frame to `onMessage` with its monotonic receipt time, and the
 * source tells it (`alive()`) when a frame proved the channel useful. A socket that stays silent
 * for `silenceMs` is presumed half-open and dropped.
 */

/** The largest frame accepted; a signed verdict is a few kilobytes. */
const MAX_FRAME_BYTES = 1024 * 1024;

export interface PushHooks {
  onOpen(): void;
  /** `text` is null for a binary frame (the worker only sends text). */
  onMessage(text: string | null, receivedAtMono: number): void;
  onClose(): void;
  /** The worker answered the upgrade with an HTTP error (401 bad token, 404 unknown cluster...). */
  onRefused(status: number): void;
}

export interface PushSocketOptions {
  url: string;
  clusterId: string;
  token: string;
  backoff: BackoffPolicy;
  /** Drop a connection that has not been `alive()` for this long (and bound the handshake). */
  silenceMs: number;
  mono: () => number;
  log: (event: string, fields: Record<string, unknown>) => void;
  hooks: PushHooks;
}

export function pushUrl(base: string, clusterId: string): string {
  return clusterUrl(base, clusterId, "push").replace(/^http/i, "ws");
}

export class PushSocket {
  private ws: WebSocket | null = null;
  private open = false;
  private stopped = false;
  private attempt = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  private silenceTimer: NodeJS.Timeout | null = null;
  private closed: Promise<void> = Promise.resolve();
  /** Connection attempts after the first. */
  reconnects = 0;
  private started = false;

  constructor(private readonly o: PushSocketOptions) {}

  get connected(): boolean {
    return this.open;
  }

  start(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    this.connect();
  }

  /** The channel delivered something useful: keep the socket, and start over with short retries. */
  alive(): void {
    this.attempt = 0;
    this.armSilence();
  }

  /** Drops the current connection (it will be reopened after the usual backoff). */
  drop(reason: string): void {
    if (!this.ws) return;
    this.o.log("push.drop", { reason });
    this.ws.terminate();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.clearTimers();
    this.ws?.terminate();
    await this.closed;
  }

  private connect(): void {
    if (this.stopped) return;
    const url = pushUrl(this.o.url, this.o.clusterId);
    const ws = new WebSocket(url, {
      headers: { authorization: `Bearer ${this.o.token}` },
      handshakeTimeout: Math.min(this.o.silenceMs, 10_000),
      maxPayload: MAX_FRAME_BYTES,
      perMessageDeflate: false,
      followRedirects: false,
    });
    this.ws = ws;
    let refusedStatus: number | null = null;
    let lastError: string | null = null;
    let resolveClosed!: () => void;
    this.closed = new Promise((r) => (resolveClosed = r));
    this.o.log("push.connecting", { url, attempt: this.attempt });

    ws.on("open", () => {
      this.open = true;
      this.o.log("push.open", { url });
      this.armSilence();
      this.o.hooks.onOpen();
    });
    ws.on("message", (data, isBinary) => {
      const at = this.o.mono();
      this.o.hooks.onMessage(isBinary ? null : rawText(data), at);
    });
    ws.on("unexpected-response", (_req, res: IncomingMessage) => {
      refusedStatus = res.statusCode ?? 0;
      readErrorBody(res).then((err) => {
        const configError = isConfigRefusal(refusedStatus);
        this.o.log("push.refused", {
          url,
          status: refusedStatus,
          code: err.code,
          message: err.message,
          ...(configError ? { hint: "check the agent's worker token, clusterId and url: retrying slowly" } : {}),
        });
        this.o.hooks.onRefused(refusedStatus ?? 0);
        ws.terminate();
      });
    });
    ws.on("error", (err) => {
      lastError = describe(err);
    });
    ws.on("close", (code, reason) => {
      const wasOpen = this.open;
      this.open = false;
      if (this.ws === ws) this.ws = null;
      this.clearSilence();
      resolveClosed();
      if (wasOpen) {
        this.o.log("push.closed", { code, reason: reason.toString("utf8").slice(0, 200) });
        this.o.hooks.onClose();
      } else if (refusedStatus === null) {
        this.o.log("push.connect-failed", { url, error: lastError ?? `closed with code ${code}` });
      }
      this.scheduleReconnect(refusedStatus);
    });
  }

  private scheduleReconnect(refusedStatus: number | null): void {
    if (this.stopped) return;
    const slow = isConfigRefusal(refusedStatus);
    const delayMs = slow ? refusedDelay(this.o.backoff) : backoffDelay(this.attempt, this.o.backoff);
    this.attempt++;
    this.o.log("push.retry", { inMs: delayMs, attempt: this.attempt });
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.reconnects++;
      this.connect();
    }, delayMs);
  }

  private armSilence(): void {
    this.clearSilence();
    if (!this.open || this.stopped) return;
    this.silenceTimer = setTimeout(() => {
      this.silenceTimer = null;
      this.drop(`nothing accepted on the push socket for ${this.o.silenceMs} ms`);
    }, this.o.silenceMs);
  }

  private clearSilence(): void {
    if (this.silenceTimer) clearTimeout(this.silenceTimer);
    this.silenceTimer = null;
  }

  private clearTimers(): void {
    this.clearSilence();
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }
}

function rawText(data: WebSocket.RawData): string {
  if (Buffer.isBuffer(data)) return data.toString("utf8");
  if (Array.isArray(data)) return Buffer.concat(data).toString("utf8");
  return Buffer.from(data).toString("utf8");
}

/** The worker's `{error:{code,message}}`, read from a refused upgrade (at most 8 KiB, 2 s). */
function readErrorBody(res: IncomingMessage): Promise<{ code: string | null; message: string | null }> {
  return new Promise((resolve) => {
    let text = "";
    const finish = () => {
      clearTimeout(timer);
      res.removeAllListeners("data");
      resolve(errorBody(text));
    };
    const timer = setTimeout(finish, 2000);
    res.setEncoding("utf8");
    res.on("data", (chunk: string) => {
      text += chunk;
      if (text.length > 8192) finish();
    });
    res.once("end", finish);
    res.once("error", finish);
    res.once("close", finish);
  });
}

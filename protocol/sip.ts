import { clip } from "./encoding.js";
/**
 * SIP OPTIONS, the ping of telephony (RFC 3261 §11): build a well-formed request and read the
 * responses that come back on a stream transport. Pure text in, text out: no sockets here.
 * The edge speaks TCP and TLS; the agent on the LAN also speaks UDP, what phones use.
 */

export type SipTransport = "udp" | "tcp" | "tls";

export interface OptionsRequest {
  host: string;
  port: number;
  transport: SipTransport;
  branch: string;
  tag: string;
  callId: string;
}

/** The prober has no address of its own to advertise; `.invalid` is reserved for exactly that. */
const SELF = "xivo-ha.invalid";

export function randomToken(bytes = 12): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(bytes)), (b) => b.toString(16).padStart(2, "0")).join("");
}

export function newOptionsRequest(host: string, port: number, transport: SipTransport): OptionsRequest {
  return {
    host,
    port,
    transport,
    branch: `z9hG4bK${randomToken()}`,
    tag: randomToken(6),
    callId: `${randomToken()}@${SELF}`,
  };
}

export function formatOptions(r: OptionsRequest): string {
  const hostPart = r.host.includes(":") && !r.host.startsWith("[") ? `[${r.host}]` : r.host;
  const proto = r.transport.toUpperCase();
  return [
    `OPTIONS sip:${hostPart}:${r.port};transport=${r.transport} SIP/2.0`,
    `Via: SIP/2.0/${proto} ${SELF};branch=${r.branch};rport`,
    "Max-Forwards: 70",
    `From: <sip:xivo-ha@${SELF}>;tag=${r.tag}`,
    `To: <sip:${hostPart}>`,
    `Call-ID: ${r.callId}`,
    "CSeq: 1 OPTIONS",
    `Contact: <sip:xivo-ha@${SELF};transport=${r.transport}>`,
    "Accept: application/sdp",
    "User-Agent: xivo-ha-edge",
    "Content-Length: 0",
    "",
    "",
  ].join("\r\n");
}

export interface SipResponse {
  status: number;
  reasonPhrase: string;
  headers: Map<string, string>;
}

const COMPACT: Record<string, string> = { i: "call-id", l: "content-length", v: "via", f: "from", t: "to" };
const MAX_HEADER_BYTES = 16 * 1024;
/** An OPTIONS answer carries at most a small SDP: anything longer is not worth waiting for. */
export const MAX_BODY_BYTES = 16 * 1024;
/** What of the reason phrase is kept: it ends up in a probe's detail, in reports and verdicts. */
const MAX_REASON_PHRASE = 100;

export class GarbageError extends Error {}

/**
 * Accumulates stream data and yields whole responses. Throws GarbageError on anything that is
 * not a SIP response, so the probe fails fast instead of waiting for its timeout.
 */
export class SipResponseReader {
  private buf = "";

  push(chunk: string): SipResponse[] {
    this.buf += chunk;
    const out: SipResponse[] = [];
    for (;;) {
      this.buf = this.buf.replace(/^(\r\n)+/, ""); // CRLF keep-alives (RFC 5626) between messages
      if (this.buf.length === 0) break;
      // A short buffer that could still become "SIP/2.0 " waits for more bytes.
      if (!"SIP/2.0 ".startsWith(this.buf.slice(0, 8))) {
        throw new GarbageError(`not a SIP response: ${JSON.stringify(this.buf.slice(0, 40))}`);
      }
      const end = this.buf.indexOf("\r\n\r\n");
      if (end < 0 ? this.buf.length > MAX_HEADER_BYTES : end > MAX_HEADER_BYTES) {
        throw new GarbageError(`SIP header block too large (over ${MAX_HEADER_BYTES} bytes)`);
      }
      if (end < 0) break;
      const [statusLine = "", ...lines] = this.buf.slice(0, end).split("\r\n");
      const m = /^SIP\/2\.0 ([1-6]\d\d)(?: (.*))?$/.exec(statusLine);
      if (!m) throw new GarbageError(`bad status line: ${JSON.stringify(statusLine.slice(0, 60))}`);
      const headers = new Map<string, string>();
      for (const line of lines) {
        const colon = line.indexOf(":");
        if (colon <= 0) throw new GarbageError(`bad header line: ${JSON.stringify(line.slice(0, 60))}`);
        const raw = line.slice(0, colon).trim().toLowerCase();
        const name = COMPACT[raw] ?? raw;
        if (!headers.has(name)) headers.set(name, line.slice(colon + 1).trim());
      }
      const length = Number(headers.get("content-length") ?? "0");
      if (!Number.isInteger(length) || length < 0) throw new GarbageError("bad Content-Length");
      // Buffering whatever Content-Length announces would let a peer fill the prober's memory.
      if (length > MAX_BODY_BYTES)
        throw new GarbageError(`SIP response body too large: Content-Length ${length} (at most ${MAX_BODY_BYTES})`);
      if (this.buf.length < end + 4 + length) break;
      this.buf = this.buf.slice(end + 4 + length);
      out.push({ status: Number(m[1]), reasonPhrase: clip(m[2] ?? "", MAX_REASON_PHRASE), headers });
    }
    return out;
  }
}

import dgram from "node:dgram";
import net from "node:net";
import {
  GarbageError,
  SipResponseReader,
  formatOptions,
  newOptionsRequest,
  type SipResponse,
} from "../../protocol/sip.js";
import type { LanSipProbe } from "./config.js";
import { ProbeFailure, type ProbeContext } from "./common.js";
import { withTcp } from "./tcp.js";

/**
 * SIP OPTIONS from the slave to the master's Asterisk, over UDP (what phones use) or TCP.
 * Any final response proves the SIP stack alive unless `acceptCodes` narrows it.
 */

/** RFC 3261 §17.1.2.2: a non-INVITE request is retransmitted after T1, doubling up to T2. */
export const T1_MS = 500;
export const T2_MS = 4000;

export function probeSip(p: LanSipProbe, host: string, ctx: ProbeContext): Promise<string> {
  return p.transport === "udp" ? probeSipUdp(p, host, ctx) : probeSipTcp(p, host, ctx);
}

/** The detail of a final response, or a ProbeFailure when its code is not accepted. */
function finalDetail(p: LanSipProbe, res: SipResponse): string {
  const line = `SIP/2.0 ${res.status} ${res.reasonPhrase}`.trim();
  if (p.acceptCodes && !p.acceptCodes.includes(res.status))
    throw new ProbeFailure(`${line}, expected ${p.acceptCodes.join("/")}`);
  return line;
}

async function probeSipTcp(p: LanSipProbe, host: string, ctx: ProbeContext): Promise<string> {
  const request = newOptionsRequest(host, p.port, "tcp");
  return withTcp(host, p.port, ctx, (socket) => {
    ctx.note = "connected, no SIP response";
    return new Promise<string>((resolve, reject) => {
      const reader = new SipResponseReader();
      socket.setEncoding("utf8");
      socket.on("data", (chunk: string) => {
        try {
          for (const res of reader.push(chunk)) {
            if (res.headers.get("call-id") !== request.callId)
              throw new ProbeFailure("SIP response for another Call-ID");
            if (res.status < 200) {
              ctx.note = `${res.status} ${res.reasonPhrase}, no final response`.trim();
              continue;
            }
            return resolve(finalDetail(p, res));
          }
        } catch (err) {
          reject(err);
        }
      });
      socket.once("error", reject);
      socket.once("close", () => reject(new ProbeFailure("connection closed before a final SIP response")));
      socket.write(formatOptions(request));
    });
  });
}

/**
 * One datagram is one message (RFC 3261 §18.3): parse the header block alone, so that a body
 * without Content-Length (legal over UDP) is not mistaken for a second message.
 */
function parseDatagram(text: string): SipResponse {
  const end = text.indexOf("\r\n\r\n");
  if (end < 0) {
    new SipResponseReader().push(text.slice(0, 64)); // throws if it does not even start like SIP
    throw new GarbageError(`incomplete SIP response in datagram: ${JSON.stringify(text.slice(0, 40))}`);
  }
  const head = text
    .slice(0, end)
    .split("\r\n")
    .filter((line) => !/^(content-length|l)\s*:/i.test(line))
    .join("\r\n");
  const [res] = new SipResponseReader().push(`${head}\r\n\r\n`);
  if (!res) throw new GarbageError("empty datagram");
  return res;
}

async function probeSipUdp(p: LanSipProbe, host: string, ctx: ProbeContext): Promise<string> {
  const request = newOptionsRequest(host, p.port, "udp");
  const message = Buffer.from(formatOptions(request));
  // A connected UDP socket only hears the master's port, and hears ICMP errors as ECONNREFUSED.
  const socket = dgram.createSocket(net.isIPv6(host) ? "udp6" : "udp4");
  let closed = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const close = () => {
    clearTimeout(timer);
    if (closed) return;
    closed = true;
    socket.close();
  };
  ctx.signal.addEventListener("abort", close, { once: true });
  try {
    return await new Promise<string>((resolve, reject) => {
      let sent = 0;
      let interval = T1_MS;
      let provisional: string | undefined;
      const fail = (err: unknown) => {
        const code = (err as NodeJS.ErrnoException | undefined)?.code;
        if (code === "ECONNREFUSED")
          reject(new ProbeFailure(`port unreachable: nothing listens on UDP port ${p.port}`));
        else reject(err);
      };
      const transmit = () => {
        if (closed) return;
        socket.send(message, (err) => err && fail(err));
        sent++;
        ctx.note = provisional ? `${provisional}, no final response` : `${sent} OPTIONS sent, no response`;
        timer = setTimeout(transmit, interval);
        interval = provisional ? T2_MS : Math.min(interval * 2, T2_MS);
      };
      socket.on("error", fail);
      socket.on("message", (msg) => {
        try {
          const res = parseDatagram(msg.toString("utf8"));
          if (res.headers.get("call-id") !== request.callId) return; // a stray answer to someone else
          if (res.status < 200) {
            // Proceeding (§17.1.2.2): the server has the request; keep retransmitting every T2.
            provisional = `${res.status} ${res.reasonPhrase}`.trim();
            ctx.note = `${provisional}, no final response`;
            return;
          }
          resolve(finalDetail(p, res));
        } catch (err) {
          reject(err);
        }
      });
      ctx.note = "resolving / connecting the UDP socket";
      socket.connect(p.port, host, (err?: Error) => (err ? fail(err) : transmit()));
    });
  } finally {
    ctx.signal.removeEventListener("abort", close);
    close();
  }
}

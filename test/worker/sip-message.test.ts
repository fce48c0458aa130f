import { describe, expect, it } from "vitest";
import { GarbageError, SipResponseReader, formatOptions, newOptionsRequest } from "../../protocol/sip.js";

describe("SIP OPTIONS request", () => {
  it("is well formed (RFC 3261 mandatory headers, magic cookie branch, empty body)", () => {
    const req = newOptionsRequest("pbx.example.com", 5060, "tcp");
    const text = formatOptions(req);
    const [line, ...rest] = text.split("\r\n");
    expect(line).toBe("OPTIONS sip:pbx.example.com:5060;transport=tcp SIP/2.0");
    const headers = rest.slice(0, rest.indexOf(""));
    const h = (n: string) => headers.find((l) => l.toLowerCase().startsWith(`${n.toLowerCase()}:`));
    expect(h("Via")).toMatch(/^Via: SIP\/2\.0\/TCP xivo-ha\.invalid;branch=z9hG4bK[0-9a-f]{24};rport$/);
    expect(h("Max-Forwards")).toBe("Max-Forwards: 70");
    expect(h("From")).toMatch(/^From: <sip:xivo-ha@xivo-ha\.invalid>;tag=[0-9a-f]+$/);
    expect(h("To")).toBe("To: <sip:pbx.example.com>");
    expect(h("Call-ID")).toBe(`Call-ID: ${req.callId}`);
    expect(h("CSeq")).toBe("CSeq: 1 OPTIONS");
    expect(h("Content-Length")).toBe("Content-Length: 0");
    expect(text.endsWith("\r\n\r\n")).toBe(true);
  });

  it("brackets IPv6 hosts and says TLS in the Via for sips", () => {
    const text = formatOptions(newOptionsRequest("::1", 5061, "tls"));
    expect(text).toMatch(/^OPTIONS sip:\[::1\]:5061;transport=tls SIP\/2\.0\r\n/);
    expect(text).toContain("Via: SIP/2.0/TLS ");
  });

  it("each request gets fresh branch, tag and Call-ID", () => {
    const a = newOptionsRequest("h", 5060, "tcp");
    const b = newOptionsRequest("h", 5060, "tcp");
    expect(a.branch).not.toBe(b.branch);
    expect(a.callId).not.toBe(b.callId);
  });
});

describe("SipResponseReader", () => {
  const response = (status: string, body = "") =>
    `SIP/2.0 ${status}\r\nVia: SIP/2.0/TCP x;branch=z9hG4bK1\r\ni: abc\r\nCSeq: 1 OPTIONS\r\nl: ${body.length}\r\n\r\n${body}`;

  it("parses a response split across chunks, with compact headers and a body", () => {
    const r = new SipResponseReader();
    const text = response("200 OK", "v=0\r\n");
    expect(r.push(text.slice(0, 5))).toEqual([]);
    expect(r.push(text.slice(5, 40))).toEqual([]);
    const [res] = r.push(text.slice(40));
    expect(res!.status).toBe(200);
    expect(res!.reasonPhrase).toBe("OK");
    expect(res!.headers.get("call-id")).toBe("abc");
  });

  it("yields provisional then final responses in order, skipping CRLF keep-alives", () => {
    const r = new SipResponseReader();
    const got = r.push(`\r\n\r\n${response("100 Trying")}${response("486 Busy Here")}`);
    expect(got.map((x) => x.status)).toEqual([100, 486]);
  });

  it("rejects garbage at once instead of waiting for a timeout", () => {
    expect(() => new SipResponseReader().push("HTTP/1.1 400 Bad Request\r\n\r\n")).toThrow(GarbageError);
    expect(() => new SipResponseReader().push("SIP/2.0 2000 OK\r\n\r\n")).toThrow(/bad status line/);
    expect(() => new SipResponseReader().push("SIP/2.0 200 OK\r\nno colon here\r\n\r\n")).toThrow(/bad header line/);
  });

  it("rejects an endless header block", () => {
    const r = new SipResponseReader();
    expect(() => r.push(`SIP/2.0 200 OK\r\n${"X-Pad: y\r\n".repeat(2000)}`)).toThrow(/too large/);
  });
});

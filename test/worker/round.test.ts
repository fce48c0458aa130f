import { describe, expect, it } from "vitest";
import type { ProbeResult } from "../../protocol/verdict.js";
import { classifyRound } from "../../protocol/round.js";
import { mapLimited } from "../../worker/round.js";

const probe = (name: string, ok: boolean, critical = false): ProbeResult => ({
  name,
  kind: "tcp",
  critical,
  ok,
  detail: ok ? "connected" : "connection refused",
  rttMs: ok ? 3 : null,
});

describe("classifyRound", () => {
  it("up when every probe answers", () => {
    expect(classifyRound([probe("http", true), probe("sip", true, true)]).class).toBe("up");
  });
  it("down when nothing answers", () => {
    const r = classifyRound([probe("http", false), probe("sip", false, true)]);
    expect(r.class).toBe("down");
    expect(r.reason).toContain("http: connection refused");
  });
  it("degraded when the host answers but a critical probe fails", () => {
    const r = classifyRound([probe("http", true), probe("sip", false, true)]);
    expect(r).toEqual({ class: "degraded", reason: "host answers but critical probes fail (sip: connection refused)" });
  });
  it("up, with a note, when only a non-critical probe fails", () => {
    const r = classifyRound([probe("http", false), probe("sip", true, true)]);
    expect(r.class).toBe("up");
    expect(r.reason).toContain("non-critical failing (http: connection refused)");
  });
});

describe("mapLimited", () => {
  it("never has more than the limit in flight and keeps order", async () => {
    let inFlight = 0;
    let peak = 0;
    const out = await mapLimited([...Array(14).keys()], 6, async (i) => {
      peak = Math.max(peak, ++inFlight);
      await new Promise((r) => setTimeout(r, 5));
      inFlight--;
      return i * 2;
    });
    expect(peak).toBe(6);
    expect(out).toEqual([...Array(14).keys()].map((i) => i * 2));
  });
});

import { describe, expect, it } from "vitest";
import { uptimeBadge } from "../../worker/status/badge.js";
import {
  bucketMedians,
  DAY,
  formatDuration,
  formatUptime,
  HOUR,
  incidents,
  roleChanges,
  stateSegments,
  tally,
  type StateChange,
} from "../../worker/status/uptime.js";

/** Uptime arithmetic over scripted histories: pure functions, no storage, no clock. */
const T0 = Date.UTC(2026, 0, 1);
const at = (h: number) => T0 + h * HOUR;
const ch = (h: number, to: StateChange["to"], reason = `→ ${to}`): StateChange => ({ at: at(h), to, reason });
const sum = (t: ReturnType<typeof tally>) => t.upMs + t.degradedMs + t.downMs + t.unknownMs + t.maintenanceMs;

describe("tally", () => {
  it("all up: 100 %, and the five buckets add up to the window", () => {
    const t = tally({ changes: [ch(-1, "up")], from: at(0), to: at(24) });
    expect(t).toMatchObject({ upMs: 24 * HOUR, downMs: 0, uptime: 1 });
    expect(sum(t)).toBe(24 * HOUR);
  });

  it("one hour down in a day: 23/24", () => {
    const t = tally({ changes: [ch(-5, "up"), ch(10, "down"), ch(11, "up")], from: at(0), to: at(24) });
    expect(t.downMs).toBe(HOUR);
    expect(t.uptime).toBeCloseTo(23 / 24, 12);
  });

  it("degraded counts against uptime but is reported apart from down", () => {
    const t = tally({ changes: [ch(0, "up"), ch(6, "degraded"), ch(8, "down"), ch(9, "up")], from: at(0), to: at(12) });
    expect(t).toMatchObject({ upMs: 9 * HOUR, degradedMs: 2 * HOUR, downMs: HOUR });
    expect(t.uptime).toBeCloseTo(9 / 12, 12);
  });

  it("gaps of the probe loop are unknown and excluded, even while the verdict said down", () => {
    const t = tally({
      changes: [ch(0, "up"), ch(10, "down")],
      gaps: [{ from: at(11), to: at(20) }],
      from: at(0),
      to: at(20),
    });
    expect(t).toMatchObject({ upMs: 10 * HOUR, downMs: HOUR, unknownMs: 9 * HOUR });
    expect(t.uptime).toBeCloseTo(10 / 11, 12);
    expect(sum(t)).toBe(20 * HOUR);
  });

  it("maintenance is excluded and wins over gaps and states; overlapping windows count once", () => {
    const t = tally({
      changes: [ch(0, "up"), ch(2, "down"), ch(4, "up")],
      gaps: [{ from: at(3), to: at(6) }],
      maintenance: [
        { from: at(2), to: at(5) },
        { from: at(4), to: at(5) },
      ],
      from: at(0),
      to: at(10),
    });
    expect(t).toMatchObject({ maintenanceMs: 3 * HOUR, unknownMs: HOUR, downMs: 0, upMs: 6 * HOUR, uptime: 1 });
    expect(sum(t)).toBe(10 * HOUR);
  });

  it("partial window: before the first verdict is unknown, so a 3-day-old cluster shows its 3-day figure under 30 d", () => {
    const now = at(72);
    const t = tally({ changes: [ch(0, "up"), ch(24, "down"), ch(30, "up")], from: now - 30 * DAY, to: now });
    expect(t.unknownMs).toBe(30 * DAY - 72 * HOUR);
    expect(t.uptime).toBeCloseTo(66 / 72, 12);
  });

  it("the verdict's own unknown (grace, not enough rounds) is excluded; nothing known → null, not 100 %", () => {
    expect(tally({ changes: [ch(0, "unknown"), ch(2, "up")], from: at(0), to: at(4) })).toMatchObject({
      unknownMs: 2 * HOUR,
      uptime: 1,
    });
    expect(tally({ changes: [], from: at(0), to: at(4) }).uptime).toBeNull();
    expect(
      tally({ changes: [ch(0, "up")], from: at(0), to: at(10), maintenance: [{ from: at(-1), to: at(11) }] }).uptime,
    ).toBeNull();
  });

  it("a window that ends before a change ignores it; changes after `to` and unsorted input are fine", () => {
    const t = tally({ changes: [ch(30, "down"), ch(0, "up")], from: at(1), to: at(2) });
    expect(t).toMatchObject({ upMs: HOUR, uptime: 1 });
  });
});

describe("segments and timeline", () => {
  it("repeated changes to the same state merge into one segment", () => {
    expect(stateSegments([ch(0, "up"), ch(1, "up"), ch(2, "down")], at(0), at(3)).map((s) => s.state)).toEqual([
      "up",
      "down",
    ]);
  });

  it("incidents carry durations, their real start before the window, and an ongoing one has no end", () => {
    const list = incidents(
      [ch(-2, "down", "sip: timeout"), ch(1, "up"), ch(5, "degraded", "sip: refused")],
      at(0),
      at(8),
    );
    expect(list).toEqual([
      { kind: "incident", state: "degraded", from: at(5), to: null, durationMs: 3 * HOUR, reason: "sip: refused" },
      { kind: "incident", state: "down", from: at(-2), to: at(1), durationMs: 3 * HOUR, reason: "sip: timeout" },
    ]);
  });

  it("failover → failback pairs give the time the slave carried the calls; repeated reports count once", () => {
    const fo = { at: at(1), kind: "failover" as const, ok: true, reason: "edge and LAN agree: down", actionAt: 111 };
    const fb = { at: at(3), kind: "failback" as const, ok: true, reason: "master back", actionAt: 222 };
    const list = roleChanges([fo, { ...fo, at: at(1.5) }, fb, { ...fo, at: at(5), actionAt: 333 }], at(0), at(6));
    expect(list.map((e) => [e.kind, e.durationMs, e.ongoing])).toEqual([
      ["failover", HOUR, true],
      ["failback", 2 * HOUR, false],
      ["failover", 2 * HOUR, false],
    ]);
  });

  it("one action reported not ok, then ok (in progress, from an agent that does not mark it so) counts as ok, from when first heard of", () => {
    const failed = {
      at: at(1),
      kind: "failover" as const,
      ok: false,
      reason: "edge and LAN agree: down (in progress)",
      actionAt: 7,
    };
    const list = roleChanges(
      [failed, { ...failed, at: at(2), ok: true, reason: "edge and LAN agree: down" }],
      at(0),
      at(4),
    );
    expect(list).toEqual([
      {
        kind: "failover",
        at: at(1),
        ok: true,
        reason: "edge and LAN agree: down",
        durationMs: 3 * HOUR,
        ongoing: true,
      },
    ]);
  });

  it("a failed failover does not open an active period", () => {
    const list = roleChanges(
      [{ at: at(1), kind: "failover", ok: false, reason: "asterisk did not start", actionAt: 1 }],
      at(0),
      at(2),
    );
    expect(list).toEqual([
      { kind: "failover", at: at(1), ok: false, reason: "asterisk did not start", durationMs: null, ongoing: false },
    ]);
  });
});

describe("formatting and latency", () => {
  it("uptime is floored: an outage never shows as 100.00 %", () => {
    expect(formatUptime(0.99999)).toBe("99.99 %");
    expect(formatUptime(1)).toBe("100.00 %");
    expect(formatUptime(null)).toBe("—");
  });

  it("durations read naturally", () => {
    expect(formatDuration(42_000)).toBe("42 s");
    expect(formatDuration(HOUR + 5 * 60_000)).toBe("1 h 5 min");
    expect(formatDuration(2 * DAY + 3 * HOUR + 59_000)).toBe("2 d 3 h");
    expect(formatDuration(HOUR)).toBe("1 h");
  });

  it("bucket medians skip unanswered probes and leave empty buckets null", () => {
    const pts = [
      { at: 0, rtt: 10 },
      { at: 1, rtt: 30 },
      { at: 2, rtt: 20 },
      { at: 5, rtt: null },
    ];
    expect(bucketMedians(pts, 0, 8, 4)).toEqual([10, 20, null, null]);
  });

  it("the badge shows the figure, colored by threshold", () => {
    expect(uptimeBadge(0.9995)).toContain("99.95 %");
    expect(uptimeBadge(0.9995)).toContain("#1f9d55");
    expect(uptimeBadge(0.95)).toContain("#dc2626");
    expect(uptimeBadge(null)).toContain("no data");
  });
});

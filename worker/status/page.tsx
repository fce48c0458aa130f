import type { Child } from "hono/jsx";
import type { StatusData } from "./data.js";
import type { HourRow, ProbeSeries } from "./store.js";
import { DAY, formatDuration, formatUptime, timeline, type TimelineEntry, type UptimeTally } from "./uptime.js";

/**
 * The public status page, server-rendered: no script, no external asset, refreshes itself every
 * 30 s. Every text goes through hono/jsx, which escapes it (a reason is whatever a probe saw).
 */

const CSS = `
body{font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
main{max-width:880px;margin:0 auto;padding:24px 16px 48px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 10px;color:#3a4356}
.muted{color:#6b7385}.card{background:#fff;border:1px solid #e2e5ea;border-radius:10px;padding:14px 16px}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(180px,1fr));gap:12px}
.state{display:inline-block;padding:2px 10px;border-radius:999px;font-weight:600;color:#fff;text-transform:uppercase;font-size:13px}
.s-up{background:#1f9d55}.s-degraded{background:#d97706}.s-down{background:#dc2626}.s-unknown{background:#6b7385}
.s-active{background:#7c3aed}.s-standby{background:#2563eb}
.big{font-size:24px;font-weight:700}.small{font-size:13px}
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:6px 8px;border-bottom:1px solid #eef0f3;vertical-align:top}
th{font-weight:600;color:#3a4356;font-size:13px}
ol.timeline{list-style:none;margin:0;padding:0}ol.timeline li{padding:8px 0;border-bottom:1px solid #eef0f3}
.reason{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12.5px;color:#3a4356;word-break:break-word}
svg{display:block}
`;

const COLORS = { up: "#1f9d55", degraded: "#d97706", down: "#dc2626", unknown: "#c4c9d2" } as const;

export const iso = (ms: number) =>
  new Date(ms)
    .toISOString()
    .replace("T", " ")
    .replace(/\.\d{3}Z$/, " UTC");

export interface PageModel {
  data: StatusData;
  now: number;
  windows: { label: string; tally: UptimeTally }[];
}

export function StatusPage({ data, now, windows }: PageModel) {
  const v = data.verdict;
  const entries = timeline(data.history.changes, data.history.actions, now - 90 * DAY, now).slice(0, 50);
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta http-equiv="refresh" content="30" />
        <title>{`${data.id} — ${v.state} — xivo-ha status`}</title>
        <style>{CSS}</style>
      </head>
      <body>
        <main>
          <h1>{data.id}</h1>
          <p class="muted small">
            Telephony status as seen from the edge · updated {iso(now)} · this page refreshes every 30 s
          </p>

          <div class="grid">
            <section class="card" id="master">
              <div class="muted small">Master (seen from the edge)</div>
              <p>
                <span class={`state s-${v.state}`}>{v.state}</span>{" "}
                <span class="small">
                  since {iso(v.since)} ({formatDuration(now - v.since)})
                </span>
              </p>
              <div class="reason">{v.reason}</div>
              <div class="muted small">
                {v.lastRoundAt === null
                  ? "no probe round yet"
                  : `last probe round ${formatDuration(now - v.lastRoundAt)} ago`}
              </div>
            </section>
            <section class="card" id="slave">
              <div class="muted small">Slave (as its agent last reported)</div>
              {data.agent ? (
                <>
                  <p>
                    <span
                      class={`state s-${data.agent.role === "active" ? "active" : data.agent.role === "standby" ? "standby" : "unknown"}`}
                    >
                      {data.agent.role}
                    </span>{" "}
                    <span class="small">mode {data.agent.mode}</span>
                  </p>
                  <div class="small">reported {formatDuration(now - data.agent.receivedAt)} ago</div>
                  {data.agent.lastAction ? (
                    <div class="reason">
                      last action: {data.agent.lastAction.kind} (
                      {data.agent.lastAction.inProgress ? "in progress" : data.agent.lastAction.ok ? "ok" : "failed"}) —{" "}
                      {data.agent.lastAction.reason}
                    </div>
                  ) : null}
                </>
              ) : (
                <p class="muted">no report from the agent yet</p>
              )}
            </section>
          </div>

          {data.vantages.length > 0 ? (
            <>
              <h2>Vantage points</h2>
              <div class="card">
                <table id="vantages">
                  <tr>
                    <th>vantage</th>
                    <th>runs in</th>
                    <th>last round</th>
                  </tr>
                  {data.vantages.map((r) => (
                    <tr>
                      <td>{r.name}</td>
                      <td>
                        {r.location ?? "not known yet"}
                        {r.locationHint ? <span class="muted small"> (asked for {r.locationHint})</span> : null}
                      </td>
                      <td>
                        <span class={`state s-${r.vote === "silent" ? "unknown" : r.vote}`}>{r.vote}</span>{" "}
                        <span class="small muted">{formatDuration(now - r.at)} ago</span>
                        <div class="reason">{r.reason}</div>
                      </td>
                    </tr>
                  ))}
                </table>
                <p class="muted small">
                  The master is bad only when a quorum of the vantages that answered say so; a silent vantage has no
                  vote.
                </p>
              </div>
            </>
          ) : null}

          <h2>Uptime</h2>
          <div class="grid" id="uptime">
            {windows.map((w) => (
              <div class="card">
                <div class="muted small">{w.label}</div>
                <div class="big">{formatUptime(w.tally.uptime)}</div>
                <div class="small muted">
                  down {formatDuration(w.tally.downMs)} · degraded {formatDuration(w.tally.degradedMs)}
                  {w.tally.unknownMs + w.tally.maintenanceMs > 0
                    ? ` · not counted ${formatDuration(w.tally.unknownMs + w.tally.maintenanceMs)}`
                    : ""}
                </div>
              </div>
            ))}
          </div>
          <p class="muted small">
            Uptime = up ÷ (up + degraded + down). Degraded (host answers, telephony does not) counts as down. Time
            without probe rounds, before monitoring began, or in planned maintenance is not counted.
          </p>

          <h2>Last 90 days</h2>
          <div class="card">
            <DailyBars hourly={data.hourly} now={now} />
          </div>

          <h2>Probe latency (24 h)</h2>
          <div class="card">
            {data.latency.length === 0 ? (
              <p class="muted">no probe round in the last 24 hours</p>
            ) : (
              <table id="latency">
                <tr>
                  <th>probe</th>
                  <th>last 24 h, or since monitoring began (medians)</th>
                  <th>last</th>
                </tr>
                {data.latency.map((s) => (
                  <tr>
                    <td>{s.name}</td>
                    <td>
                      <Sparkline series={s} />
                    </td>
                    <td>{s.last === null ? "no answer" : `${s.last} ms`}</td>
                  </tr>
                ))}
              </table>
            )}
          </div>

          <h2>Incidents, failovers and failbacks</h2>
          <div class="card">
            {entries.length === 0 ? (
              <p class="muted">nothing in the last 90 days</p>
            ) : (
              <ol class="timeline" id="timeline">
                {entries.map((e) => (
                  <Entry entry={e} />
                ))}
              </ol>
            )}
          </div>
          <p class="muted small">Times are UTC. Powered by xivo-ha.</p>
        </main>
      </body>
    </html>
  );
}

function Entry({ entry: e }: { entry: TimelineEntry }): Child {
  if (e.kind === "incident") {
    return (
      <li>
        <span class={`state s-${e.state}`}>{e.state}</span>{" "}
        <strong>{e.to === null ? `ongoing for ${formatDuration(e.durationMs)}` : formatDuration(e.durationMs)}</strong>{" "}
        <span class="small muted">
          {iso(e.from)}
          {e.to === null ? "" : ` → ${iso(e.to)}`}
        </span>
        <div class="reason">{e.reason}</div>
      </li>
    );
  }
  const what =
    e.kind === "failover"
      ? e.ongoing
        ? `slave active for ${formatDuration(e.durationMs ?? 0)} (ongoing)`
        : e.durationMs === null
          ? "slave took over"
          : `slave was active for ${formatDuration(e.durationMs)}`
      : e.durationMs === null
        ? "master took back"
        : `master back after ${formatDuration(e.durationMs)} on the slave`;
  return (
    <li>
      <span class={`state ${e.kind === "failover" ? "s-active" : "s-standby"}`}>{e.kind}</span> <strong>{what}</strong>
      {e.ok ? "" : " (failed)"} <span class="small muted">{iso(e.at)}</span>
      <div class="reason">{e.reason}</div>
    </li>
  );
}

/**
 * One polyline through the buckets where the probe answered. Buckets without an answer (no
 * round in the slice, or the probe failed) are skipped rather than drawn as 0 ms: the line
 * shows latency, the timeline shows outages.
 */
export function Sparkline({
  series,
  width = 300,
  height = 36,
}: {
  series: ProbeSeries;
  width?: number;
  height?: number;
}) {
  const values = series.points.filter((p): p is number => p !== null);
  const max = Math.max(1, ...values);
  const step = series.points.length > 1 ? width / (series.points.length - 1) : width;
  const coords: string[] = [];
  series.points.forEach((p, i) => {
    if (p !== null) coords.push(`${(i * step).toFixed(1)},${(height - 2 - (p / max) * (height - 4)).toFixed(1)}`);
  });
  const runs = coords.length > 1 ? [coords.join(" ")] : coords;
  return (
    <svg
      class="sparkline"
      width={width}
      height={height}
      viewBox={`0 0 ${width} ${height}`}
      role="img"
      aria-label={`${series.name} round-trip time, max ${max} ms`}
    >
      <line x1="0" y1={height - 1} x2={width} y2={height - 1} stroke="#eef0f3" />
      {runs.map((pts) =>
        pts.includes(" ") ? (
          <polyline points={pts} fill="none" stroke="#2563eb" stroke-width="1.5" />
        ) : (
          <circle cx={pts.split(",")[0]} cy={pts.split(",")[1]} r="1.5" fill="#2563eb" />
        ),
      )}
    </svg>
  );
}

/** 90 bars, one per UTC day, from the hourly roll-ups: colored by that day's uptime. */
function DailyBars({ hourly, now }: { hourly: HourRow[]; now: number }) {
  const today = Math.floor(now / DAY) * DAY;
  const days = Array.from({ length: 90 }, (_, i) => today - (89 - i) * DAY);
  const byDay = new Map<number, { up: number; bad: number; down: number }>();
  for (const h of hourly) {
    const d = Math.floor(h.hour / DAY) * DAY;
    const acc = byDay.get(d) ?? { up: 0, bad: 0, down: 0 };
    acc.up += h.upMs;
    acc.bad += h.degradedMs;
    acc.down += h.downMs;
    byDay.set(d, acc);
  }
  const w = 8;
  const gap = 2;
  return (
    <svg
      class="days"
      width="100%"
      height="34"
      preserveAspectRatio="none"
      viewBox={`0 0 ${days.length * (w + gap)} 34`}
      role="img"
      aria-label="uptime per day, last 90 days"
    >
      {days.map((d, i) => {
        const acc = byDay.get(d);
        const known = acc ? acc.up + acc.bad + acc.down : 0;
        const color =
          !acc || known === 0 ? COLORS.unknown : acc.down > 0 ? COLORS.down : acc.bad > 0 ? COLORS.degraded : COLORS.up;
        const label = known === 0 ? "no data" : formatUptime(acc!.up / known);
        return (
          <rect x={i * (w + gap)} y="2" width={w} height="30" rx="2" fill={color}>
            <title>{`${iso(d).slice(0, 10)}: ${label}`}</title>
          </rect>
        );
      })}
    </svg>
  );
}

/** The 401 / 404 pages: same look, no data. */
export function MessagePage({ title, message }: { title: string; message: string }) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>{title}</title>
        <style>{CSS}</style>
      </head>
      <body>
        <main>
          <h1>{title}</h1>
          <p>{message}</p>
        </main>
      </body>
    </html>
  );
}

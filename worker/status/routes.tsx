import type { Context, Hono } from "hono";
import { raw } from "hono/html";
import { ClusterId } from "../../protocol/ids.js";
import type { Env } from "../env.js";
import { bearer, callerOf, isAdmin } from "../http/auth.js";
import { apiError, unwrap } from "../http/errors.js";
import { query } from "../http/validate.js";
import { uptimeBadge } from "./badge.js";
import type { StatusData } from "./data.js";
import { openApiDocument } from "./openapi.js";
import { MessagePage, StatusPage } from "./page.js";
import { UptimeQuery } from "./schemas.js";
import { DAY, tally, WINDOWS } from "./uptime.js";

type App = { Bindings: Env; Variables: { clusterId: string; token: string } };
type Ctx = Context<App>;

/** Ninety days: the longest window the page shows, and how far back it reads. */
const PAGE_SPAN = 90 * DAY;

/**
 * The page's data, or null: an unknown cluster, and a private one without the admin token, answer
 * alike (404), so ids cannot be enumerated. The object settles access before it reads anything.
 */
async function load(c: Ctx, rawId: string, now: number): Promise<StatusData | null> {
  const id = ClusterId.safeParse(rawId);
  if (!id.success) return null;
  const admin = await isAdmin(bearer(c.req.header("authorization")), c.env.ADMIN_TOKEN);
  const outcome = await c.env.CLUSTER.get(c.env.CLUSTER.idFromName(id.data)).statusData(now, now - PAGE_SPAN, admin);
  return outcome.ok ? outcome.value : null;
}

const windowsOf = (data: StatusData, now: number) =>
  WINDOWS.map((w) => ({
    label: w.label,
    tally: tally({
      changes: data.history.changes,
      gaps: data.history.gaps,
      maintenance: data.maintenance,
      from: now - w.ms,
      to: now,
    }),
  }));

/** Registers the status page, the badge, the uptime API and the OpenAPI document. */
export function mountStatus(app: Hono<App>): void {
  app.get("/status/:cluster", async (c) => {
    const now = Date.now();
    const data = await load(c, c.req.param("cluster"), now);
    // Status pages are public or admin-only; neither may be cached by a shared cache when private.
    c.header("cache-control", "no-store");
    if (!data) return c.html(<MessagePage title="Not found" message="There is no status page here." />, 404);
    return c.html(
      <>
        {raw("<!doctype html>")}
        <StatusPage data={data} now={now} windows={windowsOf(data, now)} />
      </>,
    );
  });

  app.get("/badge/:file", async (c) => {
    const file = c.req.param("file");
    if (!file.endsWith(".svg")) return apiError(c, 404, "not_found", "badges are at /badge/<cluster>.svg");
    const now = Date.now();
    const data = await load(c, file.slice(0, -4), now);
    c.header("content-type", "image/svg+xml; charset=utf-8");
    c.header("cache-control", "no-cache");
    if (!data) return c.body(uptimeBadge(null, "not found"), 404);
    const month = windowsOf(data, now).find((w) => w.label === "30 d")!;
    return c.body(uptimeBadge(month.tally.uptime));
  });

  app.get("/openapi.json", (c) => c.json(openApiDocument()));

  // Under /v1/clusters/:id: the bearer token and the id were checked by app.ts's middleware.
  app.get("/v1/clusters/:id/uptime", query(UptimeQuery), async (c) => {
    const { from, to } = c.req.valid("query");
    const caller = await callerOf(c.get("token"), c.env.ADMIN_TOKEN);
    const h = unwrap(
      await c.env.CLUSTER.get(c.env.CLUSTER.idFromName(c.get("clusterId"))).uptimeHistory(caller, from, to),
    );
    return c.json(tally({ changes: h.changes, gaps: h.gaps, maintenance: h.maintenance, from, to }));
  });
}

import { Hono, type Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import { z } from "zod";
import { AgentReport } from "../protocol/report.js";
import { importSigner } from "../protocol/signing.js";
import { Nonce } from "../protocol/verdict.js";
import { ClusterConfigInput, ClusterId } from "./config.js";
import type { Env, Outcome } from "./env.js";
import { maintenanceRequest } from "./maintenance.js";
import { bearer, callerOf, isAdmin } from "./http/auth.js";
import { apiError, describeZodError } from "./http/errors.js";
import { DELIVERY_STATUSES } from "./notify/outbox.js";
import { registryOf } from "./registry.js";
import { mountStatus } from "./status/routes.js";

type App = { Bindings: Env; Variables: { clusterId: string; token: string } };
type Ctx = Context<App>;

const MAX_BODY = 64 * 1024;

const DeliveriesQuery = z.strictObject({
  status: z.enum(DELIVERY_STATUSES).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(100),
});

const EventsQuery = z.object({
  since: z.coerce.number().int().min(0).default(0),
  limit: z.coerce.number().int().min(1).max(500).default(100),
});

/** Reads a JSON body and validates it; on failure answers 400 naming the field. */
async function jsonBody<S extends z.ZodType>(c: Ctx, schema: S): Promise<z.infer<S> | Response> {
  let raw: unknown;
  try {
    raw = JSON.parse(await c.req.text());
  } catch {
    return apiError(c, 400, "malformed_json", "request body is not valid JSON");
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const { message, field } = describeZodError(parsed.error);
    return apiError(c, 400, "invalid_body", message, field);
  }
  return parsed.data;
}

function reply<T>(c: Ctx, outcome: Outcome<T>, status: 200 | 201 | 202 = 200) {
  return outcome.ok ? c.json(outcome.value as object, status) : apiError(c, outcome.status, outcome.code, outcome.message);
}

const stub = (c: Ctx) => c.env.CLUSTER.get(c.env.CLUSTER.idFromName(c.get("clusterId")));

export function buildApp() {
  const app = new Hono<App>();

  app.onError((err, c) => {
    // A bug of ours, not a client mistake: log the message (never headers or bodies, which may
    // hold tokens) and answer without a stack trace.
    console.error(`unhandled error on ${c.req.method} ${new URL(c.req.url).pathname}: ${err.message}`);
    return apiError(c, 500, "internal", "internal error");
  });
  app.notFound((c) => apiError(c, 404, "not_found", `no route for ${c.req.method} ${new URL(c.req.url).pathname}`));

  app.use(
    "*",
    bodyLimit({ maxSize: MAX_BODY, onError: (c) => apiError(c, 413, "body_too_large", `request body over ${MAX_BODY} bytes`) }),
  );

  /** The bare route: liveness, and the baseline the verdict endpoint is benchmarked against. */
  app.get("/v1/ping", (c) => c.json({ ok: true }));

  app.get("/v1/keys", async (c) => {
    if (!c.env.SIGNING_KEY) return apiError(c, 503, "signing_unavailable", "the SIGNING_KEY secret is not set");
    try {
      const signer = await importSigner(c.env.SIGNING_KEY);
      return c.json({ keys: [signer.publicJwk] });
    } catch (err) {
      return apiError(c, 503, "signing_unavailable", (err as Error).message);
    }
  });

  // Every route below needs a bearer token; which one is decided per route.
  app.use("/v1/clusters/*", async (c, next) => {
    const token = bearer(c.req.header("authorization"));
    if (!token) return apiError(c, 401, "unauthorized", "missing bearer token (Authorization: Bearer …)");
    c.set("token", token);
    await next();
  });
  app.use("/v1/clusters/:id/*", checkClusterId);
  app.use("/v1/clusters/:id", checkClusterId);

  const adminOnly = async (c: Ctx, next: () => Promise<void>) => {
    if (!c.env.ADMIN_TOKEN) return apiError(c, 503, "admin_disabled", "the ADMIN_TOKEN secret is not set");
    if (!(await isAdmin(c.get("token"), c.env.ADMIN_TOKEN))) return apiError(c, 401, "unauthorized", "admin token required");
    await next();
  };

  app.get("/v1/clusters", adminOnly, async (c) => c.json({ clusters: await registryOf(c.env).list() }));

  app.put("/v1/clusters/:id", adminOnly, async (c) => {
    const body = await jsonBody(c, ClusterConfigInput);
    if (body instanceof Response) return body;
    // The origin goes along so notifications can link to this worker's status page.
    const outcome = await stub(c).configure(c.get("clusterId"), body, new URL(c.req.url).origin);
    return reply(c, outcome.ok ? { ok: true, value: outcome.value.cluster } : outcome, outcome.ok && outcome.value.created ? 201 : 200);
  });

  app.get("/v1/clusters/:id", adminOnly, async (c) => {
    const view = await stub(c).describe();
    return view ? c.json(view) : apiError(c, 404, "unknown_cluster", "no such cluster");
  });

  app.delete("/v1/clusters/:id", adminOnly, async (c) => {
    return (await stub(c).remove()) ? c.body(null, 204) : apiError(c, 404, "unknown_cluster", "no such cluster");
  });

  /**
   * Planned maintenance: start (or schedule) a window; the verdict carries it and the agent
   * switches over to the slave. Validated against the request's time, before the object is asked.
   */
  app.post("/v1/clusters/:id/maintenance", adminOnly, async (c) => {
    const body = await jsonBody(c, maintenanceRequest(Date.now()));
    if (body instanceof Response) return body;
    return reply(c, await stub(c).startMaintenance(body), 201);
  });

  /** Ends the window in force now (its `to` becomes now); the agent fails back by the usual rules. */
  app.delete("/v1/clusters/:id/maintenance", adminOnly, async (c) => reply(c, await stub(c).endMaintenance()));

  app.get("/v1/clusters/:id/verdict", async (c) => {
    const nonceParam = c.req.query("nonce");
    let nonce: string | null = null;
    if (nonceParam !== undefined) {
      const parsed = Nonce.safeParse(nonceParam);
      if (!parsed.success) return apiError(c, 400, "invalid_query", `nonce: ${parsed.error.issues[0]!.message}`, "nonce");
      nonce = parsed.data;
    }
    return reply(c, await stub(c).signedVerdict(await callerOf(c.get("token"), c.env.ADMIN_TOKEN), nonce));
  });

  /** Push: the agent opens this WebSocket (outbound from the LAN) and receives every verdict. */
  app.get("/v1/clusters/:id/push", async (c) => {
    if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
      return apiError(c, 426, "upgrade_required", "this route is a WebSocket: send Upgrade: websocket");
    }
    return stub(c).fetch(c.req.raw);
  });

  app.post("/v1/clusters/:id/report", async (c) => {
    const body = await jsonBody(c, AgentReport);
    if (body instanceof Response) return body;
    return reply(c, await stub(c).report({ agentToken: c.get("token") }, body), 202);
  });

  app.get("/v1/clusters/:id/events", async (c) => {
    const query = EventsQuery.safeParse(c.req.query());
    if (!query.success) {
      const { message, field } = describeZodError(query.error);
      return apiError(c, 400, "invalid_query", message, field);
    }
    const caller = await callerOf(c.get("token"), c.env.ADMIN_TOKEN);
    return reply(c, await stub(c).events(caller, query.data.since, query.data.limit));
  });

  /** The notification outbox (worker/notify/): what was sent, what waits, what failed and why. */
  app.get("/v1/clusters/:id/deliveries", adminOnly, async (c) => {
    const query = DeliveriesQuery.safeParse(c.req.query());
    if (!query.success) {
      const { message, field } = describeZodError(query.error);
      return apiError(c, 400, "invalid_query", message, field);
    }
    const page = await stub(c).deliveries(query.data.status, query.data.limit);
    return page ? c.json(page) : apiError(c, 404, "unknown_cluster", "no such cluster");
  });

  // Status page, badge, uptime API and /openapi.json (worker/status/); last, so the
  // /v1/clusters/* middleware above applies to the uptime route.
  mountStatus(app);

  return app;
}

async function checkClusterId(c: Ctx, next: () => Promise<void>) {
  const id = ClusterId.safeParse(c.req.param("id"));
  if (!id.success) return apiError(c, 400, "invalid_path", `id: ${id.error.issues[0]!.message}`, "id");
  c.set("clusterId", id.data);
  await next();
}

import { Hono, type Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import { z } from "zod";
import { fromBase64Url, toBase64Url, utf8 } from "../protocol/encoding.js";
import { AgentReport } from "../protocol/report.js";
import { importSigner } from "../protocol/signing.js";
import { Nonce } from "../protocol/verdict.js";
import { ClusterId } from "../protocol/ids.js";
import { ClusterConfigInput } from "./config.js";
import type { Env } from "./env.js";
import { maintenanceRequest } from "./maintenance.js";
import { adminTokenProblem } from "./http/admin-token.js";
import { bearer, callerOf, isAdmin } from "./http/auth.js";
import { ApiFailure, apiError, onError, unwrap } from "./http/errors.js";
import { jsonBody, query } from "./http/validate.js";
import { DELIVERY_STATUSES } from "./notify/outbox.js";
import { CLUSTER_PAGE_DEFAULT, CLUSTER_PAGE_MAX, listClusters } from "./registry.js";
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

const VerdictQuery = z.object({ nonce: Nonce.optional() });

/** The list's cursor is opaque to clients: the last id of the page before, base64url. */
const encodeCursor = (id: string) => toBase64Url(utf8.encode(id));
const Cursor = z
  .string()
  .max(200)
  .transform((text, ctx) => {
    let id: string | null = null;
    try {
      id = utf8.decode(fromBase64Url(text));
    } catch {
      // not base64url: refused below
    }
    const parsed = ClusterId.safeParse(id);
    if (parsed.success) return parsed.data;
    ctx.addIssue({ code: "custom", message: "not a cursor this API gave (pass the nextCursor of the page before)" });
    return z.NEVER;
  });

const ClustersQuery = z.object({
  cursor: Cursor.optional(),
  limit: z.coerce.number().int().min(1).max(CLUSTER_PAGE_MAX).default(CLUSTER_PAGE_DEFAULT),
});

const stub = (c: Ctx) => c.env.CLUSTER.get(c.env.CLUSTER.idFromName(c.get("clusterId")));

export function buildApp(opts: { testRoutes?: boolean } = {}) {
  const app = new Hono<App>();

  app.onError(onError);
  app.notFound((c) => apiError(c, 404, "not_found", `no route for ${c.req.method} ${new URL(c.req.url).pathname}`));

  // A body of unknown length is refused before a byte of it is read: reading a chunked stream to the
  // limit and abandoning it could take the runtime down under wrangler dev. Every client this API
  // documents (the agent's fetch with a string body, curl -d) sends Content-Length.
  app.use("*", async (c, next) => {
    if (c.req.raw.body !== null && c.req.header("content-length") === undefined) {
      throw new ApiFailure(
        411,
        "length_required",
        "a request body needs a Content-Length header (chunked bodies are not accepted)",
        "content-length",
      );
    }
    await next();
  });
  app.use(
    "*",
    bodyLimit({
      maxSize: MAX_BODY,
      onError: () => {
        throw new ApiFailure(413, "body_too_large", `request body over ${MAX_BODY} bytes`);
      },
    }),
  );

  /** The bare route: liveness, and the baseline the verdict endpoint is benchmarked against. */
  app.get("/v1/ping", (c) => c.json({ ok: true }));

  app.get("/v1/keys", async (c) => {
    if (!c.env.SIGNING_KEY) throw new ApiFailure(503, "signing_unavailable", "the SIGNING_KEY secret is not set");
    const signer = await importSigner(c.env.SIGNING_KEY).catch((err: Error) => {
      throw new ApiFailure(503, "signing_unavailable", err.message);
    });
    return c.json({ keys: [signer.publicJwk] });
  });

  // Every route below needs a bearer token; which one is decided per route.
  app.use("/v1/clusters/*", async (c, next) => {
    const token = bearer(c.req.header("authorization"));
    if (!token) throw new ApiFailure(401, "unauthorized", "missing bearer token (Authorization: Bearer …)");
    c.set("token", token);
    await next();
  });
  app.use("/v1/clusters/:id/*", checkClusterId);
  app.use("/v1/clusters/:id", checkClusterId);

  const adminOnly = async (c: Ctx, next: () => Promise<void>) => {
    const problem = adminTokenProblem(c.env.ADMIN_TOKEN);
    if (problem) throw new ApiFailure(503, "admin_disabled", problem);
    if (!(await isAdmin(c.get("token"), c.env.ADMIN_TOKEN)))
      throw new ApiFailure(401, "unauthorized", "admin token required");
    await next();
  };

  /** Cluster ids in id order, a page at a time; `nextCursor` is null on the last page. */
  app.get("/v1/clusters", adminOnly, query(ClustersQuery), async (c) => {
    const { cursor, limit } = c.req.valid("query");
    const { ids, next } = await listClusters(c.env, cursor ?? "", limit);
    return c.json({ clusters: ids, nextCursor: next === null ? null : encodeCursor(next) });
  });

  app.put("/v1/clusters/:id", adminOnly, jsonBody(ClusterConfigInput), async (c) => {
    // The origin goes along so notifications can link to this worker's status page.
    const { created, cluster } = unwrap(
      await stub(c).configure(c.get("clusterId"), c.req.valid("json"), new URL(c.req.url).origin),
    );
    return c.json(cluster, created ? 201 : 200);
  });

  app.get("/v1/clusters/:id", adminOnly, async (c) => c.json(unwrap(await stub(c).describe())));

  /** Test-only (the scale bench): the loop's alarm is lost. Only in the app built for TEST_ALARM_DROP. */
  if (opts.testRoutes)
    app.delete("/v1/clusters/:id/alarm", adminOnly, async (c) => {
      unwrap(await stub(c).dropAlarm());
      return c.body(null, 204);
    });

  app.delete("/v1/clusters/:id", adminOnly, async (c) => {
    unwrap(await stub(c).remove());
    return c.body(null, 204);
  });

  /**
   * Planned maintenance: start (or schedule) a window; the verdict carries it and the agent
   * switches over to the slave. Validated against the request's time, before the object is asked.
   */
  app.post(
    "/v1/clusters/:id/maintenance",
    adminOnly,
    jsonBody(() => maintenanceRequest(Date.now())),
    async (c) => c.json(unwrap(await stub(c).startMaintenance(c.req.valid("json"))), 201),
  );

  /** Ends the window in force now (its `to` becomes now); the agent fails back by the usual rules. */
  app.delete("/v1/clusters/:id/maintenance", adminOnly, async (c) => c.json(unwrap(await stub(c).endMaintenance())));

  app.get("/v1/clusters/:id/verdict", query(VerdictQuery), async (c) => {
    const caller = await callerOf(c.get("token"), c.env.ADMIN_TOKEN);
    return c.json(unwrap(await stub(c).signedVerdict(caller, c.req.valid("query").nonce ?? null)));
  });

  /** Push: the agent opens this WebSocket (outbound from the LAN) and receives every verdict. */
  app.all("/v1/clusters/:id/push", async (c) => {
    // The runtime would answer a bad handshake itself, in plain text (or fail a 101 to a POST): checked here first.
    if (c.req.method !== "GET") {
      c.header("allow", "GET");
      throw new ApiFailure(
        405,
        "method_not_allowed",
        `${c.req.method} is not allowed here: open the WebSocket with GET`,
      );
    }
    checkUpgrade(c);
    return stub(c).fetch(c.req.raw);
  });

  app.post("/v1/clusters/:id/report", jsonBody(AgentReport), async (c) =>
    c.json(unwrap(await stub(c).report({ agentToken: c.get("token") }, c.req.valid("json"))), 202),
  );

  app.get("/v1/clusters/:id/events", query(EventsQuery), async (c) => {
    const { since, limit } = c.req.valid("query");
    const caller = await callerOf(c.get("token"), c.env.ADMIN_TOKEN);
    return c.json(unwrap(await stub(c).events(caller, since, limit)));
  });

  /** The notification outbox (worker/notify/): what was sent, what waits, what failed and why. */
  app.get("/v1/clusters/:id/deliveries", adminOnly, query(DeliveriesQuery), async (c) => {
    const { status, limit } = c.req.valid("query");
    return c.json(unwrap(await stub(c).deliveries(status, limit)));
  });

  // Status page, badge, uptime API and /openapi.json (worker/status/); last, so the
  // /v1/clusters/* middleware above applies to the uptime route.
  mountStatus(app);

  return app;
}

/** A WebSocket handshake (RFC 6455 §4.2.1) the runtime will accept; a JSON refusal naming the header otherwise. */
function checkUpgrade(c: Ctx) {
  if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
    throw new ApiFailure(426, "upgrade_required", "this route is a WebSocket: send Upgrade: websocket");
  }
  if (c.req.header("sec-websocket-version")?.trim() !== "13") {
    c.header("sec-websocket-version", "13");
    throw new ApiFailure(
      426,
      "unsupported_websocket_version",
      "sec-websocket-version: only version 13 is supported",
      "sec-websocket-version",
    );
  }
  if (!/^[A-Za-z0-9+/]{22}==$/.test(c.req.header("sec-websocket-key")?.trim() ?? "")) {
    throw new ApiFailure(400, "invalid_upgrade", "sec-websocket-key: must be 16 bytes in base64", "sec-websocket-key");
  }
}

async function checkClusterId(c: Ctx, next: () => Promise<void>) {
  const id = ClusterId.safeParse(c.req.param("id"));
  if (!id.success) throw new ApiFailure(400, "invalid_path", `id: ${id.error.issues[0]!.message}`, "id");
  c.set("clusterId", id.data);
  await next();
}

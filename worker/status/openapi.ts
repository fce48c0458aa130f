import { z } from "zod";
import { EventPage } from "../../protocol/events.js";
import { PushMessage } from "../../protocol/push.js";
import { AgentReport } from "../../protocol/report.js";
import { PublicJwk, SignedEnvelope } from "../../protocol/signing.js";
import { MasterState, QuorumRound, RoundSummary, Verdict } from "../../protocol/verdict.js";
import { MAX_EPOCH_MS } from "../../protocol/time.js";
import { ClusterConfig, ClusterConfigInput, MAX_WINDOWS } from "../config.js";
import { MaintenanceBody } from "../maintenance.js";
import { VantageResult } from "../cluster/quorum.js";
import { MAX_SOCKETS, REPORT_BURST, REPORT_RATE } from "../cluster/report-rate.js";
import { ChannelView } from "../notify/channels.js";
import { DELIVERY_STATUSES } from "../notify/outbox.js";
import { CLUSTER_PAGE_DEFAULT, CLUSTER_PAGE_MAX } from "../registry.js";
import { UptimeResult } from "./schemas.js";

/**
 * GET /openapi.json: the v1 API as an OpenAPI 3.1 document. The schemas are the very zod schemas
 * the routes validate with (z.toJSONSchema), so the document cannot drift from the validation;
 * the paths are written here by hand, and a test checks that every v1 route of the app is listed.
 */

const ApiErrorSchema = z.object({
  error: z.object({ code: z.string(), message: z.string(), field: z.string().optional() }),
});

/** GET /v1/clusters/:id — ClusterView in worker/cluster/views.ts. */
const ClusterView = z.object({
  id: z.string(),
  config: ClusterConfig.extend({ notifications: z.array(ChannelView) }), // publicConfig: no secrets
  agentTokenSet: z.literal(true),
  createdAt: z.number().int(),
  updatedAt: z.number().int(),
  verdict: z.object({
    state: MasterState,
    since: z.number().int(),
    reason: z.string(),
    seq: z.number().int(),
    lastRound: RoundSummary.nullable(),
    quorum: QuorumRound.optional(),
  }),
  vantages: z.array(VantageResult),
  agent: z.object({ report: AgentReport, receivedAt: z.number().int() }).nullable(),
});

const schemas: Record<string, { schema: z.ZodType; io: "input" | "output" }> = {
  ApiError: { schema: ApiErrorSchema, io: "output" },
  ClusterConfigInput: { schema: ClusterConfigInput, io: "input" },
  ClusterView: { schema: ClusterView, io: "output" },
  ClusterList: {
    schema: z.object({
      clusters: z.array(z.string()),
      nextCursor: z.string().nullable().describe("pass as `cursor` for the next page; null on the last page"),
    }),
    io: "output",
  },
  SignedEnvelope: { schema: SignedEnvelope, io: "output" },
  Verdict: { schema: Verdict, io: "output" },
  PushMessage: { schema: PushMessage, io: "output" },
  AgentReport: { schema: AgentReport, io: "input" },
  EventPage: { schema: EventPage, io: "output" },
  Uptime: { schema: UptimeResult, io: "output" },
  Keys: { schema: z.object({ keys: z.array(PublicJwk) }), io: "output" },
  MaintenanceBody: { schema: MaintenanceBody, io: "input" },
  MaintenanceWindow: {
    schema: z.object({
      window: z.object({ from: z.number().int(), to: z.number().int(), reason: z.string().optional() }),
      active: z.boolean().optional(),
    }),
    io: "output",
  },
};

const ref = (name: keyof typeof schemas) => ({ $ref: `#/components/schemas/${name}` });
const json = (name: keyof typeof schemas, description: string) => ({
  description,
  content: { "application/json": { schema: ref(name) } },
});
const error = (description: string) => json("ApiError", description);

const idParam = {
  name: "id",
  in: "path",
  required: true,
  schema: { type: "string", pattern: "^[a-z0-9][a-z0-9-]{0,62}$" },
};
const query = (name: string, description: string, schema: object) => ({
  name,
  in: "query",
  required: false,
  description,
  schema,
});
const admin = [{ admin: [] }];
const adminOrAgent = [{ admin: [] }, { agent: [] }];
const common = {
  "400": error("invalid input; `field` names it"),
  "401": error("missing or wrong token"),
  "404": error("no such cluster (told to the admin only: anyone else gets 401)"),
};

const paths = {
  "/v1/ping": { get: { summary: "Liveness", security: [], responses: { "200": { description: "ok" } } } },
  "/v1/keys": {
    get: {
      summary: "The public keys verdicts are signed with (JWK set)",
      security: [],
      responses: { "200": json("Keys", "JWK set"), "503": error("SIGNING_KEY not set") },
    },
  },
  "/v1/clusters": {
    get: {
      summary: "List cluster ids, a page at a time, in id order",
      security: admin,
      parameters: [
        query("cursor", "the `nextCursor` of the page before (opaque); omitted: the first page", { type: "string" }),
        query("limit", `ids per page (default ${CLUSTER_PAGE_DEFAULT})`, {
          type: "integer",
          minimum: 1,
          maximum: CLUSTER_PAGE_MAX,
          default: CLUSTER_PAGE_DEFAULT,
        }),
      ],
      responses: {
        "200": json("ClusterList", "cluster ids"),
        "400": common["400"],
        "401": common["401"],
      },
    },
  },
  "/v1/clusters/{id}": {
    parameters: [idParam],
    put: {
      summary: "Create or update a cluster (agentToken required at creation)",
      security: admin,
      requestBody: { required: true, content: { "application/json": { schema: ref("ClusterConfigInput") } } },
      responses: {
        "200": json("ClusterView", "updated"),
        "201": json("ClusterView", "created"),
        "400": common["400"],
        "401": common["401"],
      },
    },
    get: {
      summary: "Describe a cluster",
      security: admin,
      responses: { "200": json("ClusterView", "the cluster"), "401": common["401"], "404": common["404"] },
    },
    delete: {
      summary: "Delete a cluster and its history",
      security: admin,
      responses: { "204": { description: "deleted" }, "401": common["401"], "404": common["404"] },
    },
  },
  "/v1/clusters/{id}/verdict": {
    parameters: [idParam],
    get: {
      summary: "The signed verdict (payload: Verdict)",
      security: adminOrAgent,
      parameters: [
        query("nonce", "echoed in the signed payload", { type: "string", pattern: "^[A-Za-z0-9_-]{8,128}$" }),
      ],
      responses: {
        "200": json("SignedEnvelope", "Ed25519-signed Verdict JSON"),
        ...common,
        "503": error("SIGNING_KEY not set"),
      },
    },
  },
  "/v1/clusters/{id}/maintenance": {
    parameters: [idParam],
    post: {
      summary:
        "Start (or schedule, with a future `from`) a planned maintenance window: the verdict carries it, the agent switches over",
      security: admin,
      requestBody: { required: true, content: { "application/json": { schema: ref("MaintenanceBody") } } },
      responses: {
        "201": json("MaintenanceWindow", "the window added"),
        ...common,
        "409": error(`${MAX_WINDOWS} windows current or scheduled`),
      },
    },
    delete: {
      summary: "End the maintenance window in force now",
      security: admin,
      responses: {
        "200": json("MaintenanceWindow", "the window, ended now"),
        "401": common["401"],
        "404": error("no such cluster, or no window in force"),
      },
    },
  },
  "/v1/clusters/{id}/push": {
    parameters: [idParam],
    get: {
      summary: "WebSocket: a PushMessage (signed verdict) at connect and after every round",
      security: [{ agent: [] }],
      responses: {
        "101": { description: "switching protocols; messages are PushMessage JSON" },
        "426": error(
          "not a WebSocket upgrade, or Sec-WebSocket-Version is not 13 (answered with Sec-WebSocket-Version: 13)",
        ),
        ...common,
        "400": error("Sec-WebSocket-Key missing or not 16 bytes in base64"),
        "429": error(`the cluster already has ${MAX_SOCKETS} push connections (too_many_sockets)`),
      },
    },
  },
  "/v1/clusters/{id}/report": {
    parameters: [idParam],
    post: {
      summary: "The agent's report",
      security: adminOrAgent,
      requestBody: { required: true, content: { "application/json": { schema: ref("AgentReport") } } },
      responses: {
        "202": {
          description: "accepted",
          content: {
            "application/json": { schema: { type: "object", properties: { receivedAt: { type: "integer" } } } },
          },
        },
        ...common,
        "429": error(
          `over ${REPORT_BURST} reports in a burst or ${REPORT_RATE} a second sustained; Retry-After says when to send again`,
        ),
      },
    },
  },
  "/v1/clusters/{id}/events": {
    parameters: [idParam],
    get: {
      summary: "The cluster's history, oldest first, paged by id",
      security: adminOrAgent,
      parameters: [
        query("since", "return events with id > since", { type: "integer", minimum: 0, default: 0 }),
        query("limit", "page size", { type: "integer", minimum: 1, maximum: 500, default: 100 }),
      ],
      responses: { "200": json("EventPage", "a page of events"), ...common },
    },
  },
  "/v1/clusters/{id}/deliveries": {
    parameters: [idParam],
    get: {
      summary: "The notification outbox (worker/notify/): sent, pending and failed deliveries",
      security: admin,
      parameters: [
        query("status", "only deliveries in this state", { type: "string", enum: [...DELIVERY_STATUSES] }),
        query("limit", "page size", { type: "integer", minimum: 1, maximum: 500, default: 100 }),
      ],
      responses: {
        "200": { description: "a page of deliveries", content: { "application/json": { schema: { type: "object" } } } },
        ...common,
      },
    },
  },
  "/v1/clusters/{id}/uptime": {
    parameters: [idParam],
    get: {
      summary: "Uptime over [from, to): up / (up + degraded + down); unknown and maintenance excluded",
      security: adminOrAgent,
      parameters: [
        query("from", "epoch ms, default to − 30 days; at most 400 days before to", {
          type: "integer",
          minimum: 0,
          maximum: MAX_EPOCH_MS,
        }),
        query("to", "epoch ms, default now", { type: "integer", minimum: 0, maximum: MAX_EPOCH_MS }),
      ],
      responses: { "200": json("Uptime", "the tally"), ...common },
    },
  },
} as const;

let cached: object | null = null;

export function openApiDocument(): object {
  cached ??= {
    openapi: "3.1.0",
    info: {
      title: "xivo-ha edge monitor",
      version: "1",
      description:
        "Probes a XiVO / Wazo master from the edge and serves a signed verdict to the slave's agent. Also served, outside v1: GET /status/{id} (HTML status page) and GET /badge/{id}.svg.",
    },
    jsonSchemaDialect: "https://json-schema.org/draft/2020-12/schema",
    security: admin,
    paths,
    components: {
      securitySchemes: {
        admin: { type: "http", scheme: "bearer", description: "the ADMIN_TOKEN secret" },
        agent: { type: "http", scheme: "bearer", description: "the cluster's agentToken" },
      },
      schemas: Object.fromEntries(
        Object.entries(schemas).map(([name, { schema, io }]) => {
          const { $schema: _drop, ...rest } = z.toJSONSchema(schema, {
            io,
            unrepresentable: "any",
            target: "draft-2020-12",
          }) as Record<string, unknown>;
          return [name, rest];
        }),
      ),
    },
  };
  return cached;
}

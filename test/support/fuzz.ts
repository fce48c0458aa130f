import http from "node:http";
import zlib from "node:zlib";
import { until } from "./until.js";
import { seededRandom } from "./random.js";

/**
 * A grammar-driven fuzzer for the worker's HTTP API, shared by test/node/fuzz.test.ts (a few
 * thousand requests) and bench/fuzz.ts (ten thousand and more). Every request is built from a
 * seeded PRNG, so a failure replays with FUZZ_SEED. It sends only requests that must be refused
 * or that only read, and checks: no 5xx, no dropped connection, every /v1 error in the
 * documented `{"error":{code,message,field?}}` shape, no token echoed back, no 2xx where a
 * refusal was due, and stored state (clusters, configs, non-round history) as it was before.
 */

// ---- PRNG ------------------------------------------------------------------------------------

/** A seeded generator (random.ts) with the helpers the fuzzers use. */
export function prng(seed: number) {
  const next = seededRandom(seed);
  const int = (n: number) => Math.floor(next() * n);
  return {
    next,
    int,
    chance: (p: number) => next() < p,
    pick: <T>(xs: readonly T[]): T => xs[int(xs.length)]!,
  };
}
export type Rng = ReturnType<typeof prng>;

export function seedFromEnv(): number {
  const raw = process.env.FUZZ_SEED;
  if (raw !== undefined && raw !== "") {
    const n = Number(raw);
    if (!Number.isInteger(n)) throw new Error(`FUZZ_SEED must be an integer, got ${raw}`);
    return n >>> 0;
  }
  return (Date.now() ^ (process.pid << 16)) >>> 0;
}

// ---- the world the fuzzer runs against ---------------------------------------------------------

/** Two clusters with known config, set up before the run; everything else must stay absent. */
export const CLUSTER_A = "fuzz-a";
export const CLUSTER_B = "fuzz-b";
const EXISTING = [CLUSTER_A, CLUSTER_B];
/** A valid id no request may create. */
const ABSENT = "fuzz-absent";

export interface Tokens {
  admin: string;
  agentA: string;
  agentB: string;
}

type Auth =
  | "none"
  | "empty-bearer"
  | "bearer-only"
  | "basic"
  | "wrong"
  | "odd-chars"
  | "long"
  | "lowercase-admin"
  | "admin-twice"
  | "admin-tab"
  | "admin-in-query"
  | "agent-a"
  | "agent-b"
  | "admin";

const AUTHS: readonly Auth[] = [
  "none",
  "empty-bearer",
  "bearer-only",
  "basic",
  "wrong",
  "odd-chars",
  "long",
  "lowercase-admin",
  "admin-twice",
  "admin-tab",
  "admin-in-query",
  "agent-a",
  "agent-b",
  "admin",
  "admin",
  "agent-a",
];

/** The header forms that carry the admin token validly. */
const ADMIN_AUTHS = new Set<Auth>(["admin", "lowercase-admin"]);

function authHeader(auth: Auth, t: Tokens): string | undefined {
  switch (auth) {
    case "none":
    case "admin-in-query":
      return undefined;
    case "empty-bearer":
      return "Bearer ";
    case "bearer-only":
      return "Bearer";
    case "basic":
      return `Basic ${Buffer.from(`admin:${t.admin}`).toString("base64")}`;
    case "wrong":
      return "Bearer not-the-token-0123456789abcdef0123456789";
    case "odd-chars":
      return "Bearer ../../%00%ff\"'<script>";
    case "long":
      return `Bearer ${"x".repeat(6000)}`;
    case "lowercase-admin":
      return `bearer ${t.admin}`;
    case "admin-twice":
      return `Bearer ${t.admin} ${t.admin}`;
    case "admin-tab":
      return `Bearer\t${t.admin}`;
    case "agent-a":
      return `Bearer ${t.agentA}`;
    case "agent-b":
      return `Bearer ${t.agentB}`;
    case "admin":
      return `Bearer ${t.admin}`;
  }
}

// ---- ids and query strings -----------------------------------------------------------------------

const IDS: readonly string[] = [
  CLUSTER_A,
  CLUSTER_B,
  CLUSTER_A,
  CLUSTER_B,
  ABSENT,
  "a",
  "0",
  "z".repeat(63),
  // invalid by the id rule
  "z".repeat(64),
  "x".repeat(3000),
  "FUZZ-A",
  "-lead",
  "fuzz_a",
  "fuzz.a",
  "..",
  ".",
  "%2e%2e",
  "%2E",
  "%00",
  "%",
  "%zz",
  "%E0%A4%A",
  "%C3%A9t%C3%A9",
  "%F0%9F%92%A9",
  "fuzz%2Da",
  "fuzz-a%2Fverdict",
  "fuzz-a%20",
  "fuzz-a;x=1",
  "fuzz-a%3F",
  "~",
  "%2F",
  "%5C",
  "null",
  "undefined",
  "__proto__",
  "constructor",
  "0x10",
];

const QUERY_VALUES: readonly string[] = [
  "",
  "-1",
  "0",
  "1",
  "8",
  "100",
  "500",
  "501",
  "1e3",
  "9e15",
  "9007199254740993",
  "1e308",
  "1e309",
  "-1e308",
  "Infinity",
  "-Infinity",
  "NaN",
  "0x10",
  "0b1",
  "abc",
  "%zz",
  "%",
  "%E0%A4%A",
  "1%00",
  "%2B1",
  "+1",
  "%201",
  "1.5",
  "[]",
  "{}",
  "true",
  "null",
  "x".repeat(2000),
  "sent",
  "pending",
  "failed",
  "A".repeat(8),
  "a_b-c_d-0123",
];

const QUERY_KEYS: Record<string, readonly string[]> = {
  verdict: ["nonce"],
  events: ["since", "limit"],
  uptime: ["from", "to"],
  deliveries: ["status", "limit"],
};
const JUNK_KEYS = ["x", "__proto__", "constructor", "limit[]", "a%zz", "%", "", "nonce", "since", "to"];

function queryString(rng: Rng, route: string): string {
  if (rng.chance(0.15)) return "";
  const own = QUERY_KEYS[route] ?? [];
  const parts: string[] = [];
  const n = 1 + rng.int(4);
  for (let i = 0; i < n; i++) {
    const key = own.length && rng.chance(0.75) ? rng.pick(own) : rng.pick(JUNK_KEYS);
    if (rng.chance(0.05))
      parts.push(key); // a key with no '='
    else parts.push(`${key}=${rng.pick(QUERY_VALUES)}`);
  }
  if (rng.chance(0.2)) parts.push(parts[0]!); // a repeated key
  return `?${parts.join(rng.chance(0.05) ? ";" : "&")}`;
}

// ---- bodies --------------------------------------------------------------------------------------

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Obj = { [k: string]: Json };
/** A body change that makes a valid body one the route must refuse. */
type Breaker = (b: Obj, now: number) => Obj | string;

const isObj = (v: Json | undefined): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
const set =
  (path: string, value: Json): Breaker =>
  (b) => {
    const copy = structuredClone(b) as Obj;
    const keys = path.split(".");
    let o: Json | undefined = copy;
    for (const k of keys.slice(0, -1)) o = isObj(o) ? o[k] : undefined;
    // An earlier breaker dropped or replaced the parent: the body is broken already.
    if (isObj(o)) o[keys.at(-1)!] = value;
    return copy;
  };
const drop =
  (key: string): Breaker =>
  (b) => {
    const { [key]: _, ...rest } = b;
    return rest;
  };
/** The field's value replaced by a literal JSON text (numbers JSON.stringify cannot write, deep nests). */
const rawField =
  (key: string, text: string): Breaker =>
  (b) => {
    const marker = "\u0001RAW\u0001";
    return JSON.stringify({ ...b, [key]: marker }).replace(JSON.stringify(marker), text);
  };
const nest = (depth: number) => "[".repeat(depth) + "]".repeat(depth);

const WRONG_NUMBERS: readonly Json[] = ["10", "NaN", "Infinity", "1e3", "0x10", " 10 ", true, [], {}, null, "", [1]];

function numberBreakers(path: string, outOfRange: readonly number[], nullable = false): Breaker[] {
  const wrong = WRONG_NUMBERS.filter((v) => !(nullable && v === null));
  return [...wrong.map((v) => set(path, v)), ...outOfRange.map((v) => set(path, v))];
}

const strict = [set("critcal", true), set("__proto__x", {}), set("constructor", "x")];

const CONFIG_BREAKERS: Breaker[] = [
  ...strict,
  set("master.host", 123),
  set("master.host", ""),
  set("master.host", "a b"),
  set("master.host", "h".repeat(254)),
  set("master.extra", 1),
  set("master", "127.0.0.1"),
  set("master", null),
  drop("master"),
  drop("probes"),
  set("probes", []),
  set("probes", "tcp"),
  set("probes", [{ kind: "smtp", name: "x", port: 25 }]),
  set("probes", [
    { kind: "tcp", name: "x", port: 9 },
    { kind: "tcp", name: "x", port: 10 },
  ]),
  set(
    "probes",
    Array.from({ length: 17 }, (_, i) => ({ kind: "tcp", name: `p${i}`, port: 9 })),
  ),
  set("probes", [{ kind: "tcp", name: "Bad Name", port: 9 }]),
  set("probes", [{ kind: "tcp", name: "x" }]),
  set("probes", [{ kind: "http", name: "w", path: "no-slash" }]),
  set("probes", [{ kind: "tcp", name: "x", port: 9, timeoutMs: 99 }]),
  set("probes", [{ kind: "http", name: "w", expectStatus: { min: 500, max: 200 } }]),
  set("probes", [{ kind: "sip", name: "s", acceptCodes: [] }]),
  set("probes", [{ kind: "tcp", name: "x", port: 9, critcal: true }]),
  ...[0, -1, 65536, 1.5, 1e308, -1e308, 2 ** 53 + 1].map((p) => set("probes", [{ kind: "tcp", name: "x", port: p }])),
  ...numberBreakers("intervalSec", [1, 1.99, 3601, 1e308, -1e308, -0.5]),
  ...numberBreakers("fall", [0, 101, 1.5, 2 ** 53 + 1]),
  ...numberBreakers("rise", [0, 101, -1]),
  ...numberBreakers("graceSec", [-1, 3601, 0.5]),
  ...numberBreakers("agentLostAfterSec", [9, 86_401, 1e308]),
  set("public", "true"),
  set("public", 1),
  set("public", null),
  set("maintenance", "x"),
  set("maintenance", [{ from: 10, to: 5 }]),
  set("maintenance", [{ from: -1, to: 5 }]),
  set("maintenance", [{ from: 1, to: 2, extra: 1 }]),
  set(
    "maintenance",
    Array.from({ length: 51 }, (_, i) => ({ from: i, to: i + 1 })),
  ),
  set("notifications", "x"),
  set("notifications", [{}]),
  set("notifications", [{ kind: "webhook", url: "javascript:alert(1)" }]),
  set("agentToken", "short"),
  set("agentToken", 12345),
  set("agentToken", "t".repeat(257)),
  set("agentToken", ["t".repeat(40)]),
  rawField("intervalSec", "1e999"),
  rawField("fall", "-1e999"),
  rawField("probes", nest(20_000)),
  rawField("master", nest(500)),
];

const REPORT_BREAKERS: Breaker[] = [
  set("role", "master"),
  set("role", 1),
  set("role", null),
  drop("role"),
  set("mode", "x"),
  drop("mode"),
  ...numberBreakers("at", [-1, 1.5, 1e308 * 10 /* Infinity → null in JSON */]),
  drop("at"),
  set("lastAction", "x"),
  set("lastAction", { kind: "x", at: 1, ok: true, reason: "" }),
  drop("lastAction"),
  set("lastAction", { kind: "failover", at: -1, ok: true, reason: "r" }),
  set("lastAction", { kind: "failover", at: 1, ok: "yes", reason: "r" }),
  set("lastAction", { kind: "failover", at: 1, ok: true, reason: "r".repeat(2001) }),
  set("lan", { state: "bogus", probes: [] }),
  set("lan", "up"),
  drop("lan"),
  set("lan", {
    state: "up",
    probes: Array.from({ length: 33 }, (_, i) => ({ name: `p${i}`, ok: true, detail: "", rttMs: 1 })),
  }),
  set("lan", { state: "up", probes: [{ name: "p", ok: true, detail: "", rttMs: "1" }] }),
  ...numberBreakers("verdictSeq", [-1, 1.5], true),
  drop("verdictSeq"),
  set("alerts", "x"),
  set("alerts", [1]),
  set(
    "alerts",
    Array.from({ length: 21 }, () => "a"),
  ),
  set("alerts", ["a".repeat(2001)]),
  set("counters", { a: "x" }),
  set("counters", []),
  set("counters", { ["k".repeat(101)]: 1 }),
  set("agentVersion", 5),
  set("agentVersion", "v".repeat(51)),
  set("replication", { at: 1 }),
  set("replication", "ok"),
  rawField("at", "1e999"),
  rawField("role", nest(20_000)),
  rawField("alerts", nest(2000)),
  rawField("verdictSeq", "-0.5e1"),
];

const MAINTENANCE_BREAKERS: Breaker[] = [
  ...strict,
  (b, now) => ({ ...b, to: now - 60_000 }),
  (b, now) => ({ ...b, from: now + 7_200_000, to: now + 3_600_000 }),
  (b, now) => ({ ...b, from: now, to: now + 8 * 24 * 3_600_000 }),
  set("to", 9e15),
  set("to", 1e308),
  set("to", 2 ** 53 + 1),
  set("from", -1),
  set("from", 1.5),
  set("to", "tomorrow"),
  set("to", null),
  drop("to"),
  drop("reason"),
  set("reason", ""),
  set("reason", "   "),
  set("reason", "r".repeat(201)),
  set("reason", 5),
  set("reason", null),
  ...WRONG_NUMBERS.map((v) => set("to", v)),
  ...WRONG_NUMBERS.filter((v) => v !== null).map((v) => set("from", v)),
  rawField("to", "1e999"),
  rawField("from", nest(20_000)),
  rawField("to", "NaN"),
];

const NOT_JSON = ["", "{", "nul", "NaN", "undefined", "{'a':1}", "\u0000", '{"a":}', "<xml/>", "a=1&b=2", "\uFEFF"];
const NOT_OBJECT = ["null", "[]", "1", '"x"', "true", "1e999", "[{}]"];

interface BodySpec {
  kind: "config" | "report" | "maintenance";
  /** How the body was broken, for the report. */
  how: string;
}

function validBody(kind: BodySpec["kind"], now: number, agentToken: string): Obj {
  switch (kind) {
    case "config":
      return {
        master: { host: "127.0.0.1" },
        probes: [{ kind: "tcp", name: "pg", port: 9, timeoutMs: 200 }],
        intervalSec: 3600,
        agentToken,
      };
    case "report":
      return { role: "standby", mode: "auto", at: now, lastAction: null, lan: null, verdictSeq: null };
    case "maintenance":
      return { to: now + 3_600_000, reason: "fuzz" };
  }
}

const BREAKERS = { config: CONFIG_BREAKERS, report: REPORT_BREAKERS, maintenance: MAINTENANCE_BREAKERS };

/** Changes a refusal must not depend on: a schema that strips unknown keys accepts them. */
function extras(rng: Rng, body: Obj): Obj {
  const copy = { ...body };
  if (rng.chance(0.3)) copy.unknownField = rng.pick<Json>([1, "x", null, { deep: [1, 2] }]);
  return copy;
}

/**
 * A body the route must refuse: one breaking change at least (a wrong field, broken JSON, a
 * non-object, a body over the size limit), whatever else is added.
 */
function brokenBody(rng: Rng, kind: BodySpec["kind"], now: number, agentToken: string): { text: string; how: string } {
  const base = extras(rng, validBody(kind, now, agentToken));
  const roll = rng.next();
  if (roll < 0.1) {
    const text = JSON.stringify(base);
    const cut = rng.int(text.length);
    return { text: text.slice(0, cut), how: `truncated at ${cut}` };
  }
  if (roll < 0.17) return { text: rng.pick(NOT_JSON), how: "not JSON" };
  if (roll < 0.24) return { text: rng.pick(NOT_OBJECT), how: "not an object" };
  if (roll < 0.27) {
    // Over the 64 KiB limit: the padding alone must get it refused (413).
    const size = rng.pick([65_537, 70_000, 1_100_000]);
    const padded = JSON.stringify({ ...base, pad: "" });
    return { text: padded.replace('"pad":""', `"pad":"${"p".repeat(size - padded.length)}"`), how: `${size} bytes` };
  }
  const breakers = BREAKERS[kind];
  let body: Obj | string = base;
  const hows: string[] = [];
  const n = 1 + (rng.chance(0.3) ? 1 : 0);
  for (let i = 0; i < n && typeof body !== "string"; i++) {
    const k = rng.int(breakers.length);
    body = breakers[k]!(body, now);
    hows.push(`${kind} breaker #${k}`);
  }
  let text = typeof body === "string" ? body : JSON.stringify(body);
  if (rng.chance(0.05) && text.startsWith('{"')) {
    // A duplicate key: the last one wins in JSON.parse; still broken by the breaker above.
    text = `{"role":"standby",${text.slice(1)}`;
    hows.push("duplicate key");
  }
  return { text, how: hows.join(" + ") };
}

const CONTENT_TYPES: readonly (string | undefined)[] = [
  "application/json",
  "application/json",
  "application/json",
  undefined,
  "text/plain",
  "application/json; charset=utf-16",
  "multipart/form-data; boundary=x",
  "application/x-www-form-urlencoded",
  "application/json; charset=\u00ff",
  "*/*",
];

// ---- routes --------------------------------------------------------------------------------------

interface Route {
  name: string;
  path: (id: string) => string;
  /** The route's own methods; others are tried too. */
  methods: readonly string[];
  body?: BodySpec["kind"];
  /** Reaches /v1/clusters/:id once the server has resolved the dot segments or the empty one. */
  aliasOfCluster?: true;
}

const ROUTES: readonly Route[] = [
  { name: "ping", path: () => "/v1/ping", methods: ["GET"] },
  { name: "keys", path: () => "/v1/keys", methods: ["GET"] },
  { name: "openapi", path: () => "/openapi.json", methods: ["GET"] },
  { name: "clusters", path: () => "/v1/clusters", methods: ["GET"] },
  { name: "cluster", path: (id) => `/v1/clusters/${id}`, methods: ["GET", "PUT", "DELETE"], body: "config" },
  { name: "verdict", path: (id) => `/v1/clusters/${id}/verdict`, methods: ["GET"] },
  { name: "push", path: (id) => `/v1/clusters/${id}/push`, methods: ["GET"] },
  { name: "report", path: (id) => `/v1/clusters/${id}/report`, methods: ["POST"], body: "report" },
  { name: "events", path: (id) => `/v1/clusters/${id}/events`, methods: ["GET"] },
  { name: "uptime", path: (id) => `/v1/clusters/${id}/uptime`, methods: ["GET"] },
  { name: "deliveries", path: (id) => `/v1/clusters/${id}/deliveries`, methods: ["GET"] },
  {
    name: "maintenance",
    path: (id) => `/v1/clusters/${id}/maintenance`,
    methods: ["POST", "DELETE"],
    body: "maintenance",
  },
  { name: "status", path: (id) => `/status/${id}`, methods: ["GET"] },
  { name: "badge", path: (id) => `/badge/${id}` /* the id carries the .svg (generate) */, methods: ["GET"] },
  { name: "unknown", path: (id) => `/v1/clusters/${id}/nope`, methods: ["GET", "POST"] },
  { name: "unknown", path: (id) => `/v1/clusters/${id}/verdict/extra`, methods: ["GET"] },
  { name: "unknown", path: () => "/v1/nope", methods: ["GET"] },
  { name: "unknown", path: () => "/v2/clusters", methods: ["GET"] },
  { name: "unknown", path: () => "/", methods: ["GET"] },
  { name: "unknown", path: (id) => `/v1/clusters/${id}/`, methods: ["GET", "PUT"], body: "config" },
  { name: "unknown", path: (id) => `//v1/clusters/${id}`, methods: ["GET", "DELETE"], aliasOfCluster: true },
  { name: "unknown", path: (id) => `/v1/clusters/../clusters/${id}`, methods: ["GET", "DELETE"], aliasOfCluster: true },
  { name: "unknown", path: (id) => `/v1/clusters/${id}/..`, methods: ["GET", "DELETE"] },
];

const ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"] as const;
const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

// ---- a request -----------------------------------------------------------------------------------

export interface FuzzRequest {
  index: number;
  route: string;
  method: string;
  /** As sent on the wire, query included, tokens never in it (admin-in-query uses a placeholder). */
  path: string;
  auth: Auth;
  headers: Record<string, string>;
  body: string | null;
  bodyHow: string | null;
  /** Send the body with Transfer-Encoding: chunked (no Content-Length). */
  chunked: boolean;
}

/** The next request from `rng`; `tokens` and `now` are resolved at generation time (bodies are time-relative). */
export function generate(rng: Rng, index: number, tokens: Tokens, now: number): FuzzRequest {
  const route = rng.pick(ROUTES);
  const method = rng.chance(0.65) ? rng.pick(route.methods) : rng.pick(ALL_METHODS);
  const auth = rng.pick(AUTHS);
  // An agent token mostly with its own cluster, so requests get past the token to what lies behind.
  let id =
    auth === "agent-a" && rng.chance(0.5)
      ? CLUSTER_A
      : auth === "agent-b" && rng.chance(0.5)
        ? CLUSTER_B
        : rng.pick(IDS);
  if (route.name === "badge")
    id = rng.chance(0.85) ? `${id}.svg` : rng.pick([id, `${id}.SVG`, `${id}.svg.svg`, ".svg", `${id}.png`]);

  // The one refusal that depends on the target's absence: an admin DELETE of the cluster itself
  // (the scheme is case-insensitive; an id percent-encoded or behind `..` is the same cluster).
  const clusterPath = route.name === "cluster" || route.aliasOfCluster === true;
  if (method === "DELETE" && clusterPath && ADMIN_AUTHS.has(auth) && EXISTING.includes(safeDecode(id))) id = ABSENT;

  let path = route.path(id) + queryString(rng, route.name);
  if (auth === "admin-in-query") path += `${path.includes("?") ? "&" : "?"}token=ADMIN&access_token=ADMIN`;

  const headers: Record<string, string> = {};
  const header = authHeader(auth, tokens);
  if (header !== undefined) headers.authorization = header;
  if (route.name === "push" && rng.chance(0.5)) {
    const upgrade = rng.pick(["websocket", "WebSocket", "h2c", ""]);
    // A WebSocket upgrade only as a complete GET handshake: wrangler dev's proxy forwards with
    // fetch(), which makes any such request a fresh GET handshake, so the worker never sees another
    // method or a bad version, and the proxy then fails the 101 in plain text. The worker's own
    // refusals of those are tested on the request as the edge delivers it (test/worker/request-edges.test.ts).
    if (upgrade.toLowerCase() !== "websocket") headers.upgrade = upgrade;
    else if (method === "GET") {
      headers.upgrade = upgrade;
      headers.connection = "Upgrade";
      headers["sec-websocket-version"] = "13";
      headers["sec-websocket-key"] = Buffer.from(`fuzz-${index}`.padEnd(16, "x")).toString("base64");
    }
  }

  if (rng.chance(0.05)) headers["x-forwarded-for"] = "127.0.0.1, ::1, ../../";
  if (rng.chance(0.03)) headers["accept-encoding"] = rng.pick(["gzip, br", "deflate", "br;q=1, identity;q=0"]);

  let body: string | null = null;
  let bodyHow: string | null = null;
  const mutating = !SAFE_METHODS.has(method);
  const kind = route.body ?? (rng.chance(0.5) ? rng.pick(["config", "report", "maintenance"] as const) : null);
  if (mutating || rng.chance(0.05)) {
    if (kind && (mutating || rng.chance(0.5))) {
      const agentToken = rng.pick([tokens.agentA, tokens.agentB, "n".repeat(40)]);
      ({ text: body, how: bodyHow } = brokenBody(rng, kind, now, agentToken));
    } else if (rng.chance(0.7)) {
      body = rng.pick([...NOT_JSON, ...NOT_OBJECT, "{}"]);
      bodyHow = "junk";
    }
  }
  if (method === "HEAD") body = null; // node:http will not send one
  if (body !== null) {
    const type = rng.pick(CONTENT_TYPES);
    if (type !== undefined) headers["content-type"] = type;
  }
  const chunked = body !== null && body.length > 0 && rng.chance(0.2);
  return { index, route: route.name, method, path, auth, headers, body, bodyHow, chunked };
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** May this request change stored state if it is (wrongly) accepted? Then it must be refused. */
export const mustRefuse = (req: FuzzRequest) => !SAFE_METHODS.has(req.method);

// ---- sending ---------------------------------------------------------------------------------------

export interface FuzzResponse {
  status: number;
  contentType: string;
  body: Buffer;
}

const MAX_READ = 512 * 1024;
const TIMEOUT_MS = 20_000;

/** Sends as-is with node:http (fetch would normalise `..` and percent-encodings away). */
export function send(base: string, req: FuzzRequest, tokens: Tokens): Promise<FuzzResponse> {
  const url = new URL(base);
  const path = req.path.replaceAll("ADMIN", encodeURIComponent(tokens.admin));
  const headers: Record<string, string | number> = { ...req.headers };
  if (req.body !== null && !req.chunked) headers["content-length"] = Buffer.byteLength(req.body);
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (fn: () => void) => {
      if (!settled) {
        settled = true;
        fn();
      }
    };
    const r = http.request(
      { host: url.hostname, port: url.port, method: req.method, path, headers, agent: false, timeout: TIMEOUT_MS },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (c: Buffer) => {
          if (size < MAX_READ) chunks.push(c);
          size += c.length;
        });
        res.on("end", () =>
          finish(() => {
            try {
              const body = decode(String(res.headers["content-encoding"] ?? ""), Buffer.concat(chunks));
              resolve({ status: res.statusCode ?? 0, contentType: String(res.headers["content-type"] ?? ""), body });
            } catch (err) {
              reject(
                new Error(`undecodable ${String(res.headers["content-encoding"])} body: ${(err as Error).message}`),
              );
            }
          }),
        );
        res.on("error", (err) => finish(() => reject(err)));
      },
    );
    // A WebSocket handshake that succeeded: nothing more to read; close our end.
    r.on("upgrade", (res, socket) => {
      socket.destroy();
      finish(() => resolve({ status: res.statusCode ?? 101, contentType: "", body: Buffer.alloc(0) }));
    });
    r.on("timeout", () => r.destroy(new Error(`no answer within ${TIMEOUT_MS} ms`)));
    r.on("error", (err) => finish(() => reject(err)));
    if (req.body !== null) {
      if (req.chunked) {
        const buf = Buffer.from(req.body);
        for (let i = 0; i < buf.length; i += 16_384) r.write(buf.subarray(i, i + 16_384));
      } else r.write(req.body);
    }
    r.end();
  });
}

/** Longer than this without a ping answered counts as the worker having dropped out. */
export const STALL_MS = 2_000;

/** How long the worker takes to answer /v1/ping again (each try bounded, so a stall is measured, not waited out). */
export async function stallAfter(base: string): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < 60_000) {
    try {
      if ((await fetch(`${base}/v1/ping`, { signal: AbortSignal.timeout(STALL_MS) })).ok) return Date.now() - started;
    } catch {
      // not answering yet
    }
  }
  return Date.now() - started;
}

function decode(encoding: string, body: Buffer): Buffer {
  if (body.length === 0) return body;
  switch (encoding.trim().toLowerCase()) {
    case "":
    case "identity":
      return body;
    case "gzip":
      return zlib.gunzipSync(body);
    case "br":
      return zlib.brotliDecompressSync(body);
    case "deflate":
      return zlib.inflateSync(body);
    default:
      throw new Error(`unknown content-encoding ${encoding}`);
  }
}

// ---- checking ----------------------------------------------------------------------------------------

export type FindingKind = "5xx" | "dropped" | "error-shape" | "token-echoed" | "unexpected-2xx" | "state-changed";

export interface Finding {
  kind: FindingKind;
  detail: string;
  req?: FuzzRequest;
  status?: number;
}

const ERROR_KEYS = new Set(["code", "message", "field"]);

/** Whether `body` is `{"error":{code,message,field?}}` and nothing else; the reason when not. */
export function errorShapeProblem(contentType: string, body: Buffer): string | null {
  if (!/^application\/json\b/i.test(contentType))
    return `content-type ${JSON.stringify(contentType)}, not application/json`;
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString("utf8"));
  } catch {
    return "body is not JSON";
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return "body is not an object";
  const keys = Object.keys(parsed);
  if (keys.length !== 1 || keys[0] !== "error") return `top-level keys ${JSON.stringify(keys)}`;
  const error = (parsed as { error: unknown }).error;
  if (typeof error !== "object" || error === null) return "error is not an object";
  const e = error as Record<string, unknown>;
  if (typeof e.code !== "string" || e.code === "") return "error.code is not a non-empty string";
  if (typeof e.message !== "string" || e.message === "") return "error.message is not a non-empty string";
  if ("field" in e && typeof e.field !== "string") return "error.field is not a string";
  const extra = Object.keys(e).filter((k) => !ERROR_KEYS.has(k));
  return extra.length ? `unexpected error keys ${JSON.stringify(extra)}` : null;
}

export function check(req: FuzzRequest, res: FuzzResponse, tokens: Tokens): Finding[] {
  const out: Finding[] = [];
  const at = { req, status: res.status };
  if (res.status >= 500)
    out.push({ kind: "5xx", detail: `HTTP ${res.status}: ${res.body.toString("utf8", 0, 300)}`, ...at });
  if (mustRefuse(req) && res.status < 400)
    out.push({ kind: "unexpected-2xx", detail: `HTTP ${res.status} to a request that must be refused`, ...at });
  if (req.path.startsWith("/v1") && res.status >= 400 && req.method !== "HEAD") {
    const problem = errorShapeProblem(res.contentType, res.body);
    if (problem)
      out.push({
        kind: "error-shape",
        detail: `HTTP ${res.status}: ${problem}; body ${JSON.stringify(res.body.toString("utf8", 0, 200))}`,
        ...at,
      });
  }
  const text = res.body.toString("utf8");
  for (const [name, token] of Object.entries(tokens)) {
    if (text.includes(token)) out.push({ kind: "token-echoed", detail: `the ${name} token is in the response`, ...at });
  }
  return out;
}

// ---- stored state ------------------------------------------------------------------------------------

/** Events a probe round records on its own: they may come and go during the run. */
const ROUND_EVENTS = new Set(["verdict.changed", "master.down", "master.degraded", "master.up"]);

async function adminJson(
  base: string,
  admin: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; json: unknown }> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(TIMEOUT_MS),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : null };
}

/**
 * What no refused request may change: the cluster list, each known cluster's view less its
 * verdict (which moves with the probe rounds), and the history less round events.
 */
export async function snapshot(base: string, admin: string): Promise<Record<string, string>> {
  const parts: Record<string, string> = { list: JSON.stringify(await adminJson(base, admin, "GET", "/v1/clusters")) };
  for (const id of EXISTING) {
    const view = await adminJson(base, admin, "GET", `/v1/clusters/${id}`);
    const { verdict: _, ...rest } = (view.json ?? {}) as Record<string, unknown>;
    const events: unknown[] = [];
    for (let since = 0; ; ) {
      const page = await adminJson(base, admin, "GET", `/v1/clusters/${id}/events?since=${since}&limit=500`);
      if (page.status !== 200) {
        events.push(page); // a cluster gone, or the worker failing: the difference shows it
        break;
      }
      const { events: batch, next } = page.json as { events: { type: string }[]; next: number | null };
      events.push(...batch.filter((e) => !ROUND_EVENTS.has(e.type)));
      if (next === null) break;
      since = next;
    }
    parts[`${id} view`] = JSON.stringify({ status: view.status, view: rest });
    parts[`${id} events`] = JSON.stringify(events);
  }
  return parts;
}

/** The two known clusters: A private, B public with a scheduled (not yet active) maintenance window. */
export async function setUp(base: string, tokens: Tokens): Promise<void> {
  const now = Date.now();
  const common = {
    master: { host: "127.0.0.1" },
    probes: [{ kind: "tcp", name: "pg", port: 9, timeoutMs: 200 }],
    intervalSec: 3600,
    agentLostAfterSec: 86_400,
  };
  const a = await adminJson(base, tokens.admin, "PUT", `/v1/clusters/${CLUSTER_A}`, {
    ...common,
    agentToken: tokens.agentA,
  });
  const b = await adminJson(base, tokens.admin, "PUT", `/v1/clusters/${CLUSTER_B}`, {
    ...common,
    public: true,
    maintenance: [{ from: now + 86_400_000, to: now + 2 * 86_400_000, reason: "scheduled" }],
    agentToken: tokens.agentB,
  });
  if (a.status !== 201 || b.status !== 201) throw new Error(`setting up the clusters: HTTP ${a.status} / ${b.status}`);
  // The first round runs at once; wait for it so its events are in before the baseline.
  for (const id of EXISTING) {
    await until(
      `${id}'s first round`,
      async () => {
        const view = await adminJson(base, tokens.admin, "GET", `/v1/clusters/${id}`);
        return (view.json as { verdict: { seq: number } }).verdict.seq >= 1;
      },
      { timeoutMs: 30_000, everyMs: 100 },
    );
  }
}

// ---- the run -----------------------------------------------------------------------------------------

export interface FuzzRun {
  seed: number;
  sent: number;
  elapsedMs: number;
  /** "route METHOD status" → count. */
  counts: Map<string, number>;
  findings: Finding[];
}

export interface FuzzOptions {
  base: string;
  tokens: Tokens;
  seed: number;
  requests: number;
  concurrency?: number;
  /** Compare the stored state with the baseline every so many requests (and at the end). */
  checkEvery?: number;
  /** Stop after this many unallowed findings (a broken build should not take 10 000 requests to say so). */
  maxFindings?: number;
}

export async function fuzz(opts: FuzzOptions): Promise<FuzzRun> {
  const { base, tokens, seed, requests, concurrency = 6, checkEvery = 500, maxFindings = 50 } = opts;
  const rng = prng(seed);
  const counts = new Map<string, number>();
  const findings: Finding[] = [];
  const note = (f: Finding) => findings.push(f);
  const baseline = await snapshot(base, tokens.admin);
  const compare = async (after: number) => {
    let now: Record<string, string>;
    try {
      now = await snapshot(base, tokens.admin);
    } catch (err) {
      note({ kind: "dropped", detail: `reading the stored state after ${after} requests: ${(err as Error).message}` });
      return false;
    }
    const changed = Object.keys(baseline).filter((k) => baseline[k] !== now[k]);
    for (const k of changed)
      note({
        kind: "state-changed",
        detail: `${k}, found after ${after} requests:\n    was ${clip(baseline[k]!)}\n    now ${clip(now[k]!)}`,
      });
    return changed.length === 0;
  };

  const started = performance.now();
  let sent = 0;
  for (let batchStart = 0; batchStart < requests && findings.length < maxFindings; batchStart += checkEvery) {
    const batch = Array.from({ length: Math.min(checkEvery, requests - batchStart) }, (_, i) =>
      generate(rng, batchStart + i, tokens, Date.now()),
    );
    const one = async (req: FuzzRequest) => {
      try {
        const res = await send(base, req, tokens);
        const key = `${req.route} ${req.method} ${res.status}`;
        counts.set(key, (counts.get(key) ?? 0) + 1);
        check(req, res, tokens).forEach(note);
      } catch (err) {
        const key = `${req.route} ${req.method} dropped`;
        counts.set(key, (counts.get(key) ?? 0) + 1);
        note({ kind: "dropped", detail: (err as Error).message, req });
      }
      sent++;
    };
    let next = 0;
    const lane = async () => {
      while (next < batch.length) await one(batch[next++]!);
    };
    await Promise.all(Array.from({ length: concurrency }, lane));
    // One state difference says it all; later batches would only repeat it.
    if (!(await compare(sent))) break;
  }
  return { seed, sent, elapsedMs: performance.now() - started, counts, findings };
}

const clip = (s: string, n = 400) => (s.length > n ? `${s.slice(0, n)}… (${s.length} chars)` : s);

// ---- reporting ------------------------------------------------------------------------------------------

/** A request as a reproducer: tokens by name, long bodies abbreviated with their length. */
export function describeRequest(req: FuzzRequest): string {
  const headers = Object.entries(req.headers)
    .map(
      ([k, v]) =>
        `${k}: ${k === "authorization" ? `<${req.auth}>` : v.length > 120 ? `${v.slice(0, 120)}… (${v.length})` : v}`,
    )
    .join("; ");
  const path = req.path.length > 200 ? `${req.path.slice(0, 200)}… (${req.path.length} chars)` : req.path;
  const body =
    req.body === null
      ? ""
      : ` body(${req.body.length}${req.chunked ? ", chunked" : ""}${req.bodyHow ? `, ${req.bodyHow}` : ""}): ${JSON.stringify(req.body.slice(0, 160))}`;
  return `#${req.index} ${req.method} ${path} [${headers}]${body}`;
}

export function describeFinding(f: Finding): string {
  return `${f.kind}: ${f.detail}${f.req ? `\n    ${describeRequest(f.req)}` : ""}`;
}

/** Findings grouped by kind, route and method: one line per group with its first reproducer. */
export function summarise(findings: Finding[], limit = 20): string {
  const groups = new Map<string, Finding[]>();
  for (const f of findings) {
    const key = `${f.kind} ${f.req?.route ?? ""} ${f.req?.method ?? ""} ${f.status ?? ""}`;
    groups.set(key, [...(groups.get(key) ?? []), f]);
  }
  return [...groups.entries()]
    .slice(0, limit)
    .map(([key, fs]) => `${key} ×${fs.length}\n  ${describeFinding(fs[0]!)}`)
    .join("\n");
}

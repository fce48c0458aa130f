import { createServer, type ServerResponse } from "node:http";
import { hostPort } from "./lan/common.js";

/**
 * The daemon's local HTTP endpoint (health, metrics, status for monitoring on the slave): GET
 * only, a fixed table of paths, nothing read from the request but its method and path.
 */

export type Reply = { status: number; json: unknown } | { status: number; contentType: string; text: string };

/** Path (without query) → what answers it. */
export type Routes = Record<string, () => Reply | Promise<Reply>>;

export interface LocalHttp {
  url: string;
  close(): Promise<void>;
}

async function serveLocal(host: string, port: number, routes: Routes): Promise<LocalHttp> {
  const server = createServer(async (req, res) => {
    const path = (req.url ?? "/").split("?")[0]!;
    if (req.method !== "GET") return send(res, { status: 405, json: { error: "GET only" } });
    const route = Object.hasOwn(routes, path) ? routes[path] : undefined;
    send(res, route ? await route() : { status: 404, json: { error: "not found" } });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  const addr = server.address() as { port: number };
  return {
    url: `http://${hostPort(host, addr.port)}`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** How long a taken status port is left before the next attempt to bind it. */
const LOCAL_HTTP_RETRY_MS = 5_000;

/** The status endpoint as the daemon keeps it: bound when it can be, retried when it cannot. */
export interface KeptLocalHttp {
  url(): string | null;
  /** Why the endpoint is not serving (e.g. the port is taken), for the report's alerts; null while it serves. */
  problem(): string | null;
  /** Resolves once the attempt in progress (the first, at start) is over. */
  ready(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Binds the status endpoint without ever failing: HA must not depend on a monitoring port. A
 * port another process holds is logged as an error and reported, and binding is retried every
 * `retryMs` until it works; meanwhile the daemon decides and acts as usual.
 */
export function keepServingLocal(
  host: string,
  port: number,
  routes: Routes,
  log: (event: string, fields: Record<string, unknown>, level?: "info" | "warn" | "error") => void,
  retryMs = LOCAL_HTTP_RETRY_MS,
): KeptLocalHttp {
  let served: LocalHttp | null = null;
  let problem: string | null = null;
  let closed = false;
  let timer: NodeJS.Timeout | null = null;
  let attempt: Promise<void> = Promise.resolve();
  const tryBind = async () => {
    try {
      const s = await serveLocal(host, port, routes);
      if (closed) return void (await s.close());
      served = s;
      if (problem) log("http.listening", { url: s.url, after: problem });
      problem = null;
    } catch (err) {
      const error = (err as Error).message;
      if (problem === null) {
        log(
          "http.unavailable",
          {
            host,
            port,
            error,
            retryInMs: retryMs,
            impact: "health, metrics and status are not served; failover is not affected",
          },
          "error",
        );
      }
      problem = `local status endpoint ${host}:${port} unavailable (${error}); retrying every ${retryMs / 1000} s`;
      if (!closed) timer = setTimeout(() => void (attempt = tryBind()), retryMs);
    }
  };
  attempt = tryBind();
  return {
    url: () => served?.url ?? null,
    problem: () => problem,
    async ready() {
      await attempt;
    },
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      await attempt;
      await served?.close();
    },
  };
}

function send(res: ServerResponse, reply: Reply): void {
  if ("json" in reply) {
    res.writeHead(reply.status, { "content-type": "application/json" });
    res.end(JSON.stringify(reply.json));
  } else {
    res.writeHead(reply.status, { "content-type": reply.contentType });
    res.end(reply.text);
  }
}

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

export async function serveLocal(host: string, port: number, routes: Routes): Promise<LocalHttp> {
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

function send(res: ServerResponse, reply: Reply): void {
  if ("json" in reply) {
    res.writeHead(reply.status, { "content-type": "application/json" });
    res.end(JSON.stringify(reply.json));
  } else {
    res.writeHead(reply.status, { "content-type": reply.contentType });
    res.end(reply.text);
  }
}

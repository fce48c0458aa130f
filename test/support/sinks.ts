// Loopback webhook sinks for the notification tests, plus a small HTTP control server to create
// and read them (the worker runs in workerd, which cannot listen: the sinks live in Node, like
// targets.ts). Everything binds to 127.0.0.1. Each sink answers from a script of responses, one
// per request, then its default; it records every request, and verifies Standard Webhooks
// signatures in Node with the `standardwebhooks` package when given the secret.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Webhook } from "standardwebhooks";
import type { z } from "zod";
import { type SinkBehaviour, SinkCreate, type SinkInfo, type SinkRequest } from "./sink-client.js";

const HOST = "127.0.0.1";
const MAX_BODY = 1024 * 1024;

export interface SinkControl {
  port: number;
  close(): Promise<void>;
}

class Sink {
  readonly requests: SinkRequest[] = [];
  private readonly hanging = new Set<http.ServerResponse>();
  readonly server: http.Server;

  constructor(
    readonly name: string,
    private readonly script: z.infer<typeof SinkBehaviour>[],
    private readonly fallback: z.infer<typeof SinkBehaviour>,
    private readonly secret: string | undefined,
  ) {
    this.server = http.createServer((req, res) => void this.handle(req, res));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req as AsyncIterable<Buffer>) chunks.push(c);
    const body = Buffer.concat(chunks).toString("utf8").slice(0, MAX_BODY);
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (typeof v === "string") headers[k] = v;
    let verified: boolean | null = null;
    if (this.secret) {
      try {
        new Webhook(this.secret).verify(body, headers);
        verified = true;
      } catch {
        verified = false;
      }
    }
    const behaviour = this.script.shift() ?? this.fallback;
    this.requests.push({
      at: Date.now(),
      method: req.method ?? "",
      headers,
      body,
      verified,
      answered: behaviour.hang ? "hang" : behaviour.status,
    });
    if (behaviour.hang) {
      this.hanging.add(res); // never answered; closed with the sink
      return;
    }
    const out: Record<string, string> = { "content-type": "text/plain" };
    if (behaviour.retryAfter !== undefined) out["retry-after"] = behaviour.retryAfter;
    res.writeHead(behaviour.status, out).end(behaviour.body ?? "");
  }

  info(): SinkInfo {
    return { name: this.name, port: (this.server.address() as AddressInfo).port, requests: this.requests };
  }

  async close(): Promise<void> {
    for (const r of this.hanging) r.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** Starts the control server: POST /sinks, GET /sinks/:name, DELETE /sinks/:name. */
export async function startSinkControl(): Promise<SinkControl> {
  const sinks = new Map<string, Sink>();
  let seq = 0;
  const send = (res: http.ServerResponse, status: number, body?: unknown) => {
    if (body === undefined) return void res.writeHead(status).end();
    res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
  };
  const server = http.createServer((req, res) => {
    void (async () => {
      const parts = new URL(req.url ?? "/", `http://${HOST}`).pathname.split("/").filter(Boolean);
      if (parts[0] !== "sinks") return send(res, 404, { error: "no such route" });
      if (parts.length === 1 && req.method === "POST") {
        const chunks: Buffer[] = [];
        for await (const c of req as AsyncIterable<Buffer>) chunks.push(c);
        let raw: unknown;
        try {
          raw = JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}");
        } catch {
          return send(res, 400, { error: "body: not JSON" });
        }
        const parsed = SinkCreate.safeParse(raw);
        if (!parsed.success) return send(res, 400, { error: parsed.error.message });
        const sink = new Sink(`sink-${++seq}`, [...parsed.data.script], parsed.data.then, parsed.data.secret);
        await new Promise<void>((resolve) => sink.server.listen(0, HOST, resolve));
        sinks.set(sink.name, sink);
        return send(res, 201, sink.info());
      }
      const sink = sinks.get(parts[1] ?? "");
      if (!sink) return send(res, 404, { error: "unknown sink" });
      if (req.method === "GET") return send(res, 200, sink.info());
      if (req.method === "DELETE") {
        sinks.delete(sink.name);
        await sink.close();
        return send(res, 204);
      }
      return send(res, 405, { error: "method" });
    })().catch((err: unknown) => send(res, 500, { error: String(err) }));
  });
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  return {
    port: (server.address() as AddressInfo).port,
    async close() {
      await Promise.all([...sinks.values()].map((s) => s.close()));
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

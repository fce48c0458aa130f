// A stand-in for the edge worker on loopback, steered by the test: node:http for the verdict
// endpoint, a `ws` server for the push socket. It signs with a key of its own (or any other) so
// tests can serve authentic, forged, replayed, stale or malformed verdicts at will.
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { WebSocketServer, type WebSocket } from "ws";
import { generateSigningKey, importSigner, type PublicJwk, type Signer } from "../../../protocol/signing.js";
import type { Verdict } from "../../../protocol/verdict.js";

export interface PollRequestSeen {
  nonce: string | null;
  authorization: string | undefined;
  clusterId: string;
}

export type Reply = { status: number; body: string; delayMs?: number };

export interface FakeWorker {
  url: string;
  signer: Signer;
  publicJwk: PublicJwk;
  /** Answers GET /v1/clusters/:id/verdict. Default: 503. */
  onPoll: (req: PollRequestSeen) => Reply | Promise<Reply>;
  /** Decides an upgrade on /v1/clusters/:id/push: a Reply refuses it, null accepts it. */
  onUpgrade: (req: { authorization: string | undefined; clusterId: string }) => Reply | null;
  /** Called with each accepted socket (e.g. to send the verdict at connect, like the worker). */
  onConnect: (ws: WebSocket) => void;
  readonly polls: PollRequestSeen[];
  readonly upgrades: number;
  readonly sockets: ReadonlySet<WebSocket>;
  /** Sends a text (or binary) frame to every connected agent. */
  send(data: string | Buffer): void;
  /** Kills every agent socket abruptly (no close frame). */
  dropAll(): void;
  close(): Promise<void>;
}

export async function startFakeWorker(): Promise<FakeWorker> {
  const key = await generateSigningKey();
  const signer = await importSigner(key.private);
  const polls: PollRequestSeen[] = [];
  const sockets = new Set<WebSocket>();
  let upgrades = 0;
  const wss = new WebSocketServer({ noServer: true });

  const fake: FakeWorker = {
    url: "",
    signer,
    publicJwk: key.public,
    onPoll: () => ({ status: 503, body: JSON.stringify({ error: { code: "no_verdict", message: "not yet" } }) }),
    onUpgrade: () => null,
    onConnect: () => {},
    polls,
    get upgrades() {
      return upgrades;
    },
    sockets,
    send(data) {
      for (const ws of sockets) ws.send(data);
    },
    dropAll() {
      for (const ws of sockets) ws.terminate();
    },
    async close() {
      for (const ws of sockets) ws.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    const m = /^\/v1\/clusters\/([^/]+)\/verdict$/.exec(url.pathname);
    if (req.method !== "GET" || !m) {
      res
        .writeHead(404, { "content-type": "application/json" })
        .end('{"error":{"code":"not_found","message":"no route"}}');
      return;
    }
    const seen: PollRequestSeen = {
      nonce: url.searchParams.get("nonce"),
      authorization: req.headers.authorization,
      clusterId: decodeURIComponent(m[1]!),
    };
    polls.push(seen);
    Promise.resolve(fake.onPoll(seen))
      .then(async (reply) => {
        if (reply.delayMs) await new Promise((r) => setTimeout(r, reply.delayMs));
        if (!res.destroyed) res.writeHead(reply.status, { "content-type": "application/json" }).end(reply.body);
      })
      .catch(() => res.destroy());
  });

  server.on("upgrade", (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    upgrades++;
    const m = /^\/v1\/clusters\/([^/]+)\/push$/.exec(new URL(req.url ?? "/", "http://127.0.0.1").pathname);
    const refusal = m
      ? fake.onUpgrade({ authorization: req.headers.authorization, clusterId: decodeURIComponent(m[1]!) })
      : { status: 404, body: '{"error":{"code":"not_found","message":"no route"}}' };
    if (refusal) {
      socket.end(
        `HTTP/1.1 ${refusal.status} Refused\r\ncontent-type: application/json\r\n` +
          `content-length: ${Buffer.byteLength(refusal.body)}\r\nconnection: close\r\n\r\n${refusal.body}`,
      );
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      sockets.add(ws);
      ws.on("close", () => sockets.delete(ws));
      ws.on("error", () => {});
      fake.onConnect(ws);
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return fake;
}

/** A verdict as the worker would sign it; fields override the defaults. */
export function makeVerdict(fields: Partial<Verdict> & { clusterId: string; seq: number }): Verdict {
  const now = Date.now();
  return {
    v: 1,
    state: "up",
    since: now - 60_000,
    reason: "all probes answered",
    issuedAt: now,
    ageMs: 100,
    lastRound: null,
    nonce: null,
    maintenance: null,
    ...fields,
  };
}

export const ok = (body: unknown): Reply => ({ status: 200, body: JSON.stringify(body) });

/** The push frame carrying a signed verdict. */
export async function pushFrame(signer: Signer, v: Verdict): Promise<string> {
  return JSON.stringify({ type: "verdict", envelope: await signer.sign(v) });
}

import http from "node:http";
import type { AddressInfo } from "node:net";
import WebSocket, { WebSocketServer } from "ws";
import type { Verdict } from "../../protocol/verdict.js";

/**
 * A man in the middle between the agent and the worker, on loopback: every HTTP request goes on
 * to the real worker, and the push WebSocket is relayed frame by frame both ways. It keeps the
 * signed verdicts it sees pass (poll answers and push frames, exactly as sent) and, on command,
 * plays an attacker who has them: sends one again on the push channel, answers the agent's polls
 * with an old answer, or keeps the push channel shut so that the agent has to poll.
 */
export interface Seen {
  channel: "push" | "poll";
  /** The exact text that passed: a push frame, or a poll answer's body. */
  text: string;
  /** Its signed payload, decoded (not verified: that is the agent's job). */
  verdict: Verdict;
}

export interface Mitm {
  url: string;
  seen: Seen[];
  /** Open push connections (agent side). */
  pushSockets(): number;
  /** Sends `text` to the agent on every open push connection, as if from the worker. */
  injectPush(text: string): void;
  /** While set, verdict polls are answered with this body (200) instead of the worker's. */
  answerPolls(body: string | null): void;
  /** While on, push connections are dropped and upgrades refused (503). */
  blockPush(on: boolean): void;
  close(): Promise<void>;
}

export async function startMitm(workerUrl: string): Promise<Mitm> {
  const upstream = new URL(workerUrl);
  const seen: Seen[] = [];
  const agents = new Set<WebSocket>();
  let pollAnswer: string | null = null;
  let blocked = false;
  const record = (channel: Seen["channel"], text: string) => {
    try {
      const json = JSON.parse(text) as { payload?: string; envelope?: { payload: string } };
      const payload = channel === "push" ? json.envelope?.payload : json.payload;
      if (payload) seen.push({ channel, text, verdict: JSON.parse(payload) as Verdict });
    } catch {
      // not a verdict (an error frame or body): nothing to keep
    }
  };

  const server = http.createServer((req, res) => {
    const poll = req.method === "GET" && /^\/v1\/clusters\/[^/]+\/verdict(\?|$)/.test(req.url ?? "");
    if (poll && pollAnswer !== null) {
      req.resume();
      res.writeHead(200, { "content-type": "application/json" });
      return res.end(pollAnswer);
    }
    const out = http.request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: upstream.host, "accept-encoding": "identity" },
      }, // readable bodies
      (up) => {
        const chunks: Buffer[] = [];
        up.on("data", (c: Buffer) => chunks.push(c));
        up.on("end", () => {
          const body = Buffer.concat(chunks);
          if (poll && up.statusCode === 200) record("poll", body.toString("utf8"));
          const { connection: _c, "keep-alive": _k, "transfer-encoding": _t, ...headers } = up.headers;
          res.writeHead(up.statusCode ?? 502, { ...headers, "content-length": body.length });
          res.end(body);
        });
      },
    );
    out.on("error", () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    req.pipe(out);
  });

  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  server.on("upgrade", (req, socket, head) => {
    socket.on("error", () => socket.destroy());
    if (blocked) {
      socket.end(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}",
      );
      return;
    }
    // The worker side first, so that a refused upgrade is refused to the agent the same way.
    const up = new WebSocket(`ws://${upstream.host}${req.url}`, {
      headers: { authorization: req.headers.authorization ?? "" },
      perMessageDeflate: false,
    });
    let agent: WebSocket | null = null;
    const early: string[] = []; // the worker's connect-time verdict may beat the agent side's handshake
    up.on("message", (data, isBinary) => {
      const text = isBinary ? null : data.toString();
      if (text === null) return;
      record("push", text);
      if (agent) agent.send(text);
      else early.push(text);
    });
    up.on("unexpected-response", (_r, res) => {
      socket.end(`HTTP/1.1 ${res.statusCode ?? 502} Refused\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`);
      up.terminate();
    });
    up.on("error", () => (agent ? agent.terminate() : socket.destroy()));
    up.on("close", () => (agent ? agent.close() : socket.destroy()));
    up.once("open", () =>
      wss.handleUpgrade(req, socket, head, (ws) => {
        agent = ws;
        agents.add(ws);
        for (const t of early.splice(0)) ws.send(t);
        ws.on("message", (d, isBinary) => up.readyState === WebSocket.OPEN && up.send(d, { binary: isBinary }));
        ws.on("error", () => ws.terminate());
        ws.on("close", () => {
          agents.delete(ws);
          up.terminate();
        });
      }),
    );
  });

  await new Promise<void>((resolve, reject) => server.once("error", reject).listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    pushSockets: () => agents.size,
    injectPush(text) {
      for (const ws of agents) ws.send(text);
    },
    answerPolls(body) {
      pollAnswer = body;
    },
    blockPush(on) {
      blocked = on;
      if (on) for (const ws of agents) ws.terminate();
    },
    async close() {
      for (const ws of agents) ws.terminate();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

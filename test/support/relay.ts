import net from "node:net";

/**
 * A loopback TCP relay in front of a server, so a test can cut a link (agent → worker,
 * replication → master) or freeze a replication run at an exact point of its stream (after N
 * bytes from the master, i.e. mid-COPY) and then terminate a backend, abort, or cut the
 * network. No timing involved.
 */
export interface Relay {
  port: number;
  /** Resolves once the master → client direction has passed `bytes` more bytes and is frozen. */
  freezeAfter(bytes: number): Promise<void>;
  resume(): void;
  /** Drops every relayed connection at once, both sides, as a cut cable would. */
  cut(): void;
  close(): Promise<void>;
}

export async function startRelay(targetPort: number, host = "127.0.0.1"): Promise<Relay> {
  const pairs = new Set<{ client: net.Socket; upstream: net.Socket }>();
  let budget = Infinity;
  let onFrozen: (() => void) | null = null;
  const frozen: net.Socket[] = [];

  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, host);
    const pair = { client, upstream };
    pairs.add(pair);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      pairs.delete(pair);
    };
    client.on("error", drop).on("close", drop);
    upstream.on("error", drop).on("close", drop);
    client.pipe(upstream);
    upstream.on("data", (chunk: Buffer) => {
      if (!client.write(chunk)) {
        upstream.pause();
        client.once("drain", () => {
          if (!frozen.includes(upstream)) upstream.resume();
        });
      }
      budget -= chunk.length;
      if (budget <= 0 && onFrozen) {
        upstream.pause();
        frozen.push(upstream);
        const done = onFrozen;
        onFrozen = null;
        done();
      }
    });
  });
  await new Promise<void>((resolve, reject) => server.once("error", reject).listen(0, host, resolve));
  const port = (server.address() as net.AddressInfo).port;

  const relay: Relay = {
    port,
    freezeAfter(bytes) {
      budget = bytes;
      return new Promise((resolve) => (onFrozen = resolve));
    },
    resume() {
      budget = Infinity;
      for (const s of frozen.splice(0)) s.resume();
    },
    cut() {
      for (const { client, upstream } of pairs) {
        client.destroy();
        upstream.destroy();
      }
      pairs.clear();
    },
    async close() {
      relay.cut();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return relay;
}

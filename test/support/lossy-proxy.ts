// A lossy path for tests and benchmarks: a loopback TCP proxy in front of a real service that
// drops a chosen fraction of connections, picked by a seeded generator so runs can be replayed.
// Node only; binds 127.0.0.1 and forwards only to the loopback target it is given.
import net from "node:net";
import { seededRandom } from "./random.js";

/**
 * How a dropped connection looks to the prober:
 * - `reset`: accepted, then reset (RST) at once: a connection lost with an ICMP error or a
 *   middlebox reset; the prober fails fast and can retry at once.
 * - `blackhole`: accepted, then never answered and never closed: a lost request or reply, or a
 *   lost SYN as an application sees it (the kernel here completes the handshake, so only a
 *   prober that waits for an answer — SIP OPTIONS, HTTP — notices; a bare TCP-connect probe
 *   does not). The prober waits for its timeout.
 */
export type DropStyle = "reset" | "blackhole";

export interface LossyProxyOptions {
  /** Where kept connections go: a loopback service (127.0.0.0/8). */
  target: { host: string; port: number };
  /** Fraction of connections dropped, 0..1. */
  loss: number;
  drop?: DropStyle;
  /** Seed of the drop sequence: the same seed drops the same connections (by arrival order). */
  seed?: number;
}

export interface LossyProxyStats {
  accepted: number;
  dropped: number;
}

export interface LossyProxy {
  readonly port: number;
  /** Changes the loss and/or the drop style for connections accepted from now on. */
  set(opts: { loss?: number; drop?: DropStyle }): void;
  stats(): LossyProxyStats;
  close(): Promise<void>;
}

function checkLoss(loss: number): number {
  if (!(loss >= 0 && loss <= 1)) throw new RangeError(`loss must be within 0..1, got ${loss}`);
  return loss;
}

function reset(s: net.Socket): void {
  if (s.destroyed) return;
  try {
    s.resetAndDestroy();
  } catch {
    s.destroy(); // not connected yet: nothing to reset
  }
}

export async function startLossyProxy(opts: LossyProxyOptions): Promise<LossyProxy> {
  if (!opts.target.host.startsWith("127."))
    throw new Error(`the lossy proxy forwards to loopback only, not ${opts.target.host}`);
  let loss = checkLoss(opts.loss);
  let drop: DropStyle = opts.drop ?? "reset";
  const random = seededRandom(opts.seed ?? 1);
  const stats: LossyProxyStats = { accepted: 0, dropped: 0 };
  const open = new Set<net.Socket>();
  const track = (s: net.Socket) => {
    open.add(s);
    s.on("close", () => open.delete(s));
    s.on("error", () => s.destroy()); // resets from either side are part of the game
  };

  const server = net.createServer((client) => {
    stats.accepted++;
    track(client);
    // One draw per connection, whatever the loss: the sequence depends on the seed alone.
    if (random() < loss) {
      stats.dropped++;
      if (drop === "reset") return void client.resetAndDestroy();
      return void client.resume(); // read and discard, never answer
    }
    const upstream = net.connect({ host: opts.target.host, port: opts.target.port });
    track(upstream);
    client.pipe(upstream);
    upstream.pipe(client);
    // A reset on one side is passed on as a reset, a close as a close.
    upstream.on("error", () => reset(client));
    client.on("error", () => reset(upstream));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host: "127.0.0.1", port: 0, exclusive: true }, () => resolve());
  });
  const address = server.address() as net.AddressInfo;
  return {
    port: address.port,
    set(change) {
      if (change.loss !== undefined) loss = checkLoss(change.loss);
      if (change.drop !== undefined) drop = change.drop;
    },
    stats: () => ({ ...stats }),
    async close() {
      for (const s of open) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

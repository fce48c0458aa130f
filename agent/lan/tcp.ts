import net from "node:net";
import type { LanTcpProbe } from "./config.js";
import type { ProbeContext } from "./common.js";

/**
 * Opens a TCP connection, hands it to `use`, and always destroys it afterwards, or as soon as
 * the probe's deadline fires. Connection errors reject with the socket's errno error.
 */
export async function withTcp<T>(
  host: string,
  port: number,
  ctx: ProbeContext,
  use: (socket: net.Socket) => Promise<T>,
): Promise<T> {
  const socket = net.connect({ host, port });
  socket.on("error", () => undefined); // reported through the promises below, never as a crash
  const destroy = () => socket.destroy();
  ctx.signal.addEventListener("abort", destroy, { once: true });
  try {
    ctx.note = "connecting";
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
      socket.once("close", () => reject(new Error("socket closed while connecting")));
    });
    return await use(socket);
  } finally {
    ctx.signal.removeEventListener("abort", destroy);
    socket.destroy();
  }
}

export async function probeTcp(p: LanTcpProbe, host: string, ctx: ProbeContext): Promise<string> {
  return withTcp(host, p.port, ctx, async () => `connected to port ${p.port}`);
}

import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LossyProxy, startLossyProxy } from "../support/lossy-proxy.js";

// The lossy path the benchmarks stand on: a real echo server on loopback behind the proxy.
let echo: net.Server;
let echoPort: number;
const echoed = new Set<net.Socket>();
const proxies: LossyProxy[] = [];

beforeAll(async () => {
  echo = net.createServer((s) => {
    echoed.add(s);
    s.on("close", () => echoed.delete(s));
    s.on("error", () => s.destroy());
    s.pipe(s);
  });
  await new Promise<void>((r) => echo.listen({ host: "127.0.0.1", port: 0 }, () => r()));
  echoPort = (echo.address() as net.AddressInfo).port;
});
afterAll(async () => {
  await Promise.all(proxies.map((p) => p.close()));
  for (const s of echoed) s.destroy();
  await new Promise<void>((r) => echo.close(() => r()));
});

async function proxy(loss: number, drop: "reset" | "blackhole", seed: number): Promise<LossyProxy> {
  const p = await startLossyProxy({ target: { host: "127.0.0.1", port: echoPort }, loss, drop, seed });
  proxies.push(p);
  return p;
}

/** One connection through the proxy: "echo" when the bytes come back, else how it failed. */
function exchange(port: number, waitMs = 2000): Promise<"echo" | "reset" | "silent"> {
  return new Promise((resolve) => {
    const s = net.connect({ host: "127.0.0.1", port });
    const done = (r: "echo" | "reset" | "silent") => {
      clearTimeout(timer);
      s.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => done("silent"), waitMs);
    s.on("connect", () => s.write("ping"));
    s.on("data", () => done("echo"));
    s.on("error", () => done("reset"));
    s.on("close", () => done("reset"));
  });
}

describe("lossy proxy", () => {
  it("drops about the given fraction of connections, with a reset, the same ones for the same seed", async () => {
    const a = await proxy(0.2, "reset", 42);
    const b = await proxy(0.2, "reset", 42);
    const runA: string[] = [];
    const runB: string[] = [];
    for (let i = 0; i < 400; i++) {
      runA.push(await exchange(a.port));
      runB.push(await exchange(b.port));
    }
    const resets = runA.filter((r) => r === "reset").length;
    expect(runA.every((r) => r !== "silent")).toBe(true);
    expect(resets).toBe(a.stats().dropped);
    expect(a.stats().accepted).toBe(400);
    expect(resets / 400).toBeGreaterThan(0.15);
    expect(resets / 400).toBeLessThan(0.25);
    expect(runB).toEqual(runA);
  });

  it("loss 0 forwards everything; blackhole keeps the connection open and silent", async () => {
    const p = await proxy(0, "blackhole", 1);
    for (let i = 0; i < 20; i++) expect(await exchange(p.port)).toBe("echo");
    p.set({ loss: 1 });
    expect(await exchange(p.port, 500)).toBe("silent");
    p.set({ drop: "reset" });
    expect(await exchange(p.port)).toBe("reset");
    expect(p.stats()).toEqual({ accepted: 22, dropped: 2 });
  });

  it("refuses a loss outside 0..1 and a non-loopback target", async () => {
    await expect(proxy(1.5, "reset", 1)).rejects.toThrow(/loss must be within 0..1/);
    await expect(startLossyProxy({ target: { host: "10.0.0.1", port: 5060 }, loss: 0 })).rejects.toThrow(
      /loopback only/,
    );
  });
});

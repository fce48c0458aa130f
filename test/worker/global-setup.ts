// Global setup of the "worker" project: the loopback probe targets live in Node (workerd cannot
// listen), so start their control server here and hand its port to the tests via inject().
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { TestProject } from "vitest/node";
import { startSinkControl } from "../support/sinks.js";
import { startTargetControl } from "../support/targets.js";

declare module "vitest" {
  export interface ProvidedContext {
    targetControl: number;
    /** Webhook sinks for the notification tests (test/support/sinks.ts). */
    sinkControl: number;
    /** A loopback stand-in for Cloudflare's /cdn-cgi/trace (the vantages' TRACE_URL): colo=TST. */
    traceUrl: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const control = await startTargetControl();
  project.provide("targetControl", control.port);
  const sinks = await startSinkControl();
  project.provide("sinkControl", sinks.port);
  const trace = http.createServer((_req, res) => res.end("fl=1\nh=edge.test\ncolo=TST\nloc=XX\n"));
  await new Promise<void>((resolve) => trace.listen(0, "127.0.0.1", resolve));
  project.provide("traceUrl", `http://127.0.0.1:${(trace.address() as AddressInfo).port}/cdn-cgi/trace`);
  return async () => {
    trace.closeAllConnections();
    await new Promise((resolve) => trace.close(resolve));
    await sinks.close();
    await control.close();
  };
}

// Global setup of the "worker" project: the loopback probe targets live in Node (workerd cannot
// listen), so start their control server here and hand its port to the tests via inject().
import type { TestProject } from "vitest/node";
import { startSinkControl } from "../support/sinks.js";
import { startTargetControl } from "../support/targets.js";

declare module "vitest" {
  export interface ProvidedContext {
    targetControl: number;
    /** Webhook sinks for the notification tests (test/support/sinks.ts). */
    sinkControl: number;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const control = await startTargetControl();
  project.provide("targetControl", control.port);
  const sinks = await startSinkControl();
  project.provide("sinkControl", sinks.port);
  return async () => {
    await sinks.close();
    await control.close();
  };
}

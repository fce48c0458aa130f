import { buildApp } from "./app.js";
import { rearmOverdue } from "./cron.js";
import type { Env } from "./env.js";

export { ClusterMonitor } from "./cluster.js";
export { Registry } from "./registry.js";
export { Vantage } from "./vantage.js";

const app = buildApp();
/** The scale bench's app: the same routes and one test-only route. Built only when its config asks. */
let benchApp: ReturnType<typeof buildApp> | undefined;

export default {
  fetch(request: Request, env: Env, ctx: ExecutionContext) {
    if (env.TEST_ALARM_DROP !== "enabled") return app.fetch(request, env, ctx);
    benchApp ??= buildApp({ testRoutes: true });
    return benchApp.fetch(request, env, ctx);
  },
  // Awaited, not left to waitUntil: the run's end is the invocation's, which the scale bench times.
  async scheduled(controller, env, _ctx) {
    await rearmOverdue(env, controller.scheduledTime);
  },
} satisfies ExportedHandler<Env>;

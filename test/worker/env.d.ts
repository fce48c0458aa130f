// The bindings the tests see are the worker's own (wrangler.toml + secrets set in vitest.config.ts).
type WorkerEnv = import("../../worker/env.js").Env;
declare namespace Cloudflare {
  interface Env extends WorkerEnv {}
}

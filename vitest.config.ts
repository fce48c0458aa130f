import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";
import { testSecrets } from "./test/support/secrets.js";
import type {} from "./test/worker/global-setup.js"; // its ProvidedContext: what `inject` returns

// Two runtimes, one command: the worker's tests run inside workerd (miniflare), the agent's and
// the cross-runtime checks in plain Node. Loopback targets for the probes are started in Node by
// the worker project's global setup and handed to the tests with `inject`.
const secrets = await testSecrets();

export default defineConfig({
  test: {
    projects: [
      {
        plugins: [
          cloudflareTest(({ inject }) => ({
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: {
              bindings: {
                ADMIN_TOKEN: secrets.adminToken,
                SIGNING_KEY: secrets.signingKey,
                // Test-only (never in wrangler.toml): locally every vantage runs in one place, so
                // these give named vantages their own view of the master (test/worker/vantages.test.ts).
                TRACE_URL: inject("traceUrl"),
                VANTAGE_HOST_OVERRIDES: JSON.stringify({ "dead-1": "127.0.0.9", "dead-2": "127.0.0.9" }),
                VANTAGE_TEST_FAULTS: JSON.stringify({ "mute-1": "hang", "mute-2": "throw" }),
              },
            },
          })),
        ],
        test: {
          name: "worker",
          include: ["test/worker/**/*.test.ts"],
          globalSetup: ["./test/worker/global-setup.ts"],
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: "node",
          environment: "node",
          include: ["test/node/**/*.test.ts", "test/agent/**/*.test.ts", "test/faults/**/*.test.ts"],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
});

import path from "node:path";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { importSigner } from "../protocol/signing.js";
import { runDemo } from "./demo.js";
import { startEdge } from "./edge.js";
import { localSecrets } from "./local-secrets.js";

/**
 * `npm start`: the whole HA pair on this machine (scripts/demo.ts). With --edge-only, just the
 * edge monitor under `wrangler dev` (workerd, local Durable Object storage in .wrangler/state,
 * no Cloudflare account), secrets from .dev.vars, generated on first run.
 */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

const USAGE = `Usage: npm start [-- --scenario master-crash] [--port N] [--edge-only]
  (default)                 the whole HA pair on loopback, interactive: [k] crash the master, [r] restore, [q] quit
  --scenario master-crash   the same, scripted: crash the master, fail over, restore, fail back, exit
  --edge-only               only the edge monitor (worker), with persistent local storage
  --port N                  the worker's port (default 8787)`;

const Args = z.object({
  port: z.coerce.number().int().min(1).max(65535).default(8787),
  scenario: z.enum(["interactive", "master-crash"]).default("interactive"),
  "edge-only": z.boolean().default(false),
  help: z.boolean().default(false),
});

function parse() {
  let raw;
  try {
    raw = parseArgs({
      options: {
        port: { type: "string" },
        scenario: { type: "string" },
        "edge-only": { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    }).values;
  } catch (err) {
    fail((err as Error).message);
  }
  const args = Args.safeParse({ ...raw, port: raw.port ?? process.env.PORT });
  if (!args.success) fail(args.error.issues.map((i) => `--${i.path.join(".")}: ${i.message}`).join("; "));
  return args.data;
}

function fail(message: string): never {
  console.error(`npm start: ${message}\n${USAGE}`);
  process.exit(2);
}

const args = parse();
if (args.help) {
  console.log(USAGE);
  process.exit(0);
}
if (!args["edge-only"]) {
  try {
    process.exit(await runDemo({ scenario: args.scenario, port: args.port }));
  } catch (err) {
    console.error(`npm start: ${(err as Error).message}`);
    process.exit(1);
  }
}

const varsFile = path.join(ROOT, ".dev.vars");
const secrets = await localSecrets(varsFile);
const signer = await importSigner(secrets.SIGNING_KEY);
console.log(`xivo-ha: starting the edge monitor under wrangler dev (first start may take a few seconds)…`);
const edge = await startEdge({
  vars: { ADMIN_TOKEN: secrets.ADMIN_TOKEN, SIGNING_KEY: secrets.SIGNING_KEY },
  port: args.port,
  persistTo: path.join(ROOT, ".wrangler", "state"),
  inheritOutput: true,
});

console.log(`
  xivo-ha edge monitor is up at ${edge.url}
  ─────────────────────────────────────────────────────────────
  secrets      ${path.relative(process.cwd(), varsFile)}${secrets.created ? " (just generated)" : ""}; the admin token is ADMIN_TOKEN there
  public key   ${edge.url}/v1/keys   (kid ${signer.kid})
  health       ${edge.url}/v1/ping
  storage      .wrangler/state (clusters survive a restart)

  Configure a cluster (see README for every field):
    export ADMIN_TOKEN=$(sed -n "s/^ADMIN_TOKEN='\\(.*\\)'$/\\1/p" .dev.vars)
    curl -X PUT ${edge.url}/v1/clusters/demo -H "Authorization: Bearer $ADMIN_TOKEN" \\
      -H 'content-type: application/json' \\
      -d '{"master":{"host":"127.0.0.1"},"probes":[{"kind":"tcp","name":"ssh","port":22}],"agentToken":"demo-agent-token-0123456789abcdef0123"}'
    curl ${edge.url}/v1/clusters/demo/verdict?nonce=hello-12345 -H 'Authorization: Bearer demo-agent-token-0123456789abcdef0123'

  Ctrl-C stops it.
`);

let stopping = false;
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.on(sig, async () => {
    if (stopping) return;
    stopping = true;
    console.log("\nxivo-ha: stopping…");
    await edge.stop();
    process.exit(0);
  });
}

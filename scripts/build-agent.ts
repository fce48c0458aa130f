import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

/**
 * `npm run build:agent`: the agent as one ESM file for the slave, run by plain `node` (the
 * systemd unit does). Without the TypeScript loader the idle daemon needs about 40 MB less
 * memory (bench/agent.ts measures both).
 */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

export async function buildAgent(outfile = path.join(ROOT, "dist", "xivo-ha-agent.mjs")): Promise<string> {
  await build({
    entryPoints: [path.join(ROOT, "agent", "main.ts")],
    outfile,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    // Some dependencies are CommonJS and call require(); give the ESM bundle one.
    banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
    // Optional native add-ons of pg and ws: absent, and both work without them.
    external: ["pg-native", "bufferutil", "utf-8-validate"],
    logLevel: "warning",
    legalComments: "none",
  });
  return outfile;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const out = await buildAgent(process.argv[2] ? path.resolve(process.argv[2]) : undefined);
  console.log(`built ${path.relative(process.cwd(), out)}`);
}

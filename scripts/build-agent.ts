import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

/**
 * `npm run build:agent`: the agent as one ESM file for the slave, run by plain `node` (the
 * systemd unit does). Without the TypeScript loader the idle daemon needs about 40 MB less
 * memory (bench/agent.ts measures both).
 */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** Debian 12's nodejs, what a stock Wazo slave has (test/node/node-versions.test.ts runs it). */
export const MIN_NODE = [18, 19] as const;

/**
 * Node 18 has WebCrypto (Ed25519 included) but not as the `crypto` global, which protocol/ uses
 * because the worker shares it: the bundle puts it there. Its Ed25519 is flagged experimental
 * (stable from Node 20 on); that one warning would greet the administrator on every command.
 */
const NODE18_GLOBALS = `import { webcrypto as __webcrypto } from 'node:crypto';
if (globalThis.crypto === undefined) Object.defineProperty(globalThis, "crypto", { value: __webcrypto, configurable: true, writable: true });
if (process.versions.node.startsWith("18.")) {
  const emitWarning = process.emitWarning;
  process.emitWarning = function (warning, ...rest) {
    if (String(warning?.message ?? warning).startsWith("The Ed25519 Web Crypto API algorithm is an experimental feature")) return;
    return emitWarning.call(process, warning, ...rest);
  };
}`;

/**
 * First thing the bundle runs: an older Node stops here with one line naming what it needs,
 * instead of failing on a missing API in the middle of a failover.
 */
export const RUNTIME_GUARD = `{
  const [major, minor] = process.versions.node.split(".").map(Number);
  if (major < ${MIN_NODE[0]} || (major === ${MIN_NODE[0]} && minor < ${MIN_NODE[1]})) {
    process.stderr.write("xivo-ha-agent: Node.js >= ${MIN_NODE.join(".")} required, this is " + process.versions.node + "\\n");
    process.exit(1);
  }
}`;

export async function buildAgent(outfile = path.join(ROOT, "dist", "xivo-ha-agent.mjs")): Promise<string> {
  return (await buildAgentWithInputs(outfile)).outfile;
}

/** The bundle, and the source files that went into it (the package lists their licences). */
export async function buildAgentWithInputs(outfile: string): Promise<{ outfile: string; inputs: string[] }> {
  const { metafile } = await build({
    metafile: true,
    entryPoints: [path.join(ROOT, "agent", "main.ts")],
    outfile,
    bundle: true,
    platform: "node",
    format: "esm",
    target: `node${MIN_NODE.join(".")}`,
    banner: {
      // Some dependencies are CommonJS and call require(); give the ESM bundle one.
      js: `import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);\n${RUNTIME_GUARD}\n${NODE18_GLOBALS}`,
    },
    // Optional native add-ons of pg and ws: absent, and both work without them.
    external: ["pg-native", "bufferutil", "utf-8-validate"],
    logLevel: "warning",
    legalComments: "none",
  });
  return { outfile, inputs: Object.keys(metafile.inputs) };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const out = await buildAgent(process.argv[2] ? path.resolve(process.argv[2]) : undefined);
  console.log(`built ${path.relative(process.cwd(), out)}`);
}

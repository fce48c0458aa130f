import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { WorkerUrl } from "../agent/config.js";
import { clusterUrl } from "../agent/intake/poll.js";
import { fetchKeys, fixFor } from "../agent/setup/worker-check.js";
import { insecureUrl } from "../protocol/host.js";
import { ClusterId } from "../protocol/ids.js";
import { Host } from "../protocol/probe-fields.js";
import { keyFingerprint } from "../protocol/signing.js";

/**
 * `npm run init-line -- --worker URL --cluster ID [--master HOST] [--preset wazo|xivo]`: the exact
 * `xivo-ha-agent init` line to run on the slave, with the worker's key fingerprint to pin.
 * With env ADMIN_TOKEN it also checks that the cluster exists and takes its master's address
 * when --master is not given. The agent token is never printed: it travels in a file.
 */
const USAGE = `Usage: npm run init-line -- --worker URL --cluster ID [--master HOST] [--preset wazo|xivo] [--token-file PATH]
  env ADMIN_TOKEN: check the cluster exists and default --master to the address the worker probes`;

const Args = z.object({
  worker: WorkerUrl,
  cluster: ClusterId,
  master: Host.optional(),
  preset: z.enum(["wazo", "xivo"]).default("wazo"),
  "token-file": z
    .string()
    .regex(/^[A-Za-z0-9./_-]+$/, "expected a plain path")
    .default("/root/xivo-ha.token"),
});
export type InitLineArgs = z.input<typeof Args>;

export class InitLineError extends Error {}

const ClusterView = z.object({ config: z.object({ master: z.object({ host: Host }) }) });

/** Characters a POSIX shell takes literally in a word; anything else gets single quotes. */
const SHELL_SAFE = /^[A-Za-z0-9@%+=:,./_-]+$/;

/** One word of the printed command line, safe whatever the worker answered. */
export function shellWord(value: string): string {
  return SHELL_SAFE.test(value) ? value : `'${value.replaceAll("'", `'\\''`)}'`;
}

export async function initLine(input: InitLineArgs, adminToken: string | undefined): Promise<string[]> {
  const parsed = Args.safeParse(input);
  if (!parsed.success)
    throw new InitLineError(parsed.error.issues.map((i) => `--${i.path.join(".")}: ${i.message}`).join("; "));
  const a = parsed.data;
  if (adminToken && insecureUrl(a.worker))
    throw new InitLineError(
      "--worker: expected https:// with ADMIN_TOKEN (plain http only to a loopback host: the admin token would cross in clear)",
    );
  const keys = await fetchKeys(a.worker);
  if (!keys.ok) throw new InitLineError(`${a.worker}/v1/keys: ${keys.detail} (${fixFor(keys.problem)})`);
  let master = a.master;
  const notes: string[] = [];
  if (adminToken) {
    const where = `GET /v1/clusters/${a.cluster}`;
    let res: Response;
    try {
      res = await fetch(clusterUrl(a.worker, a.cluster), {
        headers: { authorization: `Bearer ${adminToken}` },
        redirect: "error",
        signal: AbortSignal.timeout(10_000),
      });
    } catch (err) {
      throw new InitLineError(`${where}: ${(err as Error).message}`);
    }
    if (res.status === 404) throw new InitLineError(`the worker has no cluster ${a.cluster}`);
    if (!res.ok) throw new InitLineError(`${where}: HTTP ${res.status}`);
    const view = ClusterView.safeParse(await res.json().catch(() => null));
    if (!view.success)
      throw new InitLineError(`${where} did not answer with a cluster whose master is a host name or address`);
    if (!master) {
      master = view.data.config.master.host;
      notes.push(
        `# --master is the address the worker probes; give the master's LAN address if the slave reaches it by another`,
      );
    }
  }
  if (!master)
    throw new InitLineError("--master: expected the master's address (or env ADMIN_TOKEN to read it from the cluster)");
  const lines: string[] = [];
  for (const k of keys.keys) {
    const fp = await keyFingerprint(k);
    lines.push(`# key ${k.kid ?? "(no kid)"}: fingerprint ${fp}`);
    lines.push(...notes);
    lines.push(`# on the slave, the cluster's agent token in ${a["token-file"]} (mode 600), then:`);
    const words = [
      "--worker",
      a.worker,
      "--cluster",
      a.cluster,
      "--master",
      master,
      "--preset",
      a.preset,
      "--token-file",
      a["token-file"],
      "--expect-key",
      fp,
    ];
    lines.push(`xivo-ha-agent init ${words.map(shellWord).join(" ")}`);
  }
  return lines;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  let values;
  try {
    values = parseArgs({
      options: {
        worker: { type: "string" },
        cluster: { type: "string" },
        master: { type: "string" },
        preset: { type: "string" },
        "token-file": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }).values;
  } catch (err) {
    console.error(`init-line: ${(err as Error).message}\n${USAGE}`);
    process.exit(2);
  }
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const { help: _, ...rest } = values;
  try {
    console.log((await initLine(rest as InitLineArgs, process.env.ADMIN_TOKEN)).join("\n"));
  } catch (err) {
    console.error(`init-line: ${(err as Error).message}`);
    process.exit(err instanceof InitLineError ? 2 : 1);
  }
}

import { mkdir, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { z } from "zod";
import { insecureUrl } from "../../protocol/host.js";
import { ClusterId } from "../../protocol/ids.js";
import { Host } from "../../protocol/probe-fields.js";
import { FINGERPRINT, keyFingerprint, type PublicJwk } from "../../protocol/signing.js";
import { parseConfig, TOKEN_ENV, WorkerUrl } from "../config.js";
import { DEFAULT_LAN } from "../lan/config.js";
import { writeFileAtomic } from "../state.js";
import { checkVerdict, fetchKeys, fixFor } from "./worker-check.js";

/**
 * `xivo-ha-agent init`: the slave's config written from the worker's own answers, so that the
 * first config is a working one. Nothing is written until every check passed.
 */

const CONFIG_FILE = "etc/xivo-ha/agent.json";
const ENV_FILE = "etc/xivo-ha/agent.env";

/** Printable ASCII without space, quotes or backslash: a systemd EnvironmentFile value as is. */
const Token = z
  .string()
  .regex(
    /^[\x21\x23-\x26\x28-\x5b\x5d-\x7e]{32,256}$/,
    "expected 32-256 printable characters (no space, quote or backslash)",
  );

const InitOptions = z.strictObject({
  // Plain http only to this machine: init sends the token before any config could refuse it.
  worker: WorkerUrl.refine(
    (u) => !insecureUrl(u),
    "expected https:// (plain http only to a loopback host: the token would cross in clear)",
  ),
  cluster: ClusterId,
  token: Token,
  preset: z.enum(["wazo", "xivo"]).default("wazo"),
  master: Host,
  expectKey: z.string().regex(FINGERPRINT, "expected a key fingerprint (43 base64url characters)").optional(),
  force: z.boolean().default(false),
  /** Where /etc lives: "/" on a slave, a temporary directory in tests and chroots. */
  root: z.string().min(1).default("/"),
});

export interface InitIo {
  out: (line: string) => void;
  /** Asks the administrator to confirm the fingerprints; null when no one can answer (no TTY). */
  confirm: ((question: string) => Promise<boolean>) | null;
}

export type InitResult =
  | { ok: true; configPath: string; envPath: string }
  | { ok: false; exit: "refused" | "failed" | "usage"; message: string };

/** The agent's config for a preset and a master: the LAN probes and the ready check filled. */
function initialConfig(o: {
  cluster: string;
  worker: string;
  preset: "wazo" | "xivo";
  master: string;
  key: PublicJwk;
}) {
  return {
    clusterId: o.cluster,
    worker: { url: o.worker, publicKeys: [o.key] },
    master: { host: o.master },
    mode: "auto",
    requireLanConfirmation: true,
    services: {
      preset: o.preset,
      // Asterisk on the slave itself answers SIP on 5060 once a start is done, both generations.
      ready: { probe: { kind: "sip", name: "local-sip", transport: "udp", port: 5060 }, withinMs: 60_000 },
    },
    // Both generations serve SIP on 5060, the web UI on 443 and the `asterisk` database.
    lan: { probes: DEFAULT_LAN.probes.map((p) => ({ ...p })) },
  };
}

/** `input`: the command line's values as given; InitOptions names the field that is wrong. */
export async function init(input: unknown, io: InitIo): Promise<InitResult> {
  const parsed = InitOptions.safeParse(input);
  if (!parsed.success) {
    const i = parsed.error.issues[0]!;
    return { ok: false, exit: "usage", message: `${optionName(i.path[0])}: ${i.message}` };
  }
  const o = parsed.data;
  const configPath = join(o.root, CONFIG_FILE);
  const envPath = join(o.root, ENV_FILE);
  if (!o.force && (await exists(configPath))) {
    return { ok: false, exit: "refused", message: `${configPath} exists; nothing written (--force replaces it)` };
  }

  const keys = await fetchKeys(o.worker);
  if (!keys.ok)
    return {
      ok: false,
      exit: "failed",
      message: `cannot fetch ${o.worker}/v1/keys: ${keys.detail} (${fixFor(keys.problem)}); nothing written`,
    };
  const prints = await Promise.all(keys.keys.map(async (k) => ({ key: k, fingerprint: await keyFingerprint(k) })));
  for (const p of prints) io.out(`worker key ${p.key.kid ?? "(no kid)"}: fingerprint ${p.fingerprint}`);

  let chosen: PublicJwk;
  if (o.expectKey !== undefined) {
    const hit = prints.find((p) => p.fingerprint === o.expectKey);
    if (!hit)
      return {
        ok: false,
        exit: "failed",
        message: `no key of the worker has fingerprint ${o.expectKey}: someone may stand between this slave and the worker, or the key was rotated; nothing written`,
      };
    io.out(`key ${o.expectKey} matches --expect-key`);
    chosen = hit.key;
  } else {
    if (!io.confirm) {
      return {
        ok: false,
        exit: "usage",
        message:
          "no terminal to confirm the fingerprint on: pass --expect-key FINGERPRINT (the worker side's `npm run init-line` prints it); nothing written",
      };
    }
    if (prints.length > 1)
      return {
        ok: false,
        exit: "usage",
        message: "the worker serves several keys: pick one with --expect-key FINGERPRINT; nothing written",
      };
    const yes = await io.confirm(
      `Does ${prints[0]!.fingerprint} match the fingerprint the worker's administrator gave you? [y/N] `,
    );
    if (!yes) return { ok: false, exit: "refused", message: "fingerprint not confirmed; nothing written" };
    chosen = prints[0]!.key;
  }

  const verdict = await checkVerdict({
    clusterId: o.cluster,
    url: o.worker,
    token: o.token,
    publicKeys: [chosen],
    maxVerdictAgeMs: 30_000,
  });
  if (!verdict.ok)
    return {
      ok: false,
      exit: "failed",
      message: `verdict check failed: ${verdict.detail} (${fixFor(verdict.problem)}); nothing written`,
    };
  io.out(`token accepted: a signed verdict for ${o.cluster} (${verdict.judgement.accepted.verdict.state})`);

  const config = initialConfig({
    cluster: o.cluster,
    worker: o.worker,
    preset: o.preset,
    master: o.master,
    key: chosen,
  });
  // The same validation the daemon applies: what is written is a config the agent loads.
  parseConfig(config, { [TOKEN_ENV]: o.token }, "(init)");

  await mkdir(dirname(configPath), { recursive: true, mode: 0o750 });
  await writeFileAtomic(envPath, `${TOKEN_ENV}=${o.token}\n`, 0o600, { exactMode: true });
  await writeFileAtomic(configPath, `${JSON.stringify(config, null, 2)}\n`, 0o640, { exactMode: true });
  io.out(`wrote ${configPath} (0640) and ${envPath} (0600, the token)`);
  return { ok: true, configPath, envPath };
}

/** The option as the administrator typed it (expectKey → --expect-key); the token comes from a file or env. */
function optionName(field: PropertyKey | undefined): string {
  if (field === undefined) return "arguments";
  if (field === "token") return "token";
  return `--${String(field).replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

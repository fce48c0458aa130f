import { accessSync, constants, statSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { isAbsolute, join } from "node:path";
import { z } from "zod";
import { insecureUrl } from "../protocol/host.js";
import { ClusterId } from "../protocol/ids.js";
import { PublicJwk } from "../protocol/signing.js";
import { fieldPath } from "./field-path.js";
import { FailbackConfig, redactFailback, resolveFailbackSecrets } from "./failback/config.js";
import { FenceConfig } from "./fence.js";
import { FilesConfig, resolveFilesConfig, type ResolvedFilesConfig } from "./files/config.js";
import { DEFAULT_LAN, LanConfig, LanSipProbe, LanTcpProbe, redactLan, resolveLanSecrets } from "./lan/config.js";
import {
  redactReplication,
  ReplicationConfig,
  resolveReplicationSecrets,
  type ResolvedReplicationConfig,
} from "./replication/config.js";

/** Env var that may carry the worker token, so the secret need not sit in the config file. */
export const TOKEN_ENV = "XIVO_HA_WORKER_TOKEN";

/** Thrown for any unusable config; the message names the file, the field and what was expected. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

const Ms = z.number().int().positive();

export const Command = z.strictObject({
  argv: z.array(z.string().min(1)).min(1),
  timeoutMs: Ms.default(30_000),
});
export type Command = z.infer<typeof Command>;

export const RetryPolicy = z.strictObject({
  /** Extra attempts after the first failure. */
  retries: z.number().int().nonnegative().default(2),
  backoffMs: Ms.default(1_000),
  maxBackoffMs: Ms.default(30_000),
});
export type RetryPolicy = z.infer<typeof RetryPolicy>;

/**
 * What must answer on the slave itself before a start counts as done. `systemctl start asterisk`
 * returns before Asterisk's SIP stack listens: a failover is complete when phones get an answer.
 */
export const ReadyCheck = z.strictObject({
  /** A SIP or TCP probe aimed at the slave: its `host` defaults to 127.0.0.1, not the master. */
  probe: z.discriminatedUnion("kind", [LanSipProbe, LanTcpProbe]),
  withinMs: Ms.max(600_000).default(60_000),
  everyMs: z.number().int().min(50).max(10_000).default(250),
});
export type ReadyCheck = z.infer<typeof ReadyCheck>;

const ServicesInput = z.strictObject({
  preset: z.enum(["wazo", "xivo"]).optional(),
  start: z.array(Command).min(1).optional(),
  stop: z.array(Command).min(1).optional(),
  status: z.array(Command).min(1).optional(),
  ready: ReadyCheck.optional(),
  retry: RetryPolicy.default({ retries: 2, backoffMs: 1_000, maxBackoffMs: 30_000 }),
});

const HttpUrl = z.url({ protocol: /^https?$/, error: "expected an http(s) URL" });

/** The worker's base URL, once: without trailing slashes, so every path the agent appends is right. */
export const WorkerUrl = HttpUrl.transform((u) => u.replace(/\/+$/, ""));

const ConfigInput = z
  .strictObject({
    clusterId: ClusterId,
    worker: z.strictObject({
      url: WorkerUrl,
      /** Accept http:// to a non-loopback host (the token then travels in clear): for a lab only. */
      allowInsecureHttp: z.boolean().default(false),
      /** Optional here only because it may come from the environment instead. */
      token: z.string().min(1).optional(),
      publicKeys: z.array(PublicJwk).min(1, "expected at least one trusted public key"),
      pollIntervalMs: Ms.default(5_000),
      maxVerdictAgeMs: Ms.default(30_000),
      /** Receive verdicts over a WebSocket as they are made; polling stays as the fallback. */
      push: z.boolean().default(true),
    }),
    master: z.strictObject({ host: z.string().min(1) }),
    mode: z.enum(["auto", "manual"]).default("auto"),
    requireLanConfirmation: z.boolean().default(true),
    failbackHoldDownMs: Ms.default(60_000),
    noVerdictAlertMs: Ms.default(60_000),
    stateDir: z.string().refine(isAbsolute, "expected an absolute path").default("/var/lib/xivo-ha"),
    lockWaitMs: z.number().int().nonnegative().default(10_000),
    services: ServicesInput,
    /** Master → slave database replication while standby; absent: off. */
    replication: ReplicationConfig.optional(),
    /** Copy-back of the slave's call records (and file-sync hooks) at failback; absent: off. */
    failback: FailbackConfig.optional(),
    /** Master → slave file pull (rsync over SSH) while standby, on the replication schedule; absent: off. */
    files: FilesConfig.optional(),
    /** Commands that fence a degraded master before this slave takes over; absent: no fencing. */
    fence: FenceConfig.optional(),
    /** The slave's own probes of the master: the second signal. */
    lan: LanConfig.default(DEFAULT_LAN),
    /** Local HTTP for /healthz, /metrics and /status; `port: null` turns it off. */
    http: z
      .strictObject({
        host: z.string().min(1).default("127.0.0.1"),
        port: z.number().int().min(0).max(65535).nullable().default(9466),
      })
      .default({ host: "127.0.0.1", port: 9466 }),
    loop: z
      .strictObject({
        /** A keeper pass at least this often (and at once on every new verdict). */
        intervalMs: Ms.default(1_000),
        /** How often the services are checked against the role. */
        enforceEveryMs: Ms.default(10_000),
        /** A report to the worker at least this often, and on every change. */
        reportEveryMs: Ms.default(15_000),
      })
      .default({ intervalMs: 1_000, enforceEveryMs: 10_000, reportEveryMs: 15_000 }),
  })
  .superRefine((c, ctx) => {
    if (insecureUrl(c.worker.url) && !c.worker.allowInsecureHttp) {
      ctx.addIssue({
        code: "custom",
        path: ["worker", "url"],
        message:
          "expected https:// (http:// to a host other than loopback sends the worker token in clear; worker.allowInsecureHttp: true accepts it)",
      });
    }
    // A poll interval longer than the freshness bound would make every verdict stale between polls.
    if (c.worker.maxVerdictAgeMs <= c.worker.pollIntervalMs) {
      ctx.addIssue({
        code: "custom",
        path: ["worker", "maxVerdictAgeMs"],
        message: `expected more than worker.pollIntervalMs (${c.worker.pollIntervalMs})`,
      });
    }
    const s = c.services;
    for (const list of ["start", "stop", "status"] as const) {
      if (!s.preset && !s[list]) {
        ctx.addIssue({ code: "custom", path: ["services", list], message: 'expected a command list (or a "preset")' });
      }
    }
  });

export interface ServicesConfig {
  start: Command[];
  stop: Command[];
  status: Command[];
  ready?: ReadyCheck;
  retry: RetryPolicy;
}

export type Config = Omit<z.infer<typeof ConfigInput>, "worker" | "services" | "replication" | "failback" | "files"> & {
  worker: Omit<z.infer<typeof ConfigInput>["worker"], "token"> & { token: string };
  services: ServicesConfig;
  replication: ResolvedReplicationConfig | null;
  failback: FailbackConfig | null;
  files: ResolvedFilesConfig | null;
};

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * The databases live on the master: unless a section says otherwise, its `master.host` is the
 * agent's. Filled in before validation, so a missing host still gets a field-naming error.
 */
function withMasterHost(raw: unknown): unknown {
  if (!isObject(raw) || !isObject(raw.master) || typeof raw.master.host !== "string") return raw;
  const host = raw.master.host;
  const fill = (section: unknown) =>
    isObject(section) ? { ...section, master: { host, ...(isObject(section.master) ? section.master : {}) } } : section;
  return { ...raw, replication: fill(raw.replication), failback: fill(raw.failback) };
}

const cmd = (...argv: string[]): Command => ({ argv, timeoutMs: 30_000 });
const slow = (...argv: string[]): Command => ({ argv, timeoutMs: 300_000 });

/** Wazo's own slave switch (wazo-platform/xivo-config, sbin/), shipped on every Wazo node. */
const WAZO_SLAVE_SCRIPT = "xivo-manage-slave-services";

/**
 * Wazo: `wazo-service status xivo` checks the `xivo` group, the telephony services (asterisk,
 * wazo-agid, -calld, -agentd, …): the `default` group adds wazo-auth and wazo-confd, which stay
 * up on a standby, so only the `xivo` group tells whether the slave serves calls.
 */
const WAZO_STATUS = [cmd("wazo-service", "status", "xivo")];

/**
 * Where Wazo's script is on PATH the preset delegates to it: it is what Wazo runs, and it
 * follows Wazo's upgrades. Its exit status is that of its last command, hence the status check.
 */
export const WAZO_DELEGATE: Omit<ServicesConfig, "retry"> = {
  start: [slow(WAZO_SLAVE_SCRIPT, "start")],
  stop: [slow(WAZO_SLAVE_SCRIPT, "stop")],
  status: WAZO_STATUS,
};

/**
 * What `xivo-manage-slave-services` does, per generation, step by step (each retried and reported
 * on its own). wazo start: wazo-auth restarted, the replicated configuration applied and DHCP
 * started, berofos switched, pjsip confgen cache invalidated, then the services, then the agents
 * relogged. wazo stop: only the `xivo` group stops, and the `default` group starts again so
 * wazo-auth and wazo-confd stay up on the standby. xivo: monit goes down before asterisk (or
 * monit restarts it), then autostart is disabled so nothing comes back after an upgrade or reboot.
 */
export const PRESETS: Record<"wazo" | "xivo", Omit<ServicesConfig, "retry">> = {
  wazo: {
    start: [
      cmd("systemctl", "restart", "wazo-auth"),
      slow("xivo-create-config"),
      slow("xivo-update-config"),
      slow("dhcpd-update", "-dr"),
      cmd("service", "isc-dhcp-server", "start"),
      cmd("update-rc.d", "isc-dhcp-server", "defaults"),
      cmd("xivo-berofos", "-q", "--syslog", "slave"),
      cmd("xivo-confgen", "asterisk/pjsip.conf", "--invalidate"),
      cmd("wazo-service", "enable"),
      slow("wazo-service", "start"),
      cmd("wazo-agentd-cli", "-c", "relog all"),
    ],
    stop: [
      slow("wazo-service", "stop", "xivo"),
      cmd("wazo-service", "disable"),
      cmd("xivo-berofos", "-q", "--syslog", "master"),
      cmd("update-rc.d", "isc-dhcp-server", "remove"),
      cmd("service", "isc-dhcp-server", "stop"),
      slow("wazo-service", "start"),
    ],
    status: WAZO_STATUS,
  },
  xivo: {
    start: [
      cmd("systemctl", "enable", "asterisk"),
      cmd("systemctl", "start", "asterisk"),
      cmd("systemctl", "enable", "monit"),
      cmd("systemctl", "start", "monit"),
    ],
    stop: [
      cmd("systemctl", "stop", "monit"),
      cmd("systemctl", "stop", "asterisk"),
      cmd("systemctl", "disable", "monit"),
      cmd("systemctl", "disable", "asterisk"),
    ],
    status: [cmd("systemctl", "is-active", "--quiet", "asterisk"), cmd("systemctl", "is-active", "--quiet", "monit")],
  },
};

/** On `PATH` (the agent's, from `env`): the delegating wazo preset if Wazo's script is there. */
export function presetFor(
  name: "wazo" | "xivo",
  env: Record<string, string | undefined>,
): Omit<ServicesConfig, "retry"> {
  if (name !== "wazo") return PRESETS[name];
  const found = (env.PATH ?? "")
    .split(":")
    .some((dir) => isAbsolute(dir) && isExecutable(join(dir, WAZO_SLAVE_SCRIPT)));
  return found ? WAZO_DELEGATE : PRESETS.wazo;
}

/** A regular file this process may execute. */
export function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

/** Validates parsed JSON; `source` names where it came from in error messages. */
export function parseConfig(raw: unknown, env: Record<string, string | undefined>, source: string): Config {
  const parsed = ConfigInput.safeParse(withMasterHost(raw));
  if (!parsed.success) {
    // Zod's messages describe types and bounds, never the offending value, so no secret leaks here.
    const lines = parsed.error.issues.map((i) => `  ${fieldPath(i.path)}: ${i.message}`);
    throw new ConfigError(`invalid config ${source}:\n${lines.join("\n")}`);
  }
  const c = parsed.data;
  const token = env[TOKEN_ENV] || c.worker.token;
  if (!token) {
    throw new ConfigError(`invalid config ${source}:\n  worker.token: expected a string (or env ${TOKEN_ENV})`);
  }
  const preset = c.services.preset ? presetFor(c.services.preset, env) : undefined;
  const files = c.files ? resolveFilesConfig(c.files, c.master.host) : null;
  if (files && "field" in files) throw new ConfigError(`invalid config ${source}:\n  ${files.field}: ${files.message}`);
  return {
    ...c,
    lan: resolveLanSecrets(c.lan, env),
    replication: c.replication ? resolveReplicationSecrets(c.replication, env, c.master.host) : null,
    failback: c.failback ? resolveFailbackSecrets(c.failback, env) : null,
    files,
    worker: { ...c.worker, token },
    services: {
      // Explicit lists override the preset's, one list at a time; superRefine ensured each exists.
      start: c.services.start ?? preset!.start,
      stop: c.services.stop ?? preset!.stop,
      status: c.services.status ?? preset!.status,
      ready: c.services.ready,
      retry: c.services.retry,
    },
  };
}

export async function loadConfig(path: string, env: Record<string, string | undefined> = process.env): Promise<Config> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    throw new ConfigError(`cannot read config ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    // V8's message quotes the surrounding text, which may hold the token: keep only the position.
    const pos = /position (\d+)/.exec((e as Error).message)?.[1];
    const where = pos === undefined ? "" : ` at line ${text.slice(0, Number(pos)).split("\n").length}`;
    throw new ConfigError(`config ${path} is not valid JSON${where}`);
  }
  return parseConfig(raw, env, path);
}

/** The config as it may be logged or reported: secrets replaced. */
export function redactConfig(c: Config): Config {
  return {
    ...c,
    worker: { ...c.worker, token: "[redacted]" },
    lan: redactLan(c.lan),
    replication: c.replication && redactReplication(c.replication),
    failback: c.failback && redactFailback(c.failback),
  };
}

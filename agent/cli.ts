import { readFile } from "node:fs/promises";
import { createInterface } from "node:readline/promises";
import { parseArgs } from "node:util";
import { z } from "zod";
import { ConfigError, loadConfig, TOKEN_ENV, type Config } from "./config.js";
import { anyFailed, doctorLines } from "./doctor/check.js";
import { runDoctor } from "./doctor/index.js";
import type { UserStateReport } from "./failback/userstate.js";
import { daemonLockPath, startDaemon } from "./daemon.js";
import { pollOnce } from "./intake/one-shot.js";
import { actionLockPath, offlineKeeper, systemClock } from "./keeper.js";
import { hostPort } from "./lan/common.js";
import { LanMonitor } from "./lan/monitor.js";
import type { TableStat } from "./replication/run.js";
import { acquireLock, LockBusyError } from "./lock.js";
import { jsonLogger, type Logger } from "./log.js";
import { init } from "./setup/init.js";
import { hasStandbyWork, standbySyncFor } from "./standby-sync.js";
import { readState } from "./state.js";
import { DaemonStatus, describeDecision, offlineStatus, statusLines, type StatusView } from "./status.js";
import { AGENT_VERSION } from "./version.js";

/** Exit codes (the README lists them too). */
export const EXIT = { ok: 0, failed: 1, usage: 2, config: 3, busy: 4, noVerdict: 5, refused: 6 } as const;

const DEFAULT_CONFIG = "/etc/xivo-ha/agent.json";

const HELP: Record<string, string> = {
  main: `xivo-ha-agent ${AGENT_VERSION} — the slave's half of xivo-ha

Usage: xivo-ha-agent <command> [--config PATH] [options]

Commands:
  run                              the daemon: verdict intake, LAN probes, keeper loop, reports
  status [--json]                  role, last verdict, LAN view, last action and its reason
  check-master-status              one decision pass, then exit (XiVO's script, made safe)
  manage-slave-services start|stop start or stop the telephony services and set the role
  replicate                        one database pass: failback copy-back if pending, then replication
  init --worker URL --cluster ID --master HOST
                                   write a working /etc/xivo-ha/agent.json and agent.env (the token)
  doctor [--json]                  will failover work? one line per check, exit 0 only if none failed

Options:
  --config PATH   the agent's JSON config (default ${DEFAULT_CONFIG}, or $XIVO_HA_CONFIG)
  -h, --help      help for a command

Exit codes: 0 ok · 1 a service action failed · 2 usage error · 3 invalid config
            4 another agent holds the lock · 5 no fresh, authentic verdict (nothing done)
            6 refused: replicate on a slave that is not standby; init over an existing config`,
  run: `Usage: xivo-ha-agent run [--config PATH]
Runs until SIGTERM/SIGINT. Exits 4 if another agent already runs on the same state directory.`,
  status: `Usage: xivo-ha-agent status [--config PATH] [--json]
Asks the running daemon (its local HTTP /status); without one, shows the state file only.`,
  "check-master-status": `Usage: xivo-ha-agent check-master-status [--config PATH]
Polls one verdict (with a fresh nonce), runs the LAN probes once, decides and acts once.
Exits 5 without touching anything if no fresh, authentic verdict could be had.`,
  replicate: `Usage: xivo-ha-agent replicate [--config PATH]
One pass of what the daemon does on its schedule: if a failback left call records to copy back
to the master, that first (replication waits until it succeeds); then pull the master's
database, then its files (the \`files\` section). Only on a standby slave (exit 6 otherwise);
takes the action lock.`,
  init: `Usage: xivo-ha-agent init --worker URL --cluster ID --master HOST [--preset wazo|xivo]
                          [--token-file PATH] [--expect-key FINGERPRINT] [--force]
Writes /etc/xivo-ha/agent.json (0640) and the token to /etc/xivo-ha/agent.env (0600), after
checking them against the worker. The token comes from --token-file or env ${TOKEN_ENV};
it is never printed. The worker's keys are fetched and their fingerprints printed: compare them
with the one the worker's administrator gives you (\`npm run init-line\` prints the whole line).
--expect-key pins the key without a prompt; without it, a terminal asks, and without a terminal
init refuses. A mismatch, a refused token or an unknown cluster writes nothing.
An existing config is kept unless --force. --root DIR writes under DIR (tests, chroots).`,
  doctor: `Usage: xivo-ha-agent doctor [--config PATH] [--json] [--root DIR]
Checks what failover and failback need, one line each (ok / WARNING / FAILED, with the fix):
the worker (URL, TLS, key, token, a fresh verdict, the clock, push), the LAN probes, the service
commands and the ready probe, replication and copy-back logins and rights (read-only), rival
deciders in cron, the systemd unit and the state directory, SIP registration expiry.
Exit 0 when nothing failed, 1 otherwise. --root DIR: where /etc and /var are (tests, chroots).`,
  "manage-slave-services": `Usage: xivo-ha-agent manage-slave-services start|stop [--config PATH] [--reason TEXT]
start: start the telephony services and make this slave active; stop: stop them (autostart off)
and make it standby. Takes the same lock as the daemon's actions. In auto mode the daemon may
later move the role back if the verdict says so.`,
};

const Args = z.object({
  command: z.enum(["run", "status", "check-master-status", "manage-slave-services", "replicate", "init", "doctor"], {
    error: "expected a command: run, status, check-master-status, manage-slave-services, replicate, init or doctor",
  }),
  verb: z.enum(["start", "stop"]).optional(),
  config: z.string().min(1),
  json: z.boolean(),
  reason: z.string().min(1).max(500).optional(),
  root: z.string().min(1).default("/"),
  /** init's options as given: `init` validates them and names the one that is wrong. */
  init: z.record(z.string(), z.unknown()).optional(),
});
type Args = z.infer<typeof Args>;

class UsageError extends Error {}

function parse(argv: string[], env: NodeJS.ProcessEnv): Args | { help: string } {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: "string" },
        json: { type: "boolean", default: false },
        reason: { type: "string" },
        root: { type: "string" },
        worker: { type: "string" },
        cluster: { type: "string" },
        "token-file": { type: "string" },
        preset: { type: "string" },
        master: { type: "string" },
        "expect-key": { type: "string" },
        force: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
        version: { type: "boolean", default: false },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  const [command, verb, ...extra] = positionals;
  if (values.version) return { help: AGENT_VERSION };
  if (values.help || command === "help" || command === undefined)
    return { help: HELP[command && command !== "help" ? command : "main"] ?? HELP.main! };
  const takesVerb = command === "manage-slave-services";
  const initOnly = ["worker", "cluster", "token-file", "preset", "master", "expect-key", "force"] as const;
  if (command !== "init") {
    const stray = initOnly.find((o) => values[o] !== undefined && values[o] !== false);
    if (stray) throw new UsageError(`--${stray} is an option of init only`);
  }
  if (values.root !== undefined && command !== "init" && command !== "doctor")
    throw new UsageError("--root is an option of init and doctor only");
  const init =
    command === "init"
      ? {
          worker: values.worker,
          cluster: values.cluster,
          tokenFile: values["token-file"],
          preset: values.preset,
          master: values.master,
          expectKey: values["expect-key"],
          force: values.force,
        }
      : undefined;
  const args = Args.safeParse({
    command,
    verb: takesVerb ? verb : undefined,
    config: values.config ?? env.XIVO_HA_CONFIG ?? DEFAULT_CONFIG,
    json: values.json,
    reason: values.reason,
    root: values.root,
    init,
  });
  if (!args.success) {
    const i = args.error.issues[0]!;
    throw new UsageError(`${i.path.join(".") || "arguments"}: ${i.message}`);
  }
  if (takesVerb && !args.data.verb) throw new UsageError('verb: expected "start" or "stop"');
  const unexpected = [...(takesVerb ? [] : [verb]), ...extra].filter((a) => a !== undefined);
  if (unexpected.length > 0) throw new UsageError(`unexpected argument "${unexpected.join(" ")}"`);
  return args.data;
}

export async function main(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
  log: Logger = jsonLogger(),
): Promise<number> {
  let args: Args | { help: string };
  try {
    args = parse(argv, env);
  } catch (err) {
    process.stderr.write(`xivo-ha-agent: ${(err as Error).message}\n(xivo-ha-agent --help for usage)\n`);
    return EXIT.usage;
  }
  if ("help" in args) {
    process.stdout.write(`${args.help}\n`);
    return EXIT.ok;
  }
  if (args.command === "init" || args.command === "doctor") {
    try {
      return args.command === "init" ? await initCommand(args, env) : await doctor(args, env);
    } catch (err) {
      // A file it may not write (not root), say: one readable line, the detail in the journal.
      process.stderr.write(`xivo-ha-agent: ${(err as Error).message}\n`);
      log(
        "agent.failed",
        { command: args.command, message: (err as Error).message, stack: (err as Error).stack },
        "error",
      );
      return EXIT.failed;
    }
  }
  let cfg: Config;
  try {
    cfg = await loadConfig(args.config, env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`xivo-ha-agent: ${err.message}\n`);
    return EXIT.config;
  }
  try {
    switch (args.command) {
      case "run":
        return await run(cfg, log);
      case "status":
        return await status(cfg, args.json);
      case "check-master-status":
        return await checkMasterStatus(cfg, log);
      case "replicate":
        return await replicateOnce(cfg, log);
      case "manage-slave-services":
        return await manage(cfg, args.verb!, args.reason ?? `manual \`manage-slave-services ${args.verb}\``, log);
      default:
        throw new Error(`unhandled command ${args.command}`);
    }
  } catch (err) {
    // An administrator gets one readable line, never a stack trace; the journal gets the detail.
    process.stderr.write(`xivo-ha-agent: ${(err as Error).message}\n`);
    if (err instanceof LockBusyError) return EXIT.busy;
    log(
      "agent.failed",
      { command: args.command, message: (err as Error).message, stack: (err as Error).stack },
      "error",
    );
    return EXIT.failed;
  }
}

async function doctor(args: Args, env: NodeJS.ProcessEnv): Promise<number> {
  const results = await runDoctor({ configPath: args.config, env, root: args.root });
  process.stdout.write(
    `${args.json ? JSON.stringify({ ok: !anyFailed(results), checks: results }, null, 2) : doctorLines(results).join("\n")}\n`,
  );
  return anyFailed(results) ? EXIT.failed : EXIT.ok;
}

async function initCommand(args: Args, env: NodeJS.ProcessEnv): Promise<number> {
  const { tokenFile, ...options } = args.init!;
  let token = env[TOKEN_ENV];
  if (typeof tokenFile === "string") {
    try {
      token = (await readFile(tokenFile, "utf8")).trim();
    } catch (err) {
      process.stderr.write(
        `xivo-ha-agent: cannot read --token-file ${tokenFile}: ${(err as NodeJS.ErrnoException).code ?? String(err)}\n`,
      );
      return EXIT.usage;
    }
  }
  if (!token) {
    process.stderr.write(`xivo-ha-agent: token: expected --token-file PATH or env ${TOKEN_ENV}\n`);
    return EXIT.usage;
  }
  const confirm = process.stdin.isTTY
    ? async (question: string) => {
        const rl = createInterface({ input: process.stdin, output: process.stdout });
        try {
          return /^y(es)?$/i.test((await rl.question(question)).trim());
        } finally {
          rl.close();
        }
      }
    : null;
  const r = await init(
    { ...options, token, root: args.root },
    { out: (line) => process.stdout.write(`${line}\n`), confirm },
  );
  if (r.ok) return EXIT.ok;
  process.stderr.write(`xivo-ha-agent: ${r.message}\n`);
  return EXIT[r.exit];
}

async function run(cfg: Config, log: Logger): Promise<number> {
  const daemon = await startDaemon(cfg, log);
  await new Promise<void>((resolve) => {
    process.once("SIGTERM", resolve);
    process.once("SIGINT", resolve);
  });
  await daemon.stop();
  return EXIT.ok;
}

async function status(cfg: Config, json: boolean): Promise<number> {
  const out: StatusView = (await liveStatus(cfg)) ?? offlineStatus(cfg.clusterId, await readState(cfg.stateDir));
  process.stdout.write(`${json ? JSON.stringify(out, null, 2) : statusLines(out).join("\n")}\n`);
  return EXIT.ok;
}

/** The running daemon's status, or null when none answers on the configured port. */
async function liveStatus(cfg: Config): Promise<DaemonStatus | null> {
  if (cfg.http.port === null || cfg.http.port === 0) return null;
  const url = `http://${hostPort(cfg.http.host, cfg.http.port)}/status`;
  let body: unknown;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    if (!res.ok) return null;
    body = await res.json();
  } catch {
    return null; // no daemon listening
  }
  const parsed = DaemonStatus.safeParse(body);
  if (!parsed.success) {
    const i = parsed.error.issues[0]!;
    throw new Error(`${url} answered, but not with the agent's status (${i.path.join(".") || "(root)"}: ${i.message})`);
  }
  return parsed.data;
}

async function checkMasterStatus(cfg: Config, log: Logger): Promise<number> {
  const got = await pollOnce(cfg, systemClock);
  if (!got.ok) {
    process.stderr.write(`xivo-ha-agent: no fresh, authentic verdict: ${got.detail}; nothing done\n`);
    return EXIT.noVerdict;
  }
  // One pass: the LAN probes' hysteresis is one round here, like the edge verdict's is done.
  const lan = new LanMonitor({ ...cfg.lan, fall: 1, rise: 1 }, cfg.master.host);
  const lanView = await lan.round();
  const keeper = offlineKeeper(cfg, log, {
    verdicts: { freshness: () => "fresh", latest: () => got.accepted },
    lan: () => lanView,
  });
  // The daemon, when running, owns the decisions: a one-shot pass would only race it.
  const daemon = await acquireLock(daemonLockPath(cfg.stateDir), { purpose: "check-master-status", waitMs: 0 });
  try {
    const result = await keeper.tick();
    process.stdout.write(`${describeDecision(result.decision)}\n`);
    return result.ok ? EXIT.ok : EXIT.failed;
  } finally {
    await daemon.release();
  }
}

async function manage(cfg: Config, verb: "start" | "stop", reason: string, log: Logger): Promise<number> {
  const lock = await acquireLock(actionLockPath(cfg.stateDir), {
    purpose: `manage-slave-services ${verb}`,
    waitMs: cfg.lockWaitMs,
  });
  try {
    const keeper = offlineKeeper(cfg, log);
    await keeper.load();
    const t = await keeper.changeRole(
      verb === "start" ? "active" : "standby",
      verb === "start" ? "failover" : "failback",
      reason,
    );
    process.stdout.write(`${verb}: ${t.ok ? "done" : "FAILED"}; services ${t.status.state}; role ${keeper.role}\n`);
    return t.ok ? EXIT.ok : EXIT.failed;
  } finally {
    await lock.release();
  }
}

async function replicateOnce(cfg: Config, log: Logger): Promise<number> {
  if (!hasStandbyWork(cfg)) {
    process.stderr.write("xivo-ha-agent: none of replication, failback or files is configured in this config\n");
    return EXIT.config;
  }
  const keeper = offlineKeeper(cfg, log);
  // An administrator's explicit call: the master is taken to be up; the role must be standby.
  const sync = standbySyncFor(cfg, keeper, () => true, log);
  const outcome = await sync.run();
  const rep = sync.lastReplication;
  const rec = sync.lastReconcile;
  if (rec)
    process.stdout.write(
      `failback copy-back: ${rec.ok ? "done" : `FAILED: ${rec.error}`} (${rec.tables.map((t) => `${t.name} +${t.copied}`).join(", ") || "no rows"})${userStateLine(rec.userState)}\n`,
    );
  if (rep) {
    process.stdout.write(
      rep.ok
        ? `replication: done in ${rep.durationMs} ms; copied ${rep.copied.map(describeCopied).join(", ") || "nothing"}; ${rep.skipped.length} unchanged table(s) skipped; ${rep.rows} rows, ${rep.bytes} bytes\n`
        : `replication: FAILED: ${rep.error}${rep.drift.length ? `\n  ${rep.drift.join("\n  ")}` : ""}\n`,
    );
  }
  const files = sync.lastFiles;
  if (files) {
    process.stdout.write(
      files.ok
        ? `files: pulled in ${files.durationMs} ms; ${files.filesTransferred ?? "?"} file(s) written\n`
        : `files: FAILED: ${files.error}\n`,
    );
  }
  switch (outcome) {
    case "not-standby":
      process.stderr.write(
        `xivo-ha-agent: refused: this slave's role is ${keeper.role}, not standby (replication would overwrite what an active slave serves)\n`,
      );
      return EXIT.refused;
    case "busy":
      process.stderr.write("xivo-ha-agent: another agent action holds the lock; try again\n");
      return EXIT.busy;
    case "reconcile-failed":
    case "replication-failed":
    case "files-failed":
      return EXIT.failed;
    default:
      return EXIT.ok;
  }
}

/**
 * "users (delta −2 +2)", "context (reload: small (12 rows))" or "extensions (reload: empty on
 * the slave; 1 index built after the load)": what a pass did to one table.
 */
export const describeCopied = (t: TableStat) => {
  if (t.method === "delta") return `${t.table} (delta −${t.deleted} +${t.rows})`;
  const built = t.indexes ? `${t.indexes} ${t.indexes === 1 ? "index" : "indexes"} built after the load` : null;
  const notes = [t.why, built].filter((n) => n !== null);
  return `${t.table} (reload${notes.length ? `: ${notes.join("; ")}` : ""})`;
};

/** The users' own settings merged back at failback, one clause; empty when there were none. */
function userStateLine(u: UserStateReport | null): string {
  if (!u) return "";
  const applied = u.tables.reduce((n, t) => n + t.applied, 0);
  const kept = u.tables.reduce((n, t) => n + t.keptMaster, 0);
  const skipped = u.tables.reduce((n, t) => n + t.skipped, 0);
  return `; user settings: ${applied} user(s) updated on the master, ${kept} kept the master's later change, ${skipped} skipped`;
}

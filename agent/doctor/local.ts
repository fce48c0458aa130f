import { readdir, readFile, stat } from "node:fs/promises";
import { networkInterfaces } from "node:os";
import { isAbsolute, join, relative } from "node:path";
import { isLoopbackHost } from "../../protocol/host.js";
import { isExecutable, type Command, type Config } from "../config.js";
import { runLanProbe } from "../lan/probe.js";
import { runCommand } from "../services.js";
import { failed, info, ok, warning, type CheckResult } from "./check.js";

/** The slave's own side: LAN probes, service commands, the ready probe, rival deciders, systemd, state. */

export async function lanChecks(cfg: Config): Promise<CheckResult[]> {
  const results = await Promise.all(cfg.lan.probes.map((p) => runLanProbe(p, cfg.master.host)));
  return results.map((r) =>
    r.ok
      ? ok(`lan probe ${r.name}`, `${r.kind} answered in ${r.rttMs} ms: ${r.detail}`)
      : (r.critical ? failed : warning)(
          `lan probe ${r.name}`,
          `${r.kind}: ${r.detail}`,
          `check that the master (${cfg.master.host}) serves it and that nothing filters it`,
        ),
  );
}

/** Where `argv[0]` resolves on `PATH`, or null. */
function resolveCommand(file: string, path: string | undefined): string | null {
  const candidates = file.includes("/")
    ? [file]
    : (path ?? "")
        .split(":")
        .filter((d) => isAbsolute(d))
        .map((d) => join(d, file));
  return candidates.find(isExecutable) ?? null;
}

export async function serviceChecks(cfg: Config, env: NodeJS.ProcessEnv): Promise<CheckResult[]> {
  const out: CheckResult[] = [];
  const all: Command[] = [...cfg.services.start, ...cfg.services.stop, ...cfg.services.status];
  const missing = [...new Set(all.map((c) => c.argv[0]!))].filter((f) => resolveCommand(f, env.PATH) === null);
  out.push(
    missing.length === 0
      ? ok("service commands", `${new Set(all.map((c) => c.argv[0])).size} command(s) found`)
      : failed(
          "service commands",
          `not found: ${missing.join(", ")}`,
          "install them or fix services.start/stop/status (or the preset)",
        ),
  );
  for (const cmd of cfg.services.status) {
    const name = `status command ${cmd.argv.join(" ")}`;
    if (missing.includes(cmd.argv[0]!)) continue;
    const r = await runCommand(cmd);
    if (r.timedOut)
      out.push(
        failed(
          name,
          `no answer within ${cmd.timeoutMs} ms`,
          "a hung status command blocks every decision: fix it or raise its timeoutMs",
        ),
      );
    else if (r.spawnError) out.push(failed(name, r.spawnError, "check the command"));
    // Any exit code is an answer: a standby's services are meant to be stopped.
    else out.push(ok(name, `answered in ${r.durationMs} ms (exit ${r.exitCode ?? r.signal})`));
  }
  return out;
}

const isLocalAddress = (host: string) =>
  isLoopbackHost(host) || Object.values(networkInterfaces()).some((l) => l?.some((a) => a.address === host));

export async function readyCheck(cfg: Config): Promise<CheckResult> {
  const ready = cfg.services.ready;
  if (!ready)
    return warning(
      "ready probe",
      "none configured: a start counts as done when its commands return",
      "add services.ready (a SIP probe on 127.0.0.1:5060)",
    );
  const host = ready.probe.host ?? "127.0.0.1";
  const target = `${ready.probe.kind} ${host}:${ready.probe.port}`;
  if (!isLocalAddress(host))
    return failed(
      "ready probe",
      `${target} is not an address of this slave`,
      "aim services.ready.probe at the slave itself (127.0.0.1)",
    );
  const r = await runLanProbe({ ...ready.probe, host }, host);
  // A standby's Asterisk is stopped: silence is what a healthy standby shows.
  return r.ok
    ? ok("ready probe", `${target} answers (services running here)`)
    : info("ready probe", `${target} is local; no answer now (${r.detail}), expected while standby`);
}

/** The scripts of Wazo's / XiVO's own master-slave switch: two deciders would fight. */
const RIVALS = ["xivo-check-master-status", "xivo-master-slave-db-replication"] as const;

/** Cron tables that may hold them (Wazo installs /etc/cron.d/xivo-ha-slave; admins use crontabs). */
async function cronFiles(root: string): Promise<string[]> {
  const list = async (dir: string) =>
    (await readdir(join(root, dir)).catch(() => [] as string[])).map((f) => join(root, dir, f));
  return [join(root, "etc/crontab"), ...(await list("etc/cron.d")), ...(await list("var/spool/cron/crontabs"))];
}

export async function deciderCheck(root: string): Promise<CheckResult> {
  const found: string[] = [];
  for (const file of await cronFiles(root)) {
    const text = await readFile(file, "utf8").catch(() => "");
    for (const line of text.split("\n")) {
      if (/^\s*#/.test(line)) continue;
      const rival = RIVALS.find((r) => line.includes(r));
      if (rival) found.push(`/${relative(root, file)}: ${rival}`);
    }
  }
  return found.length === 0
    ? ok("other deciders", "no cron entry runs xivo-check-master-status or xivo-master-slave-db-replication")
    : failed(
        "other deciders",
        `two deciders fight: ${found.join("; ")}`,
        "comment out those cron lines: the agent decides and replicates",
      );
}

export async function systemdChecks(cfg: Config, root: string): Promise<CheckResult[]> {
  const out: CheckResult[] = [];
  const link = join(root, "etc/systemd/system/multi-user.target.wants/xivo-ha-agent.service");
  out.push(
    (await stat(link).then(
      () => true,
      () => false,
    ))
      ? ok("systemd unit", "xivo-ha-agent.service enabled")
      : failed("systemd unit", "xivo-ha-agent.service is not enabled", "systemctl enable --now xivo-ha-agent"),
  );
  const dir = join(root, cfg.stateDir);
  const st = await stat(dir).catch(() => null);
  if (!st)
    out.push(
      warning(
        "state directory",
        `${cfg.stateDir} does not exist yet`,
        "systemd creates it (StateDirectory) when the unit starts",
      ),
    );
  else if (!st.isDirectory())
    out.push(
      failed("state directory", `${cfg.stateDir} is not a directory`, `remove it; systemd recreates ${cfg.stateDir}`),
    );
  else {
    const mode = (st.mode & 0o777).toString(8).padStart(3, "0");
    // The unit runs as root: anyone else owning the role file's directory could steer failover.
    if (st.uid !== 0)
      out.push(
        failed("state directory", `${cfg.stateDir} is owned by uid ${st.uid}`, `chown root:root ${cfg.stateDir}`),
      );
    else if (st.mode & 0o077)
      out.push(warning("state directory", `${cfg.stateDir} has mode ${mode}`, `chmod 700 ${cfg.stateDir}`));
    else out.push(ok("state directory", `${cfg.stateDir} root, mode ${mode}`));
  }
  return out;
}

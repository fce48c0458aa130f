import { ConfigError, loadConfig, type Config } from "../config.js";
import { failed, ok, type CheckResult } from "./check.js";
import { deciderCheck, lanChecks, readyCheck, serviceChecks, systemdChecks } from "./local.js";
import { failbackChecks, replicationChecks } from "./postgres.js";
import { workerChecks } from "./worker.js";

export interface DoctorOptions {
  configPath: string;
  env: NodeJS.ProcessEnv;
  /** Where /etc and /var live for the filesystem checks: "/" on a slave. */
  root: string;
}

/** Every check, in the order an administrator fixes things; never throws. */
export async function runDoctor(o: DoctorOptions): Promise<CheckResult[]> {
  let cfg: Config;
  try {
    cfg = await loadConfig(o.configPath, o.env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return [
      failed("config", err.message.replace(/\n\s*/g, " "), "fix the config (xivo-ha-agent init writes a working one)"),
    ];
  }
  const results: CheckResult[] = [ok("config", `${o.configPath} valid`)];
  // Independent parts run side by side; each part keeps its own order.
  const parts = await Promise.all([
    workerChecks(cfg),
    lanChecks(cfg),
    serviceChecks(cfg, o.env),
    readyCheck(cfg).then((r) => [r]),
    cfg.replication ? replicationChecks(cfg.replication) : Promise.resolve([]),
    cfg.failback ? failbackChecks(cfg.failback) : Promise.resolve([]),
    deciderCheck(o.root).then((r) => [r]),
    systemdChecks(cfg, o.root),
  ]);
  return results.concat(...parts);
}

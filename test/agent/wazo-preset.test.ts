import { spawn } from "node:child_process";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { presetFor, PRESETS, WAZO_DELEGATE } from "../../agent/config.js";
import { testSecrets } from "../support/secrets.js";
import { tempDir } from "./helpers.js";

/**
 * The `wazo` preset as a Wazo slave runs it: `xivo-ha-agent manage-slave-services start|stop`
 * with stand-ins on PATH for Wazo's commands, each recording its call, so the order is the
 * one observed. The `wazo-service` stand-in keeps its groups' state the way Wazo's does: `start`
 * brings up `default`, which holds `xivo` unless `disable` marked it; `stop xivo` stops only that.
 */
const BIN = fileURLToPath(new URL("../../bin/xivo-ha-agent.mjs", import.meta.url));
let dir: Awaited<ReturnType<typeof tempDir>>;
let stands: string;
beforeEach(async () => {
  dir = await tempDir();
  stands = join(dir.path, "bin");
  await mkdir(stands);
});
afterEach(() => dir.remove());

const RECORD = `#!/bin/sh\nn=$(basename "$0"); [ $# -gt 0 ] && n="$n $*"; echo "$n" >> "$CALLS"\n`;

/** Every command the steps name: record and succeed, unless a test gives one more to do. */
async function standIns(extra: Record<string, string> = {}) {
  const names = new Set([...PRESETS.wazo.start, ...PRESETS.wazo.stop].map((c) => c.argv[0]!));
  const wazoService = `${RECORD}S="$STATE"
case "$1 \${2:-default}" in
  "enable default") rm -f "$S/disabled" ;;
  "disable default") touch "$S/disabled" ;;
  "start default") touch "$S/default"; [ -e "$S/disabled" ] || touch "$S/xivo" ;;
  "stop xivo") rm -f "$S/xivo" ;;
  "stop default") rm -f "$S/xivo" "$S/default" ;;
  "status xivo") [ -e "$S/failed" ] && exit 2; [ -e "$S/xivo" ] || exit 1 ;;
esac
`;
  for (const name of names) await stand(name, name === "wazo-service" ? wazoService : RECORD + (extra[name] ?? ""));
}

async function stand(name: string, script: string) {
  await writeFile(join(stands, name), script);
  await chmod(join(stands, name), 0o755);
}

async function config() {
  const path = join(dir.path, "agent.json");
  await writeFile(
    path,
    JSON.stringify({
      clusterId: "wazo",
      worker: { url: "http://127.0.0.1:9", token: "wazo-preset-token", publicKeys: [(await testSecrets()).publicJwk] },
      master: { host: "127.0.0.1" },
      stateDir: join(dir.path, "state"),
      services: { preset: "wazo", retry: { retries: 0, backoffMs: 10, maxBackoffMs: 10 } },
      lan: { probes: [{ kind: "tcp", name: "t", port: 9, timeoutMs: 200 }] },
      http: { host: "127.0.0.1", port: null },
    }),
  );
  return path;
}

/** The bin as an administrator runs it, with only the stand-ins and the system's tools on PATH. */
function manage(verb: "start" | "stop", cfg: string): Promise<{ code: number | null; out: string }> {
  const env = { ...process.env, PATH: `${stands}:/usr/bin:/bin`, CALLS: join(dir.path, "calls"), STATE: dir.path };
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, "manage-slave-services", verb, "--config", cfg], {
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    child.once("exit", (code) => resolve({ code, out }));
  });
}

/** The recorded calls since the last read, status checks apart. */
let seen = 0;
beforeEach(() => (seen = 0));
async function calls() {
  const all = (await readFile(join(dir.path, "calls"), "utf8").catch(() => "")).split("\n").filter(Boolean);
  const fresh = all.slice(seen);
  seen = all.length;
  return {
    actions: fresh.filter((c) => c !== "wazo-service status xivo"),
    statusChecks: fresh.filter((c) => c === "wazo-service status xivo").length,
  };
}

describe("the wazo preset, with Wazo's xivo-manage-slave-services on PATH", () => {
  it("delegates start and stop to it and checks the xivo group", async () => {
    await standIns();
    // Wazo's script, reduced to what the status check sees of it.
    await stand(
      "xivo-manage-slave-services",
      `${RECORD}if [ "$1" = start ]; then wazo-service enable; wazo-service start; else wazo-service stop xivo; wazo-service disable; wazo-service start; fi\n`,
    );
    const cfg = await config();

    const start = await manage("start", cfg);
    expect(start.code, start.out).toBe(0);
    expect(start.out).toMatch(/start: done; services running; role active/);
    const started = await calls();
    expect(started.actions).toEqual(["xivo-manage-slave-services start", "wazo-service enable", "wazo-service start"]);
    expect(started.statusChecks).toBeGreaterThanOrEqual(1);

    const stop = await manage("stop", cfg);
    expect(stop.code, stop.out).toBe(0);
    expect(stop.out).toMatch(/stop: done; services stopped; role standby/);
    expect((await calls()).actions).toEqual([
      "xivo-manage-slave-services stop",
      "wazo-service stop xivo",
      "wazo-service disable",
      "wazo-service start",
    ]);
  });

  it("is chosen only when the script is an executable file on the agent's PATH", async () => {
    expect(presetFor("wazo", { PATH: stands })).toBe(PRESETS.wazo);
    await writeFile(join(stands, "xivo-manage-slave-services"), "#!/bin/sh\n");
    expect(presetFor("wazo", { PATH: stands })).toBe(PRESETS.wazo); // not executable
    await chmod(join(stands, "xivo-manage-slave-services"), 0o755);
    expect(presetFor("wazo", { PATH: `relative:${stands}` })).toBe(WAZO_DELEGATE);
    expect(presetFor("wazo", { PATH: "relative" })).toBe(PRESETS.wazo);
    expect(presetFor("wazo", {})).toBe(PRESETS.wazo);
    expect(presetFor("xivo", { PATH: stands })).toBe(PRESETS.xivo);
  });
});

describe("the wazo preset, without the script: Wazo's steps, in Wazo's order", () => {
  it("start: wazo-auth, replicated config and DHCP, berofos, pjsip cache, services, agents relogged", async () => {
    await standIns();
    const start = await manage("start", await config());
    expect(start.code, start.out).toBe(0);
    expect((await calls()).actions).toEqual([
      "systemctl restart wazo-auth",
      "xivo-create-config",
      "xivo-update-config",
      "dhcpd-update -dr",
      "service isc-dhcp-server start",
      "update-rc.d isc-dhcp-server defaults",
      "xivo-berofos -q --syslog slave",
      "xivo-confgen asterisk/pjsip.conf --invalidate",
      "wazo-service enable",
      "wazo-service start",
      "wazo-agentd-cli -c relog all",
    ]);
  });

  it("stop: only the xivo group stops, and the default group comes back so wazo-auth and confd stay up", async () => {
    await standIns();
    const cfg = await config();
    expect((await manage("start", cfg)).code).toBe(0);
    await calls();
    const stop = await manage("stop", cfg);
    expect(stop.code, stop.out).toBe(0);
    expect((await calls()).actions).toEqual([
      "wazo-service stop xivo",
      "wazo-service disable",
      "xivo-berofos -q --syslog master",
      "update-rc.d isc-dhcp-server remove",
      "service isc-dhcp-server stop",
      "wazo-service start",
    ]);
  });

  it("a failed service in the xivo group (wazo-service status exit 2) fails the start, and says so", async () => {
    await standIns();
    await writeFile(join(dir.path, "failed"), "");
    const start = await manage("start", await config());
    expect(start.code).toBe(1);
    expect(start.out).toMatch(/start: FAILED; services stopped/);
  });
});

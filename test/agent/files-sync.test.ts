import { mkdir, readdir, readFile, rm, stat, truncate, writeFile } from "node:fs/promises";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { parseConfig } from "../../agent/config.js";
import {
  FilesConfig,
  resolveFilesConfig,
  WAZO_EXCLUDES,
  WAZO_PATHS,
  type ResolvedFilesConfig,
} from "../../agent/files/config.js";
import { rsyncArgv, sshCommand } from "../../agent/files/pull.js";
import { StandbySync } from "../../agent/standby-sync.js";
import { writeState } from "../../agent/state.js";
import { freePort } from "../../scripts/edge.js";
import { fromReport } from "../../worker/notify/events.js";
import { agentReport } from "../support/agent-report.js";
import { keygen, sshdMissing, startSshd, type Sshd } from "../support/sshd.js";
import { until } from "../support/until.js";
import { idleKeeper, tempDir } from "./helpers.js";

/**
 * The standby's file pull against a real OpenSSH server on loopback with real rsync: the master
 * and the slave are two folders of this machine (`root` is where the master's `/` lands).
 */
const missing = sshdMissing();

describe("files config", () => {
  const base = { identityFile: "/root/.ssh/xivo_ha", hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBa9 root@master" };
  const issues = (v: unknown) => {
    const r = FilesConfig.safeParse(v);
    return r.success ? [] : [...new Set(r.error.issues.map((i) => i.path.join(".")))];
  };

  it("defaults to wazo-sync's list, pinned host key, root on port 22", () => {
    const c = resolveFilesConfig(FilesConfig.parse(base), "10.0.0.10");
    expect(c).toMatchObject({
      host: "10.0.0.10",
      port: 22,
      user: "root",
      paths: [...WAZO_PATHS],
      exclude: [...WAZO_EXCLUDES],
    });
    expect(c).not.toHaveProperty("field");
    expect(WAZO_PATHS).toContain("/etc/asterisk/extensions_extra.d");
    expect(WAZO_PATHS).toContain("/var/lib/asterisk/moh");
  });

  it("refuses unsafe paths, an unpinned or doubly pinned host key, and an option-like host", () => {
    expect(issues({ ...base, paths: ["etc/asterisk"] })).toEqual(["paths.0"]);
    expect(issues({ ...base, paths: ["/var/lib/../../etc"] })).toEqual(["paths.0"]);
    expect(issues({ ...base, paths: ["/"] })).toEqual(["paths.0"]);
    expect(issues({ ...base, paths: ["/var/lib/a b"] })).toEqual(["paths.0"]);
    expect(issues({ ...base, paths: ["/var/lib/x;rm"] })).toEqual(["paths.0"]);
    expect(issues({ ...base, paths: Array.from({ length: 65 }, (_, i) => `/d${i}`) })).toEqual(["paths"]);
    expect(issues({ ...base, paths: [`/${"a".repeat(300)}`] })).toEqual(["paths.0"]);
    expect(issues({ identityFile: base.identityFile })).toEqual(["knownHosts"]);
    expect(issues({ ...base, knownHosts: "/etc/ssh/ssh_known_hosts" })).toEqual(["knownHosts"]);
    expect(issues({ ...base, hostKey: "ssh-ed25519 AAAA\nevil" })).toEqual(["hostKey"]);
    expect(issues({ ...base, host: "-oProxyCommand=sh" })).toEqual(["host"]);
    expect(issues({ ...base, identityFile: "key" })).toEqual(["identityFile"]);
  });

  it("in the agent config: the error names the field; master.host is the default host", () => {
    const agent = (files: unknown, host = "10.0.0.10") => ({
      clusterId: "c",
      worker: {
        url: "https://w.example",
        token: "t",
        publicKeys: [{ kty: "OKP", crv: "Ed25519", x: "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo" }],
      },
      master: { host },
      services: { preset: "xivo" },
      files,
    });
    expect(parseConfig(agent(base), {}, "t.json").files).toMatchObject({ host: "10.0.0.10", paths: [...WAZO_PATHS] });
    expect(() => parseConfig(agent({ ...base, paths: ["rel"] }), {}, "t.json")).toThrow(
      /files\.paths\[0\]: expected an absolute path/,
    );
    expect(() => parseConfig(agent(base, "-oProxyCommand=x"), {}, "t.json")).toThrow(
      /master\.host: expected a host name/,
    );
    expect(parseConfig(agent(undefined), {}, "t.json").files).toBeNull();
  });

  it("argv: no shell anywhere, the host key checked strictly, one connection for every path", () => {
    const c = resolveFilesConfig(
      FilesConfig.parse({ ...base, host: "::1", paths: ["/a", "/b"] }),
      "x",
    ) as ResolvedFilesConfig;
    const ssh = sshCommand(c, "/tmp/kh", true);
    for (const o of [
      "StrictHostKeyChecking=yes",
      "BatchMode=yes",
      "IdentitiesOnly=yes",
      "ConnectTimeout=10",
      "UserKnownHostsFile=/tmp/kh",
      "HostKeyAlias=",
    ]) {
      expect(ssh).toContain(o);
    }
    const argv = rsyncArgv(c, ssh, "/");
    expect(argv.slice(-3)).toEqual(["root@[::1]:/a", ":/b", "/"]);
    expect(argv).toContain("--delete-after");
  });
});

describe.skipIf(missing)(`file pull over a real sshd${missing ? ` (skipped: ${missing})` : ""}`, () => {
  let sshd: Sshd;
  let keys: { path: string; remove: () => Promise<void> };
  let dir: { path: string; remove: () => Promise<void> };
  let master: string;
  let slave: string;

  beforeAll(async () => {
    keys = await tempDir("xivo-ha-sshd-");
    sshd = await startSshd(keys.path);
  }, 60_000);
  afterAll(async () => {
    await sshd?.stop();
    await keys?.remove();
  });
  beforeEach(async () => {
    dir = await tempDir("xivo-ha-files-");
    master = join(dir.path, "master");
    slave = join(dir.path, "slave");
    await mkdir(slave);
  });
  afterEach(async () => dir.remove());

  const put = async (file: string, text: string) => {
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, text);
  };
  const onSlave = (p: string) => join(slave, p);
  const exists = (p: string) =>
    stat(p).then(
      () => true,
      () => false,
    );

  function files(over: Record<string, unknown> = {}): ResolvedFilesConfig {
    const c = resolveFilesConfig(
      FilesConfig.parse({
        host: "127.0.0.1",
        port: sshd.port,
        identityFile: sshd.identityFile,
        knownHosts: sshd.knownHosts,
        paths: [
          join(master, "etc/asterisk/extensions_extra.d"),
          join(master, "var/lib/asterisk/moh"),
          join(master, "not/on/the/master"),
        ],
        exclude: [`${master}/var/lib/wazo/sounds/tenants/*/recording*`],
        connectTimeoutMs: 5_000,
        ...over,
      }),
      "unused",
    );
    if ("field" in c) throw new Error(c.message);
    return c;
  }

  function sync(cfg: ResolvedFilesConfig, opts: { masterUp?: () => boolean } = {}) {
    const keeper = idleKeeper(dir.path);
    return new StandbySync({
      keeper,
      stateDir: dir.path,
      replication: null,
      failback: null,
      files: cfg,
      filesRoot: slave,
      masterUp: opts.masterUp ?? (() => true),
      log: () => {},
    });
  }
  const role = (r: "standby" | "active") =>
    writeState(dir.path, { v: 1, role: r, since: 1, lastAction: null, lastSeq: null, reconcilePending: false });
  const report = (s: StandbySync) => agentReport({ alerts: s.alerts(), replication: s.reportField() });

  it("mirrors the listed paths (deletions after the transfer), leaves the rest of the slave alone", async () => {
    const dialplan = join(master, "etc/asterisk/extensions_extra.d");
    await put(join(dialplan, "custom.conf"), "[custom]\nexten => 100,1,Answer()\n");
    await put(join(dialplan, "sub/more.conf"), "; more\n");
    await put(join(master, "var/lib/asterisk/moh/default/song.wav"), "RIFF....");
    await put(join(master, "var/lib/wazo/sounds/tenants/t1/playback/hello.wav"), "hello");
    await put(join(master, "var/lib/wazo/sounds/tenants/t1/recording/call.wav"), "a call");
    // On the slave: a stale file in a mirrored folder, and the slave's own files elsewhere.
    await put(onSlave(join(dialplan, "stale.conf")), "; gone from the master\n");
    await put(onSlave(join(master, "etc/asterisk/sip.conf")), "; the slave's own\n");
    await put(onSlave(join(master, "var/lib/wazo/sounds/tenants/t1/recording/slave-call.wav")), "slave's call");
    await role("standby");
    const cfg = files({ paths: [...files().paths, join(master, "var/lib/wazo/sounds/tenants")] });
    const s = sync(cfg);
    expect(await s.run()).toBe("files-pulled");
    expect(s.lastFiles).toMatchObject({ ok: true, error: null, filesTransferred: 4 });
    expect(await readFile(onSlave(join(dialplan, "custom.conf")), "utf8")).toContain("exten => 100");
    expect(await readFile(onSlave(join(dialplan, "sub/more.conf")), "utf8")).toBe("; more\n");
    expect(await readFile(onSlave(join(master, "var/lib/asterisk/moh/default/song.wav")), "utf8")).toBe("RIFF....");
    expect(await readFile(onSlave(join(master, "var/lib/wazo/sounds/tenants/t1/playback/hello.wav")), "utf8")).toBe(
      "hello",
    );
    expect(await exists(onSlave(join(dialplan, "stale.conf")))).toBe(false);
    // Outside the list, and excluded: untouched (an excluded file is not deleted either).
    expect(await readFile(onSlave(join(master, "etc/asterisk/sip.conf")), "utf8")).toBe("; the slave's own\n");
    expect(await exists(onSlave(join(master, "var/lib/wazo/sounds/tenants/t1/recording/call.wav")))).toBe(false);
    expect(
      await readFile(onSlave(join(master, "var/lib/wazo/sounds/tenants/t1/recording/slave-call.wav")), "utf8"),
    ).toBe("slave's call");
    expect(s.alerts()).toEqual([]);
    expect(s.reportField()).toMatchObject({ ok: true, error: null });

    // A file removed on the master goes on the next pass; a new one arrives.
    await rm(join(dialplan, "sub/more.conf"));
    await put(join(dialplan, "new.conf"), "; new\n");
    expect(await s.run()).toBe("files-pulled");
    expect(await exists(onSlave(join(dialplan, "sub/more.conf")))).toBe(false);
    expect(await readFile(onSlave(join(dialplan, "new.conf")), "utf8")).toBe("; new\n");
  }, 60_000);

  it("a host key given as one line works like a known_hosts file", async () => {
    await put(join(master, "etc/asterisk/extensions_extra.d/a.conf"), "a");
    await role("standby");
    const s = sync(files({ knownHosts: undefined, hostKey: `${sshd.hostKey} comment ignored` }));
    expect(await s.run()).toBe("files-pulled");
    expect(await readFile(onSlave(join(master, "etc/asterisk/extensions_extra.d/a.conf")), "utf8")).toBe("a");
  }, 30_000);

  it("a wrong host key is refused: nothing transferred, and the failure is an alert and a replication.failing event", async () => {
    await put(join(master, "etc/asterisk/extensions_extra.d/a.conf"), "a");
    await role("standby");
    const other = await keygen(join(dir.path, "impostor"));
    const s = sync(files({ knownHosts: undefined, hostKey: other }));
    expect(await s.run()).toBe("files-failed");
    expect(s.lastFiles?.error).toMatch(/^ssh to the master failed: .*Host key verification failed/s);
    expect(await readdir(slave)).toEqual([]);
    expect(s.alerts()).toEqual([expect.stringMatching(/^file pull from the master failing: ssh to the master failed/)]);
    const failing = report(s);
    expect(failing.replication).toMatchObject({
      ok: false,
      error: expect.stringMatching(/^file pull from the master: ssh/),
    });
    const events = fromReport(null, failing);
    expect(events).toEqual([
      expect.objectContaining({
        type: "replication.failing",
        reason: expect.stringContaining("file pull from the master"),
      }),
    ]);

    // Pinned right again: recovered.
    const good = sync(files());
    s.lastFiles = null;
    expect(await good.run()).toBe("files-pulled");
    expect(fromReport(failing, report(good)).map((e) => e.type)).toEqual(["replication.recovered"]);
  }, 30_000);

  it("the master unreachable: the pull fails with ssh's reason", async () => {
    await role("standby");
    const s = sync(files({ port: await freePort() }));
    expect(await s.run()).toBe("files-failed");
    expect(s.lastFiles?.error).toMatch(/^ssh to the master failed: .*Connection refused/s);
    expect(s.alerts()[0]).toMatch(/^file pull from the master failing: .*Connection refused/s);
  }, 30_000);

  it("never while active, nor while the master is not up", async () => {
    await put(join(master, "etc/asterisk/extensions_extra.d/a.conf"), "a");
    await put(onSlave(join(master, "etc/asterisk/extensions_extra.d/mine.conf")), "written while active");
    await role("active");
    const s = sync(files());
    expect(await s.run()).toBe("not-standby");
    await role("standby");
    expect(await sync(files(), { masterUp: () => false }).run()).toBe("master-not-up");
    expect(s.lastFiles).toBeNull();
    expect(await readdir(onSlave(join(master, "etc/asterisk/extensions_extra.d")))).toEqual(["mine.conf"]);
  }, 30_000);

  it("cancelled mid-transfer (the verdict left 'up'): rsync and ssh killed within a second", async () => {
    const big = join(master, "var/lib/asterisk/moh/big.wav");
    await put(big, "");
    await truncate(big, 2 * 1024 ** 3); // sparse on the master, written in full on the slave: slow enough
    await role("standby");
    const s = sync(files());
    const run = s.run();
    const into = onSlave(join(master, "var/lib/asterisk/moh"));
    // rsync writes into a temp file beside the target: the transfer is under way.
    await until(
      "the transfer to start",
      async () => (await readdir(into).catch(() => [])).some((f) => f.startsWith(".big.wav.")),
      { timeoutMs: 20_000, everyMs: 20 },
    );
    const t0 = performance.now();
    s.cancel();
    const outcome = await run;
    const tookMs = performance.now() - t0;
    expect(outcome).toBe("files-failed");
    expect(s.lastFiles?.error).toMatch(/^aborted \(rsync killed\)/);
    expect(tookMs).toBeLessThan(1_500);
    expect(await exists(join(into, "big.wav"))).toBe(false);
    // No rsync or ssh of this test's is left running.
    const mine = () =>
      readdirSync("/proc").filter(
        (pid) =>
          /^\d+$/.test(pid) &&
          (cmdline(pid).includes(dir.path) || cmdline(pid).includes(keys.path)) &&
          /(^|\/)(rsync|ssh)\0/.test(cmdline(pid)),
      );
    await until("rsync and ssh gone", () => mine().length === 0, {
      timeoutMs: 2_000,
      detail: () => mine().map(cmdline).join(" | "),
    });
  }, 60_000);
});

function cmdline(pid: string): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8");
  } catch {
    return "";
  }
}

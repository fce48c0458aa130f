import { execFile } from "node:child_process";
import { cp, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { keyFingerprint } from "../../protocol/signing.js";
import { packageAgent } from "../../scripts/package-agent.js";
import { debianRoot, debianRootUnavailable, DEBIAN_ROOT } from "../support/field-cache.js";
import { AGENT_TOKEN, until, usePairs } from "../support/pair.js";

/**
 * The package as a slave gets it: built with dpkg-deb, checked by lintian, installed with
 * `apt-get install ./….deb` into a clean Debian 12 root (debootstrap, prepared and cached by
 * test/support/field-cache.ts before the network goes away) so that Debian's own nodejs runs it,
 * then its commands run there under chroot against the worker under wrangler dev on loopback.
 */
const run = promisify(execFile);
const why = await debianRootUnavailable();
if (why && process.env.CI) throw new Error(`the Debian package test cannot run under CI: ${why}`);
const cachedRoot = debianRoot();
const rootMissing = await stat(cachedRoot).then(
  () => null,
  () => `no cached Debian root at ${cachedRoot} (npx tsx test/support/field-cache.ts makes it)`,
);
if (!why && rootMissing && process.env.CI) throw new Error(rootMissing);
const skip = why ?? rootMissing;
if (skip) console.warn(`deb.test.ts skipped: ${skip}`);

const CHROOT_ENV = {
  PATH: "/usr/sbin:/usr/bin:/sbin:/bin",
  LANG: "C.UTF-8",
  DEBIAN_FRONTEND: "noninteractive",
  HOME: "/root",
};

describe.skipIf(skip)(`the Debian package on a clean ${DEBIAN_ROOT.suite}`, () => {
  const { pair } = usePairs();
  let dir: string;
  let root: string;
  let deb: string;
  let upgrade: string;

  /** A command inside the Debian root: its exit code and output, never a throw. */
  const inRoot = (argv: string[], timeout = 120_000) =>
    run("chroot", [root, ...argv], { env: CHROOT_ENV, timeout, maxBuffer: 16 << 20 }).then(
      ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
      (e: { code?: number; stdout?: string; stderr?: string }) => ({
        code: typeof e.code === "number" ? e.code : -1,
        stdout: e.stdout ?? "",
        stderr: e.stderr ?? "",
      }),
    );
  const install = async (file: string) => {
    await cp(file, join(root, "tmp", "pkg.deb"));
    // Offline: nodejs is already in the root, so apt has nothing to download.
    const r = await inRoot(["apt-get", "install", "-y", "/tmp/pkg.deb"]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    return r;
  };
  const mode = async (p: string) => ((await stat(join(root, p))).mode & 0o7777).toString(8);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "xivo-ha-deb-"));
    const [built, next] = await Promise.all([
      packageAgent({ outDir: join(dir, "v1"), version: "0.1.0" }),
      packageAgent({ outDir: join(dir, "v2"), version: "0.1.1-rc.1" }),
    ]);
    [deb, upgrade] = [built, next];
    root = join(dir, "root");
    await run("cp", ["-a", "--reflink=auto", cachedRoot, root]);
  }, 180_000);
  afterAll(() => (dir ? rm(dir, { recursive: true, force: true }) : undefined));

  it("is named for its version, depends on Debian's nodejs only, and lintian reports no error", async () => {
    expect(deb).toMatch(/xivo-ha-agent_0\.1\.0_all\.deb$/);
    expect(upgrade).toMatch(/xivo-ha-agent_0\.1\.1~rc\.1_all\.deb$/);
    const fields = (await run("dpkg-deb", ["--field", deb, "Depends", "Architecture"])).stdout;
    expect(fields).toContain("Depends: nodejs (>= 18.19)\n");
    expect(fields).toContain("Architecture: all");
    const contents = (await run("dpkg-deb", ["--contents", deb])).stdout;
    expect(contents).not.toMatch(/\.\/etc\//); // the config is the administrator's, never the package's
    expect(contents).not.toMatch(/node_modules/);
    const lint = await run("lintian", ["--fail-on", "error", deb]).then(
      (r) => ({ code: 0, out: r.stdout + r.stderr }),
      (e) => ({ code: e.code as number, out: `${e.stdout}${e.stderr}` }),
    );
    expect(lint.out).not.toMatch(/^E: /m);
    expect(lint.code, lint.out).toBe(0);
  });

  it("installs offline with apt-get, under Debian's nodejs, with the files and modes it promises", async () => {
    await install(deb);
    expect((await inRoot(["dpkg-query", "-W", "-f", "${Version} ${db:Status-Status}", "xivo-ha-agent"])).stdout).toBe(
      "0.1.0 installed",
    );
    expect((await inRoot(["node", "--version"])).stdout).toMatch(/^v18\./);
    expect(await mode("var/lib/xivo-ha")).toBe("700");
    expect(await mode("etc/xivo-ha")).toBe("750");
    expect(await mode("usr/bin/xivo-ha-agent")).toBe("755");
    await stat(join(root, "usr/lib/xivo-ha-agent/xivo-ha-agent.mjs"));
    await stat(join(root, "usr/share/doc/xivo-ha-agent/examples/agent.json"));
    await stat(join(root, "usr/share/doc/xivo-ha-agent/README.md.gz"));
    await stat(join(root, "usr/share/man/man1/xivo-ha-agent.1.gz"));
    const unit = await readFile(join(root, "lib/systemd/system/xivo-ha-agent.service"), "utf8");
    expect(unit).toMatch(/^ConditionPathExists=\/etc\/xivo-ha\/agent\.json$/m);
    expect(unit).toMatch(/^ExecStart=\/usr\/bin\/xivo-ha-agent run --config \/etc\/xivo-ha\/agent\.json$/m);
  });

  it("runs in the Debian root: help, then commands against the worker on loopback; an upgrade keeps the config; purge removes the state", async () => {
    // A cluster on the worker, its master stand-in up; the config points the agent at both.
    const p = await pair();
    const cfg = JSON.parse(await readFile(p.configPath, "utf8"));
    const services = {
      start: [{ argv: ["true"] }],
      stop: [{ argv: ["true"] }],
      status: [{ argv: ["false"] }],
      retry: { retries: 0, backoffMs: 10, maxBackoffMs: 10 },
    };
    // A hold-down longer than the master has been up on the worker when the decision step first
    // runs: that step always meets the hold (exit 0, no role yet) and must wait it out.
    const config = JSON.stringify(
      {
        ...cfg,
        failbackHoldDownMs: 10_000,
        stateDir: "/var/lib/xivo-ha",
        services,
        http: { host: "127.0.0.1", port: null },
      },
      null,
      2,
    );
    await writeFile(join(root, "root/xivo-ha.token"), `${AGENT_TOKEN}\n`, { mode: 0o600 });
    const init = [
      "xivo-ha-agent",
      "init",
      "--worker",
      cfg.worker.url,
      "--cluster",
      p.id,
      "--master",
      "127.0.0.1",
      "--preset",
      "xivo",
      "--token-file",
      "/root/xivo-ha.token",
      "--expect-key",
      await keyFingerprint(cfg.worker.publicKeys[0]),
    ];

    // One table of steps, each a command as an administrator types it on the slave, in order;
    // `untilMs` retries a step that waits on the worker (its first verdict takes a round or two)
    // until both its exit code and its output are the expected ones;
    // `then` checks or prepares what the next steps need.
    const steps: {
      name: string;
      argv: string[];
      code: number;
      out: RegExp;
      untilMs?: number;
      then?: () => Promise<void>;
    }[] = [
      { name: "help", argv: ["xivo-ha-agent", "--help"], code: 0, out: /Usage: xivo-ha-agent <command>/ },
      { name: "a usage mistake", argv: ["xivo-ha-agent", "bogus"], code: 2, out: /expected a command/ },
      {
        name: "init against the worker, the key pinned",
        argv: init,
        code: 0,
        out: /token accepted[\s\S]*wrote \/etc\/xivo-ha\/agent\.json \(0640\) and \/etc\/xivo-ha\/agent\.env \(0600, the token\)/,
        then: async () => {
          expect(await mode("etc/xivo-ha/agent.json")).toBe("640");
          expect(await mode("etc/xivo-ha/agent.env")).toBe("600");
        },
      },
      {
        name: "init again, without --force",
        argv: init,
        code: 6,
        out: /agent\.json exists; nothing written/,
        // The rest runs with stand-in services: the xivo preset's systemctl has no Asterisk here.
        then: () => writeFile(join(root, "etc/xivo-ha/agent.json"), config, { mode: 0o640 }),
      },
      { name: "status before any decision", argv: ["xivo-ha-agent", "status"], code: 0, out: /role\s+unknown/ },
      {
        name: "one decision pass against the worker",
        argv: ["xivo-ha-agent", "check-master-status"],
        code: 0,
        // The decision that records a role (standby, from none). A hold exits 0 too but records
        // nothing: the worker's startup grace, or the failback hold-down while the master's "up"
        // is younger than it, which on a loaded machine the first verdicts can be.
        out: /^failback(?:-edge-only)?: /m,
        untilMs: 45_000,
      },
      { name: "status after it", argv: ["xivo-ha-agent", "status", "--json"], code: 0, out: /"role": "standby"/ },
      {
        name: "doctor",
        argv: ["xivo-ha-agent", "doctor"],
        code: 0,
        out: /^ok {6}verdict: fresh and authentic[\s\S]*^0 failed, /m,
      },
    ];
    for (const s of steps) {
      const attempt = async () => {
        const r = await inRoot(s.argv);
        return r.code === s.code && s.out.test(r.stdout + r.stderr) ? r : null;
      };
      const r = s.untilMs ? await until(s.name, attempt, p, s.untilMs) : await inRoot(s.argv);
      expect({ step: s.name, code: r.code }, r.stdout + r.stderr).toEqual({ step: s.name, code: s.code });
      expect(r.stdout + r.stderr, s.name).toMatch(s.out);
      // Never a stack trace, nor Node 18's notice that its Ed25519 is experimental; never the token.
      expect(r.stderr, s.name).not.toMatch(/\n\s+at |ExperimentalWarning/);
      expect(r.stdout + r.stderr, s.name).not.toContain(AGENT_TOKEN);
      await s.then?.();
    }
    const state = JSON.parse(await readFile(join(root, "var/lib/xivo-ha/role.json"), "utf8"));
    expect(state.role).toBe("standby");

    await install(upgrade);
    expect((await inRoot(["dpkg-query", "-W", "-f", "${Version}", "xivo-ha-agent"])).stdout).toBe("0.1.1~rc.1");
    expect(await readFile(join(root, "etc/xivo-ha/agent.json"), "utf8")).toBe(config);
    expect(await mode("var/lib/xivo-ha")).toBe("700");
    expect(JSON.parse(await readFile(join(root, "var/lib/xivo-ha/role.json"), "utf8")).role).toBe("standby");

    const purge = await inRoot(["dpkg", "--purge", "xivo-ha-agent"]);
    expect(purge.code, purge.stdout + purge.stderr).toBe(0);
    for (const gone of ["var/lib/xivo-ha", "etc/xivo-ha", "usr/bin/xivo-ha-agent", "usr/lib/xivo-ha-agent"]) {
      await expect(stat(join(root, gone)), gone).rejects.toThrow(/ENOENT/);
    }
  });
});

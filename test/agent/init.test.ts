import { execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { readFile, stat, writeFile } from "node:fs/promises";
import { createServer as createHttpServer } from "node:http";
import { createServer } from "node:https";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { loadConfig } from "../../agent/config.js";
import { keyFingerprint } from "../../protocol/signing.js";
import { freePort } from "../../scripts/edge.js";
import { initLine, InitLineError, shellWord } from "../../scripts/init-line.js";
import { AGENT_BIN, agentCli } from "../support/agent-cli.js";
import { startEdgeLab, type EdgeLab } from "../support/edge-lab.js";
import { tempDir } from "./helpers.js";

/**
 * `xivo-ha-agent init` against the worker under wrangler dev: the config it writes, its modes,
 * the key it pins, and each mistake it names (nothing written then).
 */
const TOKEN = "init-test-agent-token-0123456789abcdef";
let lab: EdgeLab;
const cluster = `init-${crypto.randomUUID().slice(0, 8)}`;
beforeAll(async () => {
  lab = await startEdgeLab();
  const put = await lab.admin("PUT", `/v1/clusters/${cluster}`, {
    master: { host: "127.0.0.1" },
    probes: [{ kind: "tcp", name: "web", port: 9, timeoutMs: 500 }],
    intervalSec: 60,
    agentToken: TOKEN,
  });
  expect(put.status).toBe(201);
}, 120_000);
afterAll(() => lab?.stop());

let dir: Awaited<ReturnType<typeof tempDir>>;
let tokenFile: string;
beforeEach(async () => {
  dir = await tempDir();
  tokenFile = join(dir.path, "token");
  await writeFile(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
});
afterEach(() => dir.remove());

const root = () => join(dir.path, "root");
const configFile = () => join(root(), "etc/xivo-ha/agent.json");
const envFile = () => join(root(), "etc/xivo-ha/agent.env");
const mode = async (p: string) => ((await stat(p)).mode & 0o777).toString(8);
const gone = (p: string) => expect(stat(p), p).rejects.toThrow(/ENOENT/);
const fingerprint = () => keyFingerprint(lab.secrets.publicJwk);
const initArgs = async (extra: string[] = [], over: { worker?: string; cluster?: string } = {}) => [
  "init",
  "--root",
  root(),
  "--worker",
  over.worker ?? lab.edge.url,
  "--cluster",
  over.cluster ?? cluster,
  "--master",
  "10.0.0.10",
  "--token-file",
  tokenFile,
  ...extra,
];

describe("xivo-ha-agent init", () => {
  it("the worker side's init line, run as printed, writes a config the agent loads: key pinned, probes and ready check filled, modes 0640 / 0600, token never printed", async () => {
    const lines = await initLine(
      { worker: lab.edge.url, cluster, preset: "xivo", "token-file": tokenFile },
      lab.secrets.adminToken,
    );
    const fp = await fingerprint();
    expect(lines.join("\n")).toContain(`fingerprint ${fp}`);
    const line = lines.find((l) => l.startsWith("xivo-ha-agent init "))!;
    // The master defaults to the address the worker probes, read with the admin token.
    expect(line).toBe(
      `xivo-ha-agent init --worker ${lab.edge.url} --cluster ${cluster} --master 127.0.0.1 --preset xivo --token-file ${tokenFile} --expect-key ${fp}`,
    );
    expect(lines.join("\n")).not.toContain(TOKEN);

    const r = await agentCli([...line.split(" ").slice(1), "--root", root()]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain(`fingerprint ${fp}`);
    expect(r.out).toMatch(/token accepted: a signed verdict/);
    expect(r.out + r.err).not.toContain(TOKEN);
    expect(await mode(configFile())).toBe("640");
    expect(await mode(envFile())).toBe("600");
    expect(await readFile(envFile(), "utf8")).toBe(`XIVO_HA_WORKER_TOKEN=${TOKEN}\n`);
    expect(await readFile(configFile(), "utf8")).not.toContain(TOKEN);

    const cfg = await loadConfig(configFile(), { XIVO_HA_WORKER_TOKEN: TOKEN, PATH: "/usr/bin:/bin" });
    expect(cfg).toMatchObject({
      clusterId: cluster,
      master: { host: "127.0.0.1" },
      worker: { url: lab.edge.url, token: TOKEN, publicKeys: [{ x: lab.secrets.publicJwk.x }] },
    });
    expect(cfg.services.status.map((c) => c.argv.join(" "))).toEqual([
      "systemctl is-active --quiet asterisk",
      "systemctl is-active --quiet monit",
    ]);
    expect(cfg.services.ready?.probe).toMatchObject({ kind: "sip", port: 5060 });
    expect(cfg.lan.probes.map((p) => `${p.kind}:${p.port}`)).toEqual([
      "sip:5060",
      "sip:5060",
      "tcp:443",
      "postgres:5432",
    ]);
  });

  it("never overwrites an existing config without --force; with it, replaces it", async () => {
    const args = await initArgs(["--expect-key", await fingerprint()]);
    expect((await agentCli(args)).code).toBe(0);
    await writeFile(configFile(), '{"mine": true}\n');
    const again = await agentCli(args);
    expect(again.code).toBe(6);
    expect(again.err).toMatch(/agent\.json exists; nothing written \(--force replaces it\)/);
    expect(await readFile(configFile(), "utf8")).toBe('{"mine": true}\n');
    const forced = await agentCli([...args, "--force"]);
    expect(forced.code, forced.err).toBe(0);
    expect(JSON.parse(await readFile(configFile(), "utf8")).clusterId).toBe(cluster);
  });

  it("a fingerprint that does not match writes nothing", async () => {
    const r = await agentCli(await initArgs(["--expect-key", "A".repeat(43)]));
    expect(r.code).toBe(1);
    expect(r.out).toContain(`fingerprint ${await fingerprint()}`);
    expect(r.err).toMatch(/no key of the worker has fingerprint A{43}.*nothing written/);
    await gone(configFile());
    await gone(envFile());
  });

  it("without --expect-key and no terminal to confirm on, it prints the fingerprints and writes nothing", async () => {
    const r = await agentCli(await initArgs());
    expect(r.code).toBe(2);
    expect(r.out).toContain(`fingerprint ${await fingerprint()}`);
    expect(r.err).toMatch(/pass --expect-key FINGERPRINT/);
    await gone(configFile());
  });

  it.each([
    ["y", 0],
    ["n", 6],
  ])("on a terminal, without --expect-key, it asks; %s → exit %d", async (answer, code) => {
    // util-linux `script` gives the command a terminal; the answer arrives through it.
    const argv = [process.execPath, AGENT_BIN, ...(await initArgs())];
    const child = spawn("script", ["-qec", argv.map((a) => `'${a}'`).join(" "), "/dev/null"], {
      stdio: ["pipe", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
      if (out.includes("[y/N]") && child.stdin.writable) child.stdin.end(`${answer}\n`);
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    const [exit] = await once(child, "exit");
    clearTimeout(timer);
    expect(out).toContain(`Does ${await fingerprint()} match the fingerprint`);
    expect(exit, out).toBe(code);
    if (code === 0) expect(await mode(configFile())).toBe("640");
    else await gone(configFile());
  });

  it.each([
    [
      "a wrong token",
      { token: "not-the-token-0123456789abcdef0123456789" },
      /HTTP 401.*refused the token for this cluster id: check the token and --cluster/,
    ],
    // The worker answers an unknown cluster as a refused token, on purpose.
    [
      "an unknown cluster",
      { cluster: "no-such-cluster" },
      /HTTP 401.*refused the token for this cluster id: check the token and --cluster/,
    ],
    ["a URL where nothing listens", { worker: "closed-port" }, /ECONNREFUSED.*check the worker URL/],
  ])(
    "%s: said plainly, nothing written",
    async (_name, o: { token?: string; cluster?: string; worker?: string }, message) => {
      if (o.token) await writeFile(tokenFile, o.token);
      if (o.worker === "closed-port") o = { worker: `http://127.0.0.1:${await freePort()}` };
      const r = await agentCli(await initArgs(["--expect-key", await fingerprint()], o));
      expect(r.code).toBe(1);
      expect(r.err).toMatch(message);
      expect(r.err).not.toMatch(/\n\s+at /);
      expect(r.out + r.err).not.toContain(TOKEN);
      await gone(configFile());
      await gone(envFile());
    },
  );

  it("a certificate this slave does not trust: a TLS failure, named as such", async () => {
    const [key, cert] = await Promise.all([
      readFile("test/fixtures/tls/server.key"),
      readFile("test/fixtures/tls/server.pem"),
    ]);
    const server = createServer({ key, cert }, (_req, res) => res.end("{}"));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    try {
      const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
      // Without the test CA the fixture certificate is what a stranger's would be.
      const r = await agentCli(await initArgs(["--expect-key", await fingerprint()], { worker: url }), {
        NODE_EXTRA_CA_CERTS: "",
      });
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED|certificate/);
      expect(r.err).toMatch(/certificate is not trusted here/);
      await gone(configFile());
    } finally {
      server.close();
    }
  });

  it.each([
    [["init", "--cluster", "c"], TOKEN, /worker: expected an http\(s\) URL/],
    [
      ["init", "--worker", "http://127.0.0.1:9", "--cluster", "c", "--master", "m"],
      "",
      /token: expected --token-file PATH or env XIVO_HA_WORKER_TOKEN/,
    ],
    [
      ["init", "--worker", "http://127.0.0.1:9", "--cluster", "c", "--master", "m"],
      "short",
      /token: expected 32-256 printable characters/,
    ],
    [["status", "--worker", "http://x"], "", /--worker is an option of init only/],
    // Refused before any connection: `.invalid` never resolves, and nothing is sent anywhere.
    [
      ["init", "--worker", "http://worker.invalid", "--cluster", "c", "--master", "m"],
      TOKEN,
      /--worker: expected https:\/\/ \(plain http only to a loopback host/,
    ],
    [
      ["init", "--worker", "https://worker.invalid", "--cluster", "Bad_Id", "--master", "m"],
      TOKEN,
      /--cluster: 1 to 63 characters/,
    ],
    [
      ["init", "--worker", "https://worker.invalid", "--cluster", "c", "--master", "m;reboot"],
      TOKEN,
      /--master: a host name or IP address/,
    ],
  ])("usage mistakes %j → exit 2", async (args, token, message) => {
    const r = await agentCli(args as string[], { XIVO_HA_WORKER_TOKEN: token as string });
    expect(r.code).toBe(2);
    expect(r.err).toMatch(message);
  });
});

describe("npm run init-line", () => {
  it("with ADMIN_TOKEN, a plain http URL to another host is refused before any connection", async () => {
    // `.invalid` never resolves: a connection attempt would fail with a DNS error instead.
    await expect(initLine({ worker: "http://worker.invalid", cluster: "c" }, "admin-token")).rejects.toThrow(
      /--worker: expected https:\/\/ with ADMIN_TOKEN/,
    );
  });

  it("a master host from the worker that is not a host name is refused, never printed", async () => {
    const server = createHttpServer((req, res) => {
      res.setHeader("content-type", "application/json");
      if (req.url === "/v1/keys") return res.end(JSON.stringify({ keys: [lab.secrets.publicJwk] }));
      res.end(JSON.stringify({ config: { master: { host: "10.0.0.1; touch /tmp/pwned" } } }));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    try {
      const worker = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const err = await initLine({ worker, cluster: "c" }, "admin-token").catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InitLineError);
      expect((err as Error).message).toMatch(/did not answer with a cluster whose master is a host name or address/);
      expect((err as Error).message).not.toContain("pwned");
    } finally {
      server.close();
    }
  });

  it.each(["plain/path_1.2:3", "a b", "it's", "$(reboot)", "`id`;x", ""])(
    "every word of the printed line reaches a POSIX shell as is: %j",
    (value) => {
      expect(execFileSync("sh", ["-c", `printf %s ${shellWord(value)}`], { encoding: "utf8" })).toBe(value);
    },
  );
});

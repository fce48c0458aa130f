import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ConfigError, loadConfig, PRESETS, redactConfig, TOKEN_ENV } from "../../agent/config.js";
import { generateSigningKey, type PublicJwk } from "../../protocol/signing.js";
import { tempDir } from "./helpers.js";

let key: PublicJwk;
let dir: { path: string; remove: () => Promise<void> };
let file: string;

beforeAll(async () => (key = (await generateSigningKey()).public));
beforeEach(async () => {
  dir = await tempDir();
  file = join(dir.path, "agent.json");
});
afterEach(() => dir.remove());

function minimal(): Record<string, any> {
  return {
    clusterId: "acme",
    worker: { url: "https://ha.example.net", token: "file-token-123", publicKeys: [key] },
    master: { host: "10.0.0.1" },
    services: { preset: "wazo" },
  };
}

async function load(raw: unknown, env: Record<string, string> = {}) {
  await writeFile(file, typeof raw === "string" ? raw : JSON.stringify(raw));
  return loadConfig(file, env);
}

async function loadError(raw: unknown, env: Record<string, string> = {}): Promise<ConfigError> {
  const err = await load(raw, env).then(
    () => null,
    (e) => e,
  );
  expect(err).toBeInstanceOf(ConfigError);
  return err as ConfigError;
}

describe("loadConfig", () => {
  it("fills in the documented defaults", async () => {
    const c = await load(minimal());
    expect(c).toMatchObject({
      mode: "auto",
      requireLanConfirmation: true,
      failbackHoldDownMs: 60_000,
      noVerdictAlertMs: 60_000,
      stateDir: "/var/lib/xivo-ha",
      worker: { pollIntervalMs: 5_000, maxVerdictAgeMs: 30_000, token: "file-token-123" },
      services: { retry: { retries: 2, backoffMs: 1_000, maxBackoffMs: 30_000 } },
    });
  });

  it("expands the wazo preset (without Wazo's script on PATH: its steps; test/agent/wazo-preset.test.ts runs them)", async () => {
    const c = await load(minimal());
    expect(c.services).toMatchObject(PRESETS.wazo);
    expect(c.services.status.map((x) => x.argv.join(" "))).toEqual(["wazo-service status xivo"]);
  });

  it("expands the xivo preset: monit stops before asterisk, then autostart is disabled", async () => {
    const c = await load({ ...minimal(), services: { preset: "xivo" } });
    const stop = c.services.stop.map((x) => x.argv.join(" "));
    expect(stop.indexOf("systemctl stop monit")).toBeLessThan(stop.indexOf("systemctl stop asterisk"));
    expect(stop.slice(-2).every((s) => s.startsWith("systemctl disable"))).toBe(true);
    const start = c.services.start.map((x) => x.argv.join(" "));
    expect(start).toEqual([
      "systemctl enable asterisk",
      "systemctl start asterisk",
      "systemctl enable monit",
      "systemctl start monit",
    ]);
  });

  it("lets explicit command lists override the preset one list at a time", async () => {
    const status = [{ argv: ["/usr/local/bin/check-asterisk"], timeoutMs: 5_000 }];
    const c = await load({ ...minimal(), services: { preset: "wazo", status } });
    expect(c.services.status).toEqual(status);
    expect(c.services.start).toEqual(PRESETS.wazo.start);
  });

  it("takes the token from the environment, which wins over the file", async () => {
    const noToken = minimal();
    delete noToken.worker.token;
    expect((await load(noToken, { [TOKEN_ENV]: "env-token" })).worker.token).toBe("env-token");
    expect((await load(minimal(), { [TOKEN_ENV]: "env-token" })).worker.token).toBe("env-token");
  });

  it("fails without a token anywhere, naming the field and the env var", async () => {
    const noToken = minimal();
    delete noToken.worker.token;
    const err = await loadError(noToken);
    expect(err.message).toContain(file);
    expect(err.message).toContain("worker.token");
    expect(err.message).toContain(TOKEN_ENV);
  });

  it.each([
    ["clusterId", (c: any) => (c.clusterId = 7), /clusterId: .*expected string/],
    ["worker.url", (c: any) => (c.worker.url = "ftp://x"), /worker\.url: expected an http\(s\) URL/],
    [
      "worker.publicKeys",
      (c: any) => (c.worker.publicKeys = []),
      /worker\.publicKeys: expected at least one trusted public key/,
    ],
    [
      "a public key field",
      (c: any) => (c.worker.publicKeys[0] = { ...key, x: "short" }),
      /worker\.publicKeys\[0\]\.x: /,
    ],
    ["mode", (c: any) => (c.mode = "automatic"), /mode: .*"auto"\|"manual"/],
    ["a duration", (c: any) => (c.failbackHoldDownMs = -1), /failbackHoldDownMs: .*>0/],
    ["stateDir", (c: any) => (c.stateDir = "relative/dir"), /stateDir: expected an absolute path/],
    ["a typo'd key", (c: any) => (c.worker.pollIntervalMS = 1000), /worker: Unrecognized key: "pollIntervalMS"/],
    ["master", (c: any) => delete c.master, /master: .*expected object/],
    ["a command", (c: any) => (c.services.start = [{ argv: [] }]), /services\.start\[0\]\.argv: /],
    [
      "a command timeout",
      (c: any) => (c.services.stop = [{ argv: ["x"], timeoutMs: "10s" }]),
      /services\.stop\[0\]\.timeoutMs: .*expected number/,
    ],
    [
      "poll vs freshness",
      (c: any) => (c.worker.maxVerdictAgeMs = 5_000),
      /worker\.maxVerdictAgeMs: expected more than worker\.pollIntervalMs/,
    ],
    [
      "services without a preset",
      (c: any) => (c.services = { start: [{ argv: ["x"] }] }),
      /services\.stop: expected a command list \(or a "preset"\)/,
    ],
    [
      "ready probe kind",
      (c: any) => (c.services.ready = { probe: { kind: "postgres", name: "pg" } }),
      /services\.ready\.probe\.kind: /,
    ],
    [
      "ready deadline",
      (c: any) => (c.services.ready = { probe: { kind: "sip", name: "s" }, withinMs: 0 }),
      /services\.ready\.withinMs: /,
    ],
  ])("rejects a bad %s, naming the file and the field", async (_, mutate, expected) => {
    const c = minimal();
    mutate(c);
    const err = await loadError(c);
    expect(err.message).toContain(`invalid config ${file}`);
    expect(err.message).toMatch(expected);
  });

  it("lists every problem at once", async () => {
    const err = await loadError({ ...minimal(), clusterId: "", mode: "x", requireLanConfirmation: "yes" });
    expect(err.message.split("\n").slice(1)).toHaveLength(3);
  });

  it("names the file when it is missing or not JSON, without echoing its content", async () => {
    await expect(loadConfig(join(dir.path, "nope.json"), {})).rejects.toThrow(
      /cannot read config .*nope\.json: ENOENT/,
    );
    const err = await loadError('{"worker": {"token": "hunter2-secret" oops');
    expect(err.message).toMatch(new RegExp(`config ${file} is not valid JSON`));
    expect(err.message).not.toContain("hunter2");
    // V8 quotes the text for this kind of error: "Unexpected token 'h', "hunter2-…" is not valid JSON".
    const quoted = await loadError("hunter2-secret-token");
    expect(quoted.message).toContain("is not valid JSON");
    expect(quoted.message).not.toContain("hunter2");
  });

  it("never puts the token in an error message", async () => {
    const c = minimal();
    c.worker.token = 12345678;
    const err = await loadError(c);
    expect(err.message).toContain("worker.token");
    expect(err.message).not.toContain("12345678");
  });

  it("redacts the token for logging", async () => {
    const c = await load(minimal());
    expect(JSON.stringify(redactConfig(c))).not.toContain("file-token-123");
    expect(c.worker.token).toBe("file-token-123");
  });
});

describe("database sections", () => {
  it("are off unless configured", async () => {
    const c = await load(minimal());
    expect(c.replication).toBeNull();
    expect(c.failback).toBeNull();
  });

  it("take the master's host from master.host; passwords from the environment win and are redacted", async () => {
    const c = await load(
      { ...minimal(), replication: { master: { password: "in-file" } }, failback: {} },
      { XIVO_HA_REPL_MASTER_PASSWORD: "from-env", XIVO_HA_FAILBACK_MASTER_PASSWORD: "fb-env" },
    );
    expect(c.replication?.master).toMatchObject({ host: "10.0.0.1", password: "from-env", user: "xivo_ha_replica" });
    expect(c.failback?.master).toMatchObject({ host: "10.0.0.1", password: "fb-env" });
    const shown = JSON.stringify(redactConfig(c));
    for (const secret of ["from-env", "fb-env", "in-file"]) expect(shown).not.toContain(secret);
  });

  it("name the bad field in their sections", async () => {
    const err = await loadError({
      ...minimal(),
      replication: { everyMs: "hourly" },
      failback: { tables: [{ name: "call log", key: null }] },
    });
    expect(err.message).toMatch(/replication\.everyMs: /);
    expect(err.message).toMatch(/failback\.tables\[0\]\.name: /);
  });
});

describe("worker.url", () => {
  it("is stored without trailing slashes", async () => {
    const c = await load({ ...minimal(), worker: { ...minimal().worker, url: "https://ha.example.net/base//" } });
    expect(c.worker.url).toBe("https://ha.example.net/base");
  });

  it.each(["http://127.0.0.1:8787", "http://127.3.4.5", "http://localhost:8787", "http://[::1]:8787"])(
    "plain http to loopback (%s) is accepted",
    async (url) => {
      const c = await load({ ...minimal(), worker: { ...minimal().worker, url } });
      expect(c.worker.allowInsecureHttp).toBe(false);
    },
  );

  it.each(["http://ha.example.net", "http://10.0.0.5:8787", "http://[fe80::1]"])(
    "plain http elsewhere (%s) is refused unless allowInsecureHttp",
    async (url) => {
      const err = await loadError({ ...minimal(), worker: { ...minimal().worker, url } });
      expect(err.message).toMatch(/worker\.url: expected https:\/\//);
      const c = await load({ ...minimal(), worker: { ...minimal().worker, url, allowInsecureHttp: true } });
      expect(c.worker.url).toBe(url);
    },
  );
});

import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildAgent } from "../../scripts/build-agent.js";
import { testSecrets } from "../support/secrets.js";

/** The bundle the systemd unit runs is the same agent: it builds, and it answers like the bin. */
const run = promisify(execFile);
let dir: string;
let bundle: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "xivo-ha-bundle-"));
  bundle = await buildAgent(join(dir, "xivo-ha-agent.mjs"));
}, 60_000);
afterAll(() => rm(dir, { recursive: true, force: true }));

describe("dist bundle", () => {
  it("runs under plain node: help, and the documented exit code when the worker is unreachable", async () => {
    const help = await run(process.execPath, [bundle, "--help"]);
    expect(help.stdout).toContain("manage-slave-services start|stop");
    const config = join(dir, "agent.json");
    await writeFile(
      config,
      JSON.stringify({
        clusterId: "c1",
        worker: { url: "http://127.0.0.1:9", token: "t", publicKeys: [(await testSecrets()).publicJwk] },
        master: { host: "127.0.0.1" },
        stateDir: join(dir, "state"),
        services: { start: [{ argv: ["true"] }], stop: [{ argv: ["true"] }], status: [{ argv: ["false"] }] },
        lan: { probes: [{ kind: "tcp", name: "t", port: 9, timeoutMs: 200 }] },
        http: { host: "127.0.0.1", port: null },
      }),
    );
    const err = await run(process.execPath, [bundle, "check-master-status", "--config", config]).catch((e) => e);
    expect(err.code).toBe(5);
    expect(err.stderr).toMatch(/no fresh, authentic verdict/);
  });
});

import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeState } from "../../agent/state.js";
import { buildAgent, RUNTIME_GUARD } from "../../scripts/build-agent.js";
import { nodeBinary, NODE_VERSIONS } from "../support/field-cache.js";
import { connectPostgres } from "../support/postgres.js";
import { testSecrets } from "../support/secrets.js";
import { endpoint, useWazoDatabases } from "../support/wazo-pair-databases.js";

/**
 * The bundle under each Node a slave may have: Debian 12's (18.20) and the newest LTS, Node's
 * official binaries from the npm registry (test/support/field-cache.ts fetches them once per
 * machine), the machine's own Node untouched. Under each: the CLI, one `replicate` pass against
 * real PostgreSQL, and the pair test itself (test/node/ha-pair.test.ts: failover, failback,
 * copy-back), run with the agent started as this bundle under that Node.
 */
const run = promisify(execFile);
const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const missing = (
  await Promise.all(
    NODE_VERSIONS.map((v) =>
      stat(nodeBinary(v)).then(
        () => null,
        () => v,
      ),
    ),
  )
).filter(Boolean);
const why = missing.length
  ? `no Node ${missing.join(", ")} under ${nodeBinary("<version>")} (npx tsx test/support/field-cache.ts fetches them)`
  : null;
if (why && process.env.CI) throw new Error(why);
if (why) console.warn(`node-versions.test.ts skipped: ${why}`);

/** The pair-test cases run under each Node: both verdict channels, and the databases. */
const PAIR_CASES = /kill the master|replicates while standby/;

let dir: string;
let bundle: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "xivo-ha-nodes-"));
  bundle = await buildAgent(join(dir, "xivo-ha-agent.mjs"));
}, 60_000);
afterAll(() => rm(dir, { recursive: true, force: true }));

describe("the bundle's start-up guard", () => {
  it("stops an older Node at once with one line naming what it needs, and lets a supported one through", () => {
    const attempt = (node: string) => {
      const calls: unknown[] = [];
      const fake = {
        versions: { node },
        stderr: { write: (s: string) => calls.push(s) },
        exit: (c: number) => calls.push(c),
      };
      new Function("process", RUNTIME_GUARD)(fake);
      return calls;
    };
    expect(attempt("18.18.2")).toEqual(["xivo-ha-agent: Node.js >= 18.19 required, this is 18.18.2\n", 1]);
    expect(attempt("16.20.0")).toEqual(["xivo-ha-agent: Node.js >= 18.19 required, this is 16.20.0\n", 1]);
    for (const ok of ["18.19.0", "18.20.4", "20.0.0", "24.22.3"]) expect(attempt(ok)).toEqual([]);
  });
});

describe.skipIf(why)("the bundle under other Nodes", () => {
  const dbs = useWazoDatabases();

  describe.each(NODE_VERSIONS)("Node %s", (version) => {
    const node = nodeBinary(version);

    it("is that Node, and the bundle answers --help", async () => {
      expect((await run(node, ["--version"])).stdout.trim()).toBe(`v${version}`);
      const help = await run(node, [bundle, "--help"]);
      expect(help.stdout).toContain("manage-slave-services start|stop");
    });

    it("replicate: one pass copies the master's configuration to the standby slave", async () => {
      const state = join(dir, `state-${version}`);
      await writeState(state, { v: 1, role: "standby", since: Date.now(), lastAction: null, lastSeq: null });
      const { master, slave } = dbs;
      const config = join(dir, `agent-${version}.json`);
      await writeFile(
        config,
        JSON.stringify({
          clusterId: "nodes",
          worker: {
            url: "http://127.0.0.1:9",
            token: "node-versions-token",
            publicKeys: [(await testSecrets()).publicJwk],
          },
          master: { host: "127.0.0.1" },
          stateDir: state,
          services: { start: [{ argv: ["true"] }], stop: [{ argv: ["true"] }], status: [{ argv: ["false"] }] },
          replication: { master: endpoint(master), slave: endpoint(slave) },
          lan: { probes: [{ kind: "tcp", name: "t", port: 9, timeoutMs: 200 }] },
          http: { host: "127.0.0.1", port: null },
        }),
      );
      const m = await connectPostgres(master);
      const sl = await connectPostgres(slave);
      try {
        const name = `node-${version}`;
        await m.query("UPDATE userfeatures SET firstname = $1 WHERE id = 1", [name]);
        const r = await run(node, [bundle, "replicate", "--config", config]);
        // One row changed: the table's delta (or its reload when small), said per table.
        expect(r.stdout).toMatch(
          /^replication: done in \d+ ms; copied .*userfeatures \((delta −1 \+1|reload: [^)]+)\)/m,
        );
        expect((await sl.query("SELECT firstname FROM userfeatures WHERE id = 1")).rows[0].firstname).toBe(name);
      } finally {
        await Promise.allSettled([m.end(), sl.end()]);
      }
    });

    it("the pair test: failover, failback and copy-back, the agent being this bundle under this Node", async () => {
      const report = join(dir, `pair-${version}.json`);
      const vitest = join(ROOT, "node_modules", "vitest", "vitest.mjs");
      const args = [
        vitest,
        "run",
        "--project",
        "node",
        "test/node/ha-pair.test.ts",
        "-t",
        PAIR_CASES.source,
        "--reporter=json",
        `--outputFile=${report}`,
      ];
      const env = { ...process.env, XIVO_HA_TEST_AGENT_NODE: node, XIVO_HA_TEST_AGENT_BUNDLE: bundle };
      const out = await run(process.execPath, args, { cwd: ROOT, env, maxBuffer: 64 << 20 }).then(
        (r) => r.stdout + r.stderr,
        (e) => `${e.stdout}${e.stderr}`,
      );
      const text = await readFile(report, "utf8").catch(() => {
        throw new Error(`the pair test under Node ${version} left no report:\n${out.slice(-4000)}`);
      });
      const json = JSON.parse(text) as { testResults: { assertionResults: { fullName: string; status: string }[] }[] };
      const results = json.testResults.flatMap((f) => f.assertionResults).filter((t) => PAIR_CASES.test(t.fullName));
      // Both channels' failover/failback and the databases' copy-back: each ran, and passed.
      expect(results.length, out.slice(-4000)).toBe(3);
      expect(
        results.map((t) => [t.fullName, t.status]),
        out.slice(-4000),
      ).toEqual(results.map((t) => [t.fullName, "passed"]));
    }, 480_000);
  });
});

import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { generateSigningKey } from "../../protocol/signing.js";
import { localSecrets } from "../../scripts/local-secrets.js";
import { envFileText } from "../../scripts/edge.js";
import { MIN_ADMIN_TOKEN } from "../../worker/http/admin-token.js";

let dir: string | null = null;
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
  dir = null;
  vi.restoreAllMocks();
});

describe("local secrets (.dev.vars)", () => {
  it("replaces an ADMIN_TOKEN shorter than the worker accepts, keeps the signing key, and says so", async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "xivo-ha-vars-"));
    const file = path.join(dir, ".dev.vars");
    const key = await generateSigningKey();
    await writeFile(file, envFileText({ ADMIN_TOKEN: "short-local-token", SIGNING_KEY: key.private }), { mode: 0o600 });
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});

    const secrets = await localSecrets(file);
    expect(secrets.ADMIN_TOKEN.length).toBeGreaterThanOrEqual(MIN_ADMIN_TOKEN);
    expect(secrets.SIGNING_KEY).toBe(key.private);
    expect(warn.mock.calls.join(" ")).toContain(`shorter than ${MIN_ADMIN_TOKEN}`);
    expect(warn.mock.calls.join(" ")).not.toContain("short-local-token");
    expect(await readFile(file, "utf8")).toContain(`ADMIN_TOKEN='${secrets.ADMIN_TOKEN}'`);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    // The next start reads it as it is.
    expect((await localSecrets(file)).ADMIN_TOKEN).toBe(secrets.ADMIN_TOKEN);
    expect(warn).toHaveBeenCalledTimes(1);
  });
});

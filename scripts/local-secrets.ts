import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { generateSigningKey, importSigner } from "../protocol/signing.js";
import { adminTokenProblem } from "../worker/http/admin-token.js";
import { envFileText } from "./edge.js";

/**
 * The local worker's secrets live in `.dev.vars` (git-ignored, mode 600), created on first
 * `npm start` so that a fresh clone needs no setup and no account.
 */
export async function localSecrets(
  file: string,
): Promise<{ ADMIN_TOKEN: string; SIGNING_KEY: string; created: boolean }> {
  if (existsSync(file)) {
    const vars = parseEnvFile(await readFile(file, "utf8"));
    if (!vars.ADMIN_TOKEN || !vars.SIGNING_KEY) {
      throw new Error(`${file}: needs ADMIN_TOKEN and SIGNING_KEY (delete the file to have new ones generated)`);
    }
    await importSigner(vars.SIGNING_KEY).catch((err: Error) => {
      throw new Error(`${file}: SIGNING_KEY: ${err.message}`);
    });
    const problem = adminTokenProblem(vars.ADMIN_TOKEN);
    if (problem) {
      // The worker would refuse it (503 on the admin API): a local token is only a convenience, so
      // a new one replaces it; the signing key stays, agents may have its public key pinned.
      vars.ADMIN_TOKEN = newAdminToken();
      await writeFile(file, envFileText(vars), { mode: 0o600 });
      console.warn(`${file}: ${problem}, which the worker refuses: a new ADMIN_TOKEN was written there`);
    }
    return { ADMIN_TOKEN: vars.ADMIN_TOKEN, SIGNING_KEY: vars.SIGNING_KEY, created: false };
  }
  const key = await generateSigningKey();
  const secrets = { ADMIN_TOKEN: newAdminToken(), SIGNING_KEY: key.private };
  await writeFile(file, envFileText(secrets), { mode: 0o600 });
  return { ...secrets, created: true };
}

const newAdminToken = () => `local-admin-${crypto.randomUUID()}`;

function parseEnvFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/.exec(line);
    if (!m) continue;
    let value = m[2]!;
    if (/^'.*'$|^".*"$/.test(value)) value = value.slice(1, -1);
    out[m[1]!] = value;
  }
  return out;
}

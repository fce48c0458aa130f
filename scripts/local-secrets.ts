import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { generateSigningKey, importSigner } from "../protocol/signing.js";
import { envFileText } from "./edge.js";

/**
 * The local worker's secrets live in `.dev.vars` (git-ignored, mode 600), created on first
 * `npm start` so that a fresh clone needs no setup and no account.
 */
export async function localSecrets(file: string): Promise<{ ADMIN_TOKEN: string; SIGNING_KEY: string; created: boolean }> {
  if (existsSync(file)) {
    const vars = parseEnvFile(await readFile(file, "utf8"));
    if (!vars.ADMIN_TOKEN || !vars.SIGNING_KEY) {
      throw new Error(`${file}: needs ADMIN_TOKEN and SIGNING_KEY (delete the file to have new ones generated)`);
    }
    await importSigner(vars.SIGNING_KEY).catch((err: Error) => {
      throw new Error(`${file}: SIGNING_KEY: ${err.message}`);
    });
    return { ADMIN_TOKEN: vars.ADMIN_TOKEN, SIGNING_KEY: vars.SIGNING_KEY, created: false };
  }
  const key = await generateSigningKey();
  const secrets = { ADMIN_TOKEN: `local-admin-${crypto.randomUUID()}`, SIGNING_KEY: key.private };
  await writeFile(file, envFileText(secrets), { mode: 0o600 });
  return { ...secrets, created: true };
}

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

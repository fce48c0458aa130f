import { generateSigningKey } from "../../protocol/signing.js";

/** Fresh secrets for one test run: nothing secret is committed, nothing leaks between runs. */
export async function testSecrets() {
  const key = await generateSigningKey();
  return {
    adminToken: `test-admin-${crypto.randomUUID()}`,
    signingKey: key.private,
    publicJwk: key.public,
  };
}

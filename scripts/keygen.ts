import { generateSigningKey } from "../protocol/signing.js";

/** `npm run keygen`: a new Ed25519 verdict-signing key pair, for `wrangler secret put SIGNING_KEY`. */
const key = await generateSigningKey();
console.log(`# Private key: the worker's SIGNING_KEY secret. Keep it out of git and logs.
#   echo '${"<the line below>"}' | npx wrangler secret put SIGNING_KEY
${key.private}

# Public key (kid ${key.public.kid}): what agents trust; the worker also serves it at /v1/keys.
${JSON.stringify(key.public)}`);

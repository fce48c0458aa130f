import { toBase64Url, utf8 } from "../../protocol/encoding.js";
import type { PublicJwk } from "../../protocol/signing.js";

/**
 * A key's fingerprint as an administrator compares it out of band: SHA-256 of the JWK's
 * RFC 7638 thumbprint input (the required members, sorted, no whitespace), in base64url.
 * The same on the worker side (`npm run init-line`) and in `init` / `doctor`.
 */
export async function keyFingerprint(jwk: Pick<PublicJwk, "crv" | "kty" | "x">): Promise<string> {
  // RFC 7638 §3.2 for an OKP key: crv, kty, x in lexicographic order.
  const canonical = JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x });
  return toBase64Url(new Uint8Array(await crypto.subtle.digest("SHA-256", utf8.encode(canonical))));
}

/** What a fingerprint looks like: 43 base64url characters (256 bits). */
export const FINGERPRINT = /^[A-Za-z0-9_-]{43}$/;

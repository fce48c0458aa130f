import { z } from "zod";
import { fromBase64Url, sha256, sha256Hex, toBase64Url, utf8 } from "./encoding.js";

/**
 * A signed message: the exact JSON text that was signed travels as `payload`, so the verifier
 * checks bytes, never a re-serialisation (no canonical-JSON pitfalls).
 */
export const SignedEnvelope = z.object({
  kid: z.string().min(1).max(64),
  alg: z.literal("EdDSA"),
  payload: z.string().max(256 * 1024),
  signature: z.string().regex(/^[A-Za-z0-9_-]+$/),
});
export type SignedEnvelope = z.infer<typeof SignedEnvelope>;

export const PublicJwk = z.object({
  kty: z.literal("OKP"),
  crv: z.literal("Ed25519"),
  x: z.string().regex(/^[A-Za-z0-9_-]{43}$/),
  kid: z.string().optional(),
  alg: z.literal("EdDSA").optional(),
  use: z.literal("sig").optional(),
});
export type PublicJwk = z.infer<typeof PublicJwk>;

const PrivateJwk = PublicJwk.extend({ d: z.string().regex(/^[A-Za-z0-9_-]{43}$/) });

const ED25519 = { name: "Ed25519" } as const;

export interface Signer {
  kid: string;
  publicJwk: PublicJwk;
  sign(payload: unknown): Promise<SignedEnvelope>;
}

/** The key id is derived from the public key, so both sides agree on it without configuration. */
export async function keyId(x: string): Promise<string> {
  return (await sha256Hex(x)).slice(0, 16);
}

/**
 * A key's fingerprint as an administrator compares it out of band: SHA-256 of the JWK's
 * RFC 7638 thumbprint input (the required members, sorted, no whitespace), in base64url.
 * The same on the worker side (`npm run init-line`) and in the agent's `init` / `doctor`.
 */
export async function keyFingerprint(jwk: Pick<PublicJwk, "crv" | "kty" | "x">): Promise<string> {
  // RFC 7638 §3.2 for an OKP key: crv, kty, x in lexicographic order.
  return toBase64Url(await sha256(JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x })));
}

/** What a fingerprint looks like: 43 base64url characters (256 bits). */
export const FINGERPRINT = /^[A-Za-z0-9_-]{43}$/;

/** Parses an Ed25519 private key given as JWK JSON text (the `SIGNING_KEY` secret). */
export async function importSigner(jwkText: string): Promise<Signer> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(jwkText);
  } catch {
    throw new Error("SIGNING_KEY is not JSON: expected an Ed25519 private JWK");
  }
  const jwk = PrivateJwk.safeParse(parsed);
  if (!jwk.success) throw new Error("SIGNING_KEY is not an Ed25519 private JWK (kty OKP, crv Ed25519, x, d)");
  const { kty, crv, x, d } = jwk.data;
  const key = await crypto.subtle.importKey("jwk", { kty, crv, x, d }, ED25519, false, ["sign"]);
  const kid = await keyId(x);
  return {
    kid,
    publicJwk: { kty, crv, x, kid, alg: "EdDSA", use: "sig" },
    async sign(payload) {
      const text = JSON.stringify(payload);
      const sig = new Uint8Array(await crypto.subtle.sign(ED25519, key, utf8.encode(text)));
      return { kid, alg: "EdDSA", payload: text, signature: toBase64Url(sig) };
    },
  };
}

export type Verification = { ok: true; payload: unknown; kid: string } | { ok: false; reason: string };

/** Verifies an envelope against trusted public keys; returns the parsed payload only if authentic. */
export async function verifyEnvelope(envelope: unknown, trusted: PublicJwk[]): Promise<Verification> {
  const env = SignedEnvelope.safeParse(envelope);
  if (!env.success) return { ok: false, reason: "malformed envelope" };
  let jwk: PublicJwk | undefined;
  for (const k of trusted) if ((k.kid ?? (await keyId(k.x))) === env.data.kid) jwk = k;
  if (!jwk) return { ok: false, reason: `unknown key id ${env.data.kid}` };
  const key = await crypto.subtle.importKey("jwk", { kty: jwk.kty, crv: jwk.crv, x: jwk.x }, ED25519, false, [
    "verify",
  ]);
  let signature: Uint8Array<ArrayBuffer>;
  try {
    signature = fromBase64Url(env.data.signature);
  } catch {
    return { ok: false, reason: "signature is not base64url" };
  }
  const valid = await crypto.subtle.verify(ED25519, key, signature, utf8.encode(env.data.payload));
  if (!valid) return { ok: false, reason: "bad signature" };
  try {
    return { ok: true, payload: JSON.parse(env.data.payload), kid: env.data.kid };
  } catch {
    return { ok: false, reason: "signed payload is not JSON" };
  }
}

/** A new Ed25519 key pair as JWKs: `private` is the SIGNING_KEY secret, `public` what agents trust. */
export async function generateSigningKey(): Promise<{ private: string; public: PublicJwk }> {
  const pair = (await crypto.subtle.generateKey(ED25519, true, ["sign", "verify"])) as CryptoKeyPair;
  const jwk = (await crypto.subtle.exportKey("jwk", pair.privateKey)) as JsonWebKey;
  const x = jwk.x!;
  const kid = await keyId(x);
  return {
    private: JSON.stringify({ kty: "OKP", crv: "Ed25519", x, d: jwk.d }),
    public: { kty: "OKP", crv: "Ed25519", x, kid, alg: "EdDSA", use: "sig" },
  };
}

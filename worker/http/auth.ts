import { constantTimeEqual, sha256Hex } from "../../protocol/encoding.js";
import type { Caller } from "../cluster.js";

export function bearer(header: string | undefined): string | null {
  const m = /^Bearer[ ]+(\S+)\s*$/i.exec(header ?? "");
  return m ? m[1]! : null;
}

/** A shorter ADMIN_TOKEN could be guessed: the worker refuses to serve the admin API with one. */
export const MIN_ADMIN_TOKEN = 32;

/** Why the ADMIN_TOKEN secret cannot be used (null: it can). */
export function adminTokenProblem(adminToken: string | undefined): string | null {
  if (!adminToken) return "the ADMIN_TOKEN secret is not set";
  if (adminToken.length < MIN_ADMIN_TOKEN) return `the ADMIN_TOKEN secret is shorter than ${MIN_ADMIN_TOKEN} characters`;
  return null;
}

/** The admin token's digest, computed once per isolate (and again if the secret changes). */
let adminDigest: { token: string; digest: Promise<string> } | null = null;

/** Compares digests, so the comparison takes the same time whatever the token's length. */
export async function isAdmin(token: string | null, adminToken: string | undefined): Promise<boolean> {
  if (!token || !adminToken || adminTokenProblem(adminToken)) return false;
  if (adminDigest?.token !== adminToken) adminDigest = { token: adminToken, digest: sha256Hex(adminToken) };
  return constantTimeEqual(await sha256Hex(token), await adminDigest.digest);
}

/** Admin or agent: the cluster's Durable Object checks an agent token against its stored hash. */
export async function callerOf(token: string, adminToken: string | undefined): Promise<Caller> {
  return (await isAdmin(token, adminToken)) ? { admin: true } : { agentToken: token };
}

import { constantTimeEqual, sha256Hex } from "../../protocol/encoding.js";
import type { Caller } from "../cluster.js";
import { adminTokenProblem } from "./admin-token.js";

export function bearer(header: string | undefined): string | null {
  const m = /^Bearer[ ]+(\S+)\s*$/i.exec(header ?? "");
  return m ? m[1]! : null;
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

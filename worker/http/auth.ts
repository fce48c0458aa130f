import { constantTimeEqual, sha256Hex } from "../../protocol/encoding.js";
import type { Caller } from "../cluster.js";

export function bearer(header: string | undefined): string | null {
  const m = /^Bearer[ ]+(\S+)\s*$/i.exec(header ?? "");
  return m ? m[1]! : null;
}

/** Compares digests, so the comparison takes the same time whatever the token's length. */
export async function isAdmin(token: string | null, adminToken: string | undefined): Promise<boolean> {
  if (!token || !adminToken) return false;
  return constantTimeEqual(await sha256Hex(token), await sha256Hex(adminToken));
}

/** Admin or agent: the cluster's Durable Object checks an agent token against its stored hash. */
export async function callerOf(token: string, adminToken: string | undefined): Promise<Caller> {
  return (await isAdmin(token, adminToken)) ? { admin: true } : { agentToken: token };
}

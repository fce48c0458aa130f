import { z } from "zod";
import { constantTimeEqual, fromBase64, toBase64, utf8 } from "./encoding.js";
import { NotifyEventType } from "./events.js";

/**
 * The body of a webhook notification, and its signature per the Standard Webhooks spec
 * (https://www.standardwebhooks.com): headers `webhook-id`, `webhook-timestamp` (seconds) and
 * `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, one `v1,…` per secret.
 * WebCrypto only, so the same code signs in workerd and verifies in Node.
 */

export const WebhookBody = z.strictObject({
  /** e.g. "failover.done"; the same names a channel's `events` filter uses. */
  type: NotifyEventType,
  /** When the event happened (worker clock), ISO 8601. */
  timestamp: z.iso.datetime(),
  data: z.strictObject({
    cluster: z.string(),
    /** The event's id in the cluster's history (GET /v1/clusters/:id/events). */
    eventId: z.number().int().positive(),
    reason: z.string(),
    /** Event-specific details (verdict transition, agent role, alerts…). */
    details: z.record(z.string(), z.unknown()),
    statusUrl: z.string().nullable(),
  }),
});
export type WebhookBody = z.infer<typeof WebhookBody>;

/** "whsec_" + base64 of 24 to 64 random bytes (what the spec and most providers issue). */
export const WebhookSecret = z
  .string()
  .regex(/^whsec_[A-Za-z0-9+/]+={0,2}$/, 'must be "whsec_" followed by base64')
  .refine((s) => {
    try {
      const n = atob(s.slice(6)).length;
      return n >= 24 && n <= 64;
    } catch {
      return false;
    }
  }, "the base64 after whsec_ must decode to 24..64 bytes");

const secretBytes = (secret: string) => fromBase64(secret.startsWith("whsec_") ? secret.slice(6) : secret);

async function hmac(secret: string, content: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", secretBytes(secret), { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
  ]);
  return toBase64(new Uint8Array(await crypto.subtle.sign("HMAC", key, utf8.encode(content))));
}

export interface WebhookHeaders {
  "webhook-id": string;
  "webhook-timestamp": string;
  "webhook-signature": string;
}

/** Signs one attempt. `id` must be the same on every retry: it is the receiver's dedupe key. */
export async function signWebhook(
  secrets: readonly string[],
  id: string,
  timestampSec: number,
  body: string,
): Promise<WebhookHeaders> {
  const content = `${id}.${timestampSec}.${body}`;
  const signatures = await Promise.all(secrets.map(async (s) => `v1,${await hmac(s, content)}`));
  return { "webhook-id": id, "webhook-timestamp": String(timestampSec), "webhook-signature": signatures.join(" ") };
}

/** The receiver's side: true if one signature matches one secret and the timestamp is within tolerance. */
export async function verifyWebhook(
  secret: string,
  headers: { get(name: string): string | null },
  body: string,
  nowSec = Math.floor(Date.now() / 1000),
  toleranceSec = 300,
): Promise<boolean> {
  const id = headers.get("webhook-id");
  const ts = headers.get("webhook-timestamp");
  const sig = headers.get("webhook-signature");
  if (!id || !ts || !sig || !/^\d+$/.test(ts)) return false;
  if (Math.abs(nowSec - Number(ts)) > toleranceSec) return false;
  const expected = await hmac(secret, `${id}.${ts}.${body}`);
  return sig.split(" ").some((s) => s.startsWith("v1,") && constantTimeEqual(s.slice(3), expected));
}

import { z } from "zod";
import { SignedEnvelope } from "./signing.js";

/**
 * Messages the worker pushes to an agent over its WebSocket: the signed verdict after every
 * round (and once at connect). Pushed verdicts carry `nonce: null`; the agent protects itself
 * against replay with the verdict's `seq`, which must strictly increase within one cluster
 * `incarnation`; a new incarnation is only ever taken from a poll answer (its nonce proves it fresh).
 */
export const PushMessage = z.discriminatedUnion("type", [
  z.object({ type: z.literal("verdict"), envelope: SignedEnvelope }),
  z.object({ type: z.literal("error"), code: z.string(), message: z.string() }),
]);
export type PushMessage = z.infer<typeof PushMessage>;

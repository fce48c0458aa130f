import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { z } from "zod";
import type { Outcome } from "../env.js";

/** Every error the API gives has this shape; `field` names what the client got wrong. */
export interface ApiError {
  error: { code: string; message: string; field?: string };
}

export const errorBody = (code: string, message: string, field?: string): ApiError => ({
  error: { code, message, ...(field ? { field } : {}) },
});

export function apiError(c: Context, status: ContentfulStatusCode, code: string, message: string, field?: string) {
  return c.json(errorBody(code, message, field), status);
}

/** A client mistake or a refusal, thrown from a route or middleware and answered by `onError`. */
export class ApiFailure extends HTTPException {
  constructor(
    override readonly status: ContentfulStatusCode,
    readonly code: string,
    message: string,
    readonly field?: string,
    /** Sent as Retry-After (seconds) with a refusal the client may try again later. */
    readonly retryAfterSec?: number,
  ) {
    super(status, { message });
  }
}

/** What a Durable Object method answered: its value, or its failure thrown for `onError`. */
export function unwrap<T>(outcome: Outcome<T>): T {
  if (!outcome.ok)
    throw new ApiFailure(outcome.status, outcome.code, outcome.message, outcome.field, outcome.retryAfterSec);
  return outcome.value;
}

/**
 * The app's one error path. Our failures answer as they say; Hono's own (its JSON validator's
 * "Malformed JSON in request body", the only one this app can meet) is a malformed body; anything
 * else is a bug of ours: its message is logged (never headers or bodies, which may hold tokens)
 * and the answer has no stack trace.
 */
export function onError(err: Error, c: Context): Response {
  if (err instanceof ApiFailure) {
    if (err.retryAfterSec !== undefined) c.header("retry-after", String(err.retryAfterSec));
    return apiError(c, err.status, err.code, err.message, err.field);
  }
  if (err instanceof HTTPException && err.status === 400)
    return apiError(c, 400, "malformed_json", "request body is not valid JSON");
  console.error(`unhandled error on ${c.req.method} ${new URL(c.req.url).pathname}: ${err.message}`);
  return apiError(c, 500, "internal", "internal error");
}

/** "probes.0.port: expected number, received string" — the path first, so the field is named. */
export function describeZodError(error: z.ZodError, prefix = ""): { message: string; field: string } {
  const issues = error.issues.slice(0, 5).map((i) => {
    const path = [prefix, ...i.path.map(String)].filter(Boolean).join(".");
    return { path: path || "(body)", text: `${path || "(body)"}: ${i.message}` };
  });
  const more = error.issues.length > 5 ? ` (and ${error.issues.length - 5} more)` : "";
  return { message: issues.map((i) => i.text).join("; ") + more, field: issues[0]?.path ?? "(body)" };
}

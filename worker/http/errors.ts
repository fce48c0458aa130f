import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { z } from "zod";

/** Every error the API gives has this shape; `field` names what the client got wrong. */
export interface ApiError {
  error: { code: string; message: string; field?: string };
}

export function apiError(c: Context, status: ContentfulStatusCode, code: string, message: string, field?: string) {
  const body: ApiError = { error: { code, message, ...(field ? { field } : {}) } };
  return c.json(body, status);
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

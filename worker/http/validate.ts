import type { Context } from "hono";
import { validator } from "hono/validator";
import type { z } from "zod";
import { ApiFailure, describeZodError } from "./errors.js";

/** Hono's own test for a JSON media type: with one, its validator has parsed the body already. */
const JSON_TYPE = /^application\/([\w.-]+\+)?json$/i;

function check<S extends z.ZodType>(schema: S, raw: unknown, code: "invalid_body" | "invalid_query"): z.output<S> {
  const parsed = schema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const { message, field } = describeZodError(parsed.error);
  throw new ApiFailure(400, code, message, field);
}

/** A body parsed as JSON whatever its content type: `curl -d` sends form-urlencoded. */
async function rawJson(c: Context, parsed: unknown): Promise<unknown> {
  const type = (c.req.header("content-type") ?? "").split(";")[0]!.trim();
  if (JSON_TYPE.test(type)) return parsed;
  try {
    return JSON.parse(await c.req.text());
  } catch {
    throw new ApiFailure(400, "malformed_json", "request body is not valid JSON");
  }
}

/**
 * The JSON body through `schema` (a function of the request's time for rules that need the
 * clock); 400 naming the field otherwise. Read it with `c.req.valid("json")`.
 */
export const jsonBody = <S extends z.ZodType>(schema: S | (() => S)) =>
  validator("json", async (value, c) =>
    check(typeof schema === "function" ? schema() : schema, await rawJson(c, value), "invalid_body"),
  );

/** The query string through `schema` (the first value of a repeated key); 400 naming the field otherwise. */
export const query = <S extends z.ZodType>(schema: S) =>
  validator("query", (value) => {
    const first = Object.fromEntries(Object.entries(value).map(([k, v]) => [k, Array.isArray(v) ? v[0] : v]));
    return check(schema, first, "invalid_query");
  });

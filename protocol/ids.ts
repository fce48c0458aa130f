import { z } from "zod";

/** A cluster's id, as the worker names its Durable Object and the agent its config. */
export const ClusterId = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, "1 to 63 characters of a-z 0-9 -, starting with a letter or digit");

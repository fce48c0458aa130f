import { startEdge, type Edge, type EdgeOptions } from "../../scripts/edge.js";
import { testSecrets } from "./secrets.js";
import { startTargetControl, type TargetControl } from "./targets.js";

/**
 * What the cross-process tests and the benchmarks stand on: the worker under the real
 * `wrangler dev` with fresh secrets, and the control server of the loopback probe targets.
 */
export interface EdgeLab {
  edge: Edge;
  control: TargetControl;
  secrets: Awaited<ReturnType<typeof testSecrets>>;
  /** A request to the worker with a bearer token; a JSON body when given. */
  call(method: string, path: string, token: string, body?: unknown): Promise<Response>;
  /** `call` with the admin token. */
  admin(method: string, path: string, body?: unknown): Promise<Response>;
  stop(): Promise<void>;
}

/** `opts`: more for `wrangler dev`, e.g. the cost bench's COST_METER var, the scale bench's log reader. */
export async function startEdgeLab(opts: Partial<EdgeOptions> = {}): Promise<EdgeLab> {
  const secrets = await testSecrets();
  const control = await startTargetControl();
  let edge: Edge;
  try {
    edge = await startEdge({
      ...opts,
      vars: { ...opts.vars, ADMIN_TOKEN: secrets.adminToken, SIGNING_KEY: secrets.signingKey },
    });
  } catch (err) {
    await control.close();
    throw err;
  }
  const call: EdgeLab["call"] = (method, path, token, body) =>
    fetch(`${edge.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  return {
    edge,
    control,
    secrets,
    call,
    admin: (method, path, body) => call(method, path, secrets.adminToken, body),
    async stop() {
      await edge.stop();
      await control.close();
    },
  };
}

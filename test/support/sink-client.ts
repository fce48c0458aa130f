// Client for the loopback webhook sinks (test/support/sinks.ts). Fetch only, no node: imports:
// it runs inside workerd.
import { z } from "zod";

export const SinkBehaviour = z.strictObject({
  status: z.number().int().min(200).max(599).default(200),
  retryAfter: z.string().optional(),
  body: z.string().optional(),
  /** Never answer: the caller must time out. */
  hang: z.boolean().optional(),
});

export const SinkCreate = z.strictObject({
  /** One behaviour per request, in order; then `then` for every later request. */
  script: z.array(SinkBehaviour).max(100).default([]),
  then: SinkBehaviour.default({ status: 200 }),
  /** A "whsec_…" secret: the sink verifies each request's signature in Node. */
  secret: z.string().optional(),
});

export interface SinkRequest {
  at: number;
  method: string;
  headers: Record<string, string>;
  body: string;
  /** The Node-side standardwebhooks verdict; null when the sink has no secret. */
  verified: boolean | null;
  answered: number | "hang";
}

export interface SinkInfo {
  name: string;
  port: number;
  requests: SinkRequest[];
}

export interface Sink {
  name: string;
  url: string;
  requests(): Promise<SinkRequest[]>;
  close(): Promise<void>;
}

export async function createSink(controlPort: number, spec: z.input<typeof SinkCreate> = {}): Promise<Sink> {
  const base = `http://127.0.0.1:${controlPort}/sinks`;
  const res = await fetch(base, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(spec),
  });
  if (res.status !== 201) throw new Error(`sink: HTTP ${res.status} ${await res.text()}`);
  const info = (await res.json()) as SinkInfo;
  return {
    name: info.name,
    url: `http://127.0.0.1:${info.port}/hook`,
    async requests() {
      const r = await fetch(`${base}/${info.name}`);
      return ((await r.json()) as SinkInfo).requests;
    },
    async close() {
      await (await fetch(`${base}/${info.name}`, { method: "DELETE" })).body?.cancel();
    },
  };
}

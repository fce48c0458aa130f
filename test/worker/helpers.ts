import { env, runDurableObjectAlarm, SELF } from "cloudflare:test";
import { afterEach, inject } from "vitest";
import type { z } from "zod";
import type { SignedEnvelope } from "../../protocol/signing.js";
import { createSink, type Sink, type SinkCreate } from "../support/sink-client.js";
import { createTarget, type Kind, type Mode } from "../support/target-client.js";
import { until } from "../support/until.js";

export const ADMIN = env.ADMIN_TOKEN!;
export const AGENT_TOKEN = "agent-token-0123456789abcdef0123456789";

export const uniqueId = (prefix = "c") => `${prefix}-${crypto.randomUUID().slice(0, 8)}`;

export async function api(
  method: string,
  path: string,
  opts: { token?: string | null; body?: unknown; raw?: string } = {},
) {
  const headers: Record<string, string> = {};
  const token = opts.token === undefined ? ADMIN : opts.token;
  if (token) headers.authorization = `Bearer ${token}`;
  let body: string | undefined;
  if (opts.raw !== undefined) body = opts.raw;
  else if (opts.body !== undefined) body = JSON.stringify(opts.body);
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await SELF.fetch(`https://edge.test${path}`, { method, headers, body });
  const text = await res.text();
  let json: any = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    /* leave null: some tests assert on the text */
  }
  return { status: res.status, json, text };
}

export const target = (kind: Kind, mode: Mode = "ok") => createTarget(inject("targetControl"), kind, { mode });

/** Webhook sinks on loopback, each closed after its test. */
export function useSinks(): (spec?: z.input<typeof SinkCreate>) => Promise<Sink> {
  const sinks: Sink[] = [];
  afterEach(async () => {
    await Promise.all(sinks.splice(0).map((s) => s.close()));
  });
  return async (spec = {}) => {
    const s = await createSink(inject("sinkControl"), spec);
    sinks.push(s);
    return s;
  };
}

/** A cluster's history, newest 500 (admin). */
export const events = async (id: string) =>
  (await api("GET", `/v1/clusters/${id}/events?limit=500`)).json.events as any[];

/**
 * A config with a long interval: after the first (immediate) round, tests drive rounds by hand.
 * Confirmation rounds are as long as the interval unless given, so no round comes on its own.
 */
export function clusterConfig(probes: unknown[], extra: Record<string, unknown> = {}) {
  const intervalSec = "intervalSec" in extra ? extra.intervalSec : 3600;
  return {
    master: { host: "127.0.0.1" },
    probes,
    intervalSec,
    confirmIntervalSec: intervalSec,
    agentToken: AGENT_TOKEN,
    ...extra,
  };
}

export const stubOf = (id: string) => env.CLUSTER.get(env.CLUSTER.idFromName(id));

export async function getVerdict(id: string, nonce?: string) {
  const q = nonce ? `?nonce=${nonce}` : "";
  const res = await api("GET", `/v1/clusters/${id}/verdict${q}`, { token: AGENT_TOKEN });
  if (res.status !== 200) throw new Error(`verdict: HTTP ${res.status} ${res.text}`);
  const envelope = res.json as SignedEnvelope;
  return { envelope, verdict: JSON.parse(envelope.payload) };
}

/** Waits until the cluster has completed `seq` rounds (the first one runs on its own alarm). */
export async function waitForSeq(id: string, seq: number, timeoutMs = 15_000) {
  return until(
    `cluster ${id} at seq ${seq}`,
    async () => {
      const { verdict } = await getVerdict(id);
      return verdict.seq >= seq && verdict;
    },
    { timeoutMs },
  );
}

/** Runs the next probe round now, through the Durable Object's real alarm handler. */
export async function runRound(id: string) {
  const ran = await runDurableObjectAlarm(stubOf(id));
  if (!ran) throw new Error("no alarm was scheduled: the probe loop is not armed");
  return (await getVerdict(id)).verdict;
}

/** A cluster probing a loopback HTTP and SIP-over-TCP target (500 ms timeouts), its first round done. */
export async function webAndSipCluster(prefix: string, extra: Record<string, unknown> = {}) {
  const web = await target("http");
  const sip = await target("sip-tcp");
  const id = uniqueId(prefix);
  const res = await api("PUT", `/v1/clusters/${id}`, {
    body: clusterConfig(
      [
        { kind: "http", name: "web", scheme: "http", port: web.port, timeoutMs: 500 },
        { kind: "sip", name: "sip", transport: "tcp", port: sip.port, timeoutMs: 500 },
      ],
      extra,
    ),
  });
  if (res.status !== 201) throw new Error(`PUT cluster: HTTP ${res.status} ${res.text}`);
  await waitForSeq(id, 1);
  return { id, web, sip };
}

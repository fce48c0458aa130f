import { describe, expect, it } from "vitest";
import { AGENT_TOKEN, api, clusterConfig, uniqueId } from "./helpers.js";

const tcpProbe = { kind: "tcp", name: "pg", port: 1, timeoutMs: 200 };
const report = (at: number) => ({ role: "standby", mode: "auto", at, lastAction: null, lan: null, verdictSeq: null });

async function cluster(prefix: string) {
  const id = uniqueId(prefix);
  expect((await api("PUT", `/v1/clusters/${id}`, { body: clusterConfig([tcpProbe]) })).status).toBe(201);
  return id;
}

describe("request edges", () => {
  it("a report whose times are out of range is a 400 naming the field, and nothing is stored", async () => {
    const id = await cluster("when");
    const good = report(Date.now());
    const cases: [unknown, string][] = [
      [report(1e300), "at"],
      [report(9e15), "at"],
      [{ ...good, lastAction: { kind: "none", at: 9e15, ok: true, reason: "" } }, "lastAction.at"],
      [{ ...good, replication: { at: 1e300, ok: true, durationMs: 1, rows: 0, bytes: 0, tablesCopied: 0, tablesSkipped: 0, error: null } }, "replication.at"],
    ];
    for (const [body, field] of cases) {
      const res = await api("POST", `/v1/clusters/${id}/report`, { token: AGENT_TOKEN, body });
      expect(res.status, field).toBe(400);
      expect(res.json.error).toMatchObject({ code: "invalid_body", field });
    }
    expect((await api("GET", `/v1/clusters/${id}`)).json.agent).toBeNull();
    expect((await api("POST", `/v1/clusters/${id}/report`, { token: AGENT_TOKEN, body: good })).status).toBe(202);
  });

});

import { existsSync, statSync } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTarget } from "../support/target-client.js";
import { startEdgeLab, type EdgeLab } from "../support/edge-lab.js";

/**
 * The status page in a real browser: the worker under `wrangler dev`, a loopback PBX, Debian's
 * headless Chromium driven by playwright-core. Saves docs/status-page.png for the README.
 */
const CHROMIUM = "/usr/bin/chromium";
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
// The README's picture is refreshed with UPDATE_DOCS=1; otherwise a run leaves the tree clean.
const SCREENSHOT = process.env.UPDATE_DOCS
  ? path.join(ROOT, "docs", "status-page.png")
  : path.join(tmpdir(), `xivo-ha-status-${process.pid}.png`);
const AGENT = "agent-token-status-page-0123456789abcdef";
const haveChromium = existsSync(CHROMIUM);

let lab: EdgeLab;

// CI installs Chromium (.ci/run): there a missing browser is a failure, not a skip.
describe.skipIf(!haveChromium && !process.env.CI)(
  `status page in headless Chromium${haveChromium ? "" : ` (skipped: ${CHROMIUM} not installed — apt-get install chromium)`}`,
  () => {
    beforeAll(async () => (lab = await startEdgeLab()), 90_000);
    afterAll(() => lab?.stop());

    it("renders the master, the slave, uptime, timeline and sparklines; saves a screenshot", async () => {
      const web = await createTarget(lab.control.port, "http");
      const sip = await createTarget(lab.control.port, "sip-tcp");
      const put = await lab.call("PUT", "/v1/clusters/acme-pbx", lab.secrets.adminToken, {
        master: { host: "127.0.0.1" },
        probes: [
          { kind: "http", name: "web", scheme: "http", port: web.port, timeoutMs: 1000 },
          { kind: "sip", name: "sip", port: sip.port, timeoutMs: 1000 },
        ],
        intervalSec: 2,
        fall: 1,
        rise: 1,
        public: true,
        agentToken: AGENT,
      });
      expect(put.status).toBe(201);

      const state = async () =>
        (
          (await (await lab.call("GET", "/v1/clusters/acme-pbx", lab.secrets.adminToken)).json()) as {
            verdict: { state: string };
          }
        ).verdict.state;
      const until = async (want: string) => {
        for (let i = 0; i < 100 && (await state()) !== want; i++) await new Promise((r) => setTimeout(r, 200));
        expect(await state()).toBe(want);
      };
      // A short SIP outage with a failover and failback around it, so the timeline has entries.
      await until("up");
      await sip.set("closed");
      await until("degraded");
      const report = (role: string, kind: string, reason: string) =>
        lab.call("POST", "/v1/clusters/acme-pbx/report", AGENT, {
          role,
          mode: "auto",
          at: Date.now(),
          lastAction: { kind, at: Date.now(), ok: true, reason },
          lan: null,
          verdictSeq: 1,
          alerts: [],
        });
      expect((await report("active", "failover", "edge and LAN agree: master degraded")).status).toBe(202);
      await sip.set("ok");
      await until("up");
      expect((await report("standby", "failback", "master healthy again: services handed back")).status).toBe(202);
      await new Promise((r) => setTimeout(r, 4500)); // a few more rounds for the sparklines

      const { chromium } = await import("playwright-core");
      const browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: [
          "--headless",
          "--no-sandbox",
          "--disable-gpu",
          "--disable-quic",
          "--no-first-run",
          "--disable-background-networking",
          "--disable-component-update",
          "--disable-sync",
        ],
      });
      try {
        const context = await browser.newContext({ viewport: { width: 960, height: 1200 }, javaScriptEnabled: false });
        const page = await context.newPage();
        const res = await page.goto(`${lab.edge.url}/status/acme-pbx`);
        expect(res?.status()).toBe(200);
        expect(await page.title()).toBe("acme-pbx — up — xivo-ha status");
        expect(await page.locator("#master .state").textContent()).toMatch(/^up$/i);
        expect(await page.locator("#slave .state").textContent()).toMatch(/^standby$/i);
        expect(await page.locator("#uptime .big").count()).toBe(4);
        const timeline = await page.locator("#timeline").textContent();
        expect(timeline).toMatch(/degraded/i);
        expect(timeline).toMatch(/failover/i);
        expect(timeline).toMatch(/failback/i);
        expect(await page.locator("svg.sparkline polyline").count()).toBe(2);
        await mkdir(path.dirname(SCREENSHOT), { recursive: true });
        await page.screenshot({ path: SCREENSHOT, fullPage: true });
        expect(statSync(SCREENSHOT).size).toBeGreaterThan(10_000); // a rendered page, not a blank
        if (!process.env.UPDATE_DOCS) await rm(SCREENSHOT, { force: true });
      } finally {
        await browser.close();
      }
    });
  },
);

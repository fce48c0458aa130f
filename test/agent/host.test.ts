import { describe, expect, it } from "vitest";
import { insecureUrl, isLoopbackHost } from "../../protocol/host.js";

/** The one loopback rule the agent's config, doctor and init and the worker's webhooks share. */
describe("isLoopbackHost / insecureUrl", () => {
  it.each(["localhost", "LOCALHOST", "a.localhost", "127.0.0.1", "127.1.2.3", "::1", "[::1]"])(
    "%s is loopback",
    (h) => {
      expect(isLoopbackHost(h)).toBe(true);
    },
  );

  it.each(["10.0.0.1", "127.evil.example", "127.0.0.1.example", "localhost.example", "::2", "0.0.0.0", ""])(
    "%j is not",
    (h) => {
      expect(isLoopbackHost(h)).toBe(false);
    },
  );

  it.each([
    ["http://worker.invalid", true],
    ["http://10.0.0.1:8787/", true],
    ["http://127.0.0.1:8787", false],
    ["http://[::1]:8787", false],
    ["http://localhost", false],
    ["https://worker.invalid", false],
  ])("%s: insecure %s", (url, insecure) => {
    expect(insecureUrl(url as string)).toBe(insecure);
  });
});

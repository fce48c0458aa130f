import { describe, expect, it } from "vitest";
import {
  DEFAULT_LAN,
  LanConfig,
  LanProbe,
  PG_PASSWORD_ENV,
  redactLan,
  resolveLanSecrets,
} from "../../../agent/lan/config.js";

describe("LAN probe config", () => {
  it("fills the defaults per kind", () => {
    expect(LanProbe.parse({ kind: "sip", name: "sip" })).toEqual({
      kind: "sip",
      name: "sip",
      transport: "udp",
      port: 5060,
      critical: true,
      timeoutMs: 2000,
    });
    expect(LanProbe.parse({ kind: "tcp", name: "web", port: 443 })).toEqual({
      kind: "tcp",
      name: "web",
      port: 443,
      critical: false,
      timeoutMs: 2000,
    });
    expect(LanProbe.parse({ kind: "postgres", name: "db" })).toEqual({
      kind: "postgres",
      name: "db",
      port: 5432,
      database: "asterisk",
      user: "asterisk",
      critical: false,
      timeoutMs: 2000,
    });
    expect(LanConfig.parse({ probes: [{ kind: "tcp", name: "t", port: 1 }] })).toMatchObject({
      intervalMs: 5000,
      confirmIntervalMs: 1000,
      fall: 3,
      rise: 2,
    });
  });

  it("confirms at 1 s by default, never slower than the normal beat", () => {
    const probes = [{ kind: "tcp", name: "t", port: 1 }];
    expect(LanConfig.parse({ probes, intervalMs: 600 }).confirmIntervalMs).toBe(600);
    expect(LanConfig.parse({ probes, intervalMs: 600, confirmIntervalMs: 250 }).confirmIntervalMs).toBe(250);
    const r = LanConfig.safeParse({ probes, intervalMs: 2000, confirmIntervalMs: 3000 });
    expect(r.error?.issues.map((i) => `${i.path.join(".")}: ${i.message}`)).toEqual([
      "confirmIntervalMs: expected at most intervalMs (2000)",
    ]);
    expect(LanConfig.safeParse({ probes, confirmIntervalMs: 50 }).error?.issues[0]?.path).toEqual([
      "confirmIntervalMs",
    ]);
  });

  it("has a Wazo default: SIP over UDP critical, SIP over TCP, the web port and a database login", () => {
    expect(LanConfig.parse(DEFAULT_LAN)).toEqual(DEFAULT_LAN);
    expect(DEFAULT_LAN.probes.map((p) => [p.kind, p.name, "port" in p ? p.port : null, p.critical])).toEqual([
      ["sip", "sip-udp", 5060, true],
      ["sip", "sip-tcp", 5060, false],
      ["tcp", "web", 443, false],
      ["postgres", "postgres", 5432, false],
    ]);
  });

  it("names the field that is wrong", () => {
    const issues = (raw: unknown) => {
      const r = LanConfig.safeParse(raw);
      expect(r.success).toBe(false);
      return r.error!.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
    };
    expect(issues({ probes: [] })).toEqual(["probes: expected at least one LAN probe"]);
    expect(
      issues({
        probes: [
          { kind: "tcp", name: "a", port: 1 },
          { kind: "tcp", name: "a", port: 2 },
        ],
      }),
    ).toEqual(['probes.1.name: duplicate probe name "a"']);
    expect(issues({ probes: [{ kind: "sip", name: "s", transport: "tls" }] })[0]).toMatch(/^probes\.0\.transport: /);
    expect(issues({ probes: [{ kind: "sip", name: "s", acceptCodes: [100] }] })[0]).toMatch(
      /^probes\.0\.acceptCodes\.0: /,
    );
    expect(issues({ probes: [{ kind: "tcp", name: "t" }] })[0]).toMatch(/^probes\.0\.port: /);
    expect(issues({ probes: [{ kind: "icmp", name: "t" }] })[0]).toMatch(/^probes\.0\.kind: /);
    expect(issues({ probes: [{ kind: "tcp", name: "t", port: 1, extra: 1 }] })[0]).toMatch(/^probes\.0: .*extra/);
    expect(issues({ probes: [{ kind: "tcp", name: "t", port: 1 }], fall: 0 })[0]).toMatch(/^fall: /);
  });

  it("takes the database password from the environment, which wins, and never shows it", () => {
    const cfg = LanConfig.parse({
      probes: [
        { kind: "postgres", name: "db", password: "from-file" },
        { kind: "sip", name: "sip" },
      ],
    });
    expect(resolveLanSecrets(cfg, {})).toBe(cfg);
    const resolved = resolveLanSecrets(cfg, { [PG_PASSWORD_ENV]: "from-env" });
    expect(resolved.probes[0]).toMatchObject({ password: "from-env" });
    expect(resolved.probes[1]).toBe(cfg.probes[1]);
    const shown = JSON.stringify(redactLan(resolved));
    expect(shown).not.toContain("from-env");
    expect(shown).toContain("[redacted]");
    expect(PG_PASSWORD_ENV).toBe("XIVO_HA_PG_PASSWORD");
  });
});

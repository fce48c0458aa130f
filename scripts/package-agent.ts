import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { gzipSync } from "node:zlib";
import { buildAgentWithInputs } from "./build-agent.js";

/**
 * `npm run package:agent`: dist/xivo-ha-agent_<version>_all.deb for a Debian 12 / Wazo slave.
 * Built with Debian's own `dpkg-deb --root-owner-group` (no fakeroot): the bundle (it carries
 * its npm dependencies) under /usr/lib/xivo-ha-agent, a /usr/bin wrapper that runs it with
 * Debian's nodejs, the systemd unit, the docs. /etc/xivo-ha/agent.json is not in the package,
 * so no upgrade can touch it; packaging/debian holds the control file and maintainer scripts.
 */
const run = promisify(execFile);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const PKG = "xivo-ha-agent";
const PACKAGING = path.join(ROOT, "packaging");

export interface PackageOptions {
  /** Defaults to package.json's version. */
  version?: string;
  outDir?: string;
}

/** Debian's form of an npm version: 1.2.3-rc.1 sorts before 1.2.3 only as 1.2.3~rc.1. */
export const debianVersion = (npm: string) => npm.replace("-", "~");

async function put(root: string, rel: string, content: string | Buffer, mode = 0o644) {
  const file = path.join(root, rel);
  await mkdir(path.dirname(file), { recursive: true, mode: 0o755 });
  await writeFile(file, content);
  await chmod(file, mode);
}

/** gzip as dh_compress does it: best compression, no name or time stamp, so builds are reproducible. */
const gzip = (data: string | Buffer) => {
  const gz = gzipSync(data, { level: 9 });
  gz.writeUInt32LE(0, 4); // MTIME
  gz[9] = 3; // OS: Unix, whatever built it
  return gz;
};

/** The manual page is the CLI's own --help, verbatim: one text to keep up to date. */
function manPage(help: string, version: string): string {
  const [title, ...rest] = help.trimEnd().split("\n");
  const roff = (line: string) => line.replace(/\\/g, "\\e").replace(/^([.'])/, "\\&$1");
  return [
    `.TH ${PKG.toUpperCase()} 1 "" "${PKG} ${version}" "User Commands"`,
    ".SH NAME",
    `${PKG} \\- ${roff(title!.replace(/^\S+ \S+ — /, ""))}`,
    ".SH DESCRIPTION",
    ".nf",
    ...rest.map(roff),
    ".fi",
    ".SH FILES",
    "/etc/xivo-ha/agent.json, /etc/xivo-ha/agent.env, /var/lib/xivo-ha",
    ".SH SEE ALSO",
    `/usr/share/doc/${PKG}/README.md.gz`,
    "",
  ].join("\n");
}

/** Each npm package bundled in the agent: name, version, licence, and its licence text. */
async function thirdPartyLicenses(inputs: string[]): Promise<string> {
  const dirs = new Set<string>();
  for (const input of inputs) {
    const m = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(input);
    if (m) dirs.add(m[1]!);
  }
  const parts: string[] = [];
  for (const dir of [...dirs].sort()) {
    const pkg = JSON.parse(await readFile(path.join(ROOT, dir, "package.json"), "utf8")) as {
      name: string;
      version: string;
      license?: string;
    };
    const file = (await readdir(path.join(ROOT, dir))).find((f) => /^(licen[cs]e|copying)/i.test(f));
    const text = file
      ? await readFile(path.join(ROOT, dir, file), "utf8")
      : `(no licence file; package.json says ${pkg.license ?? "nothing"})`;
    parts.push(`${pkg.name} ${pkg.version} — ${pkg.license ?? "see below"}\n\n${text.trim()}\n`);
  }
  return `Bundled in /usr/lib/${PKG}/${PKG}.mjs:\n\n${parts.join(`\n${"-".repeat(72)}\n\n`)}`;
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await filesUnder(p)));
    else out.push(p);
  }
  return out.sort();
}

export async function packageAgent(opts: PackageOptions = {}): Promise<string> {
  const pkgJson = JSON.parse(await readFile(path.join(ROOT, "package.json"), "utf8")) as { version: string };
  const version = debianVersion(opts.version ?? pkgJson.version);
  const outDir = opts.outDir ?? path.join(ROOT, "dist");
  const stage = await mkdtemp(path.join(tmpdir(), "xivo-ha-deb-"));
  try {
    const doc = `usr/share/doc/${PKG}`;
    await mkdir(path.join(stage, "usr/lib", PKG), { recursive: true });
    const { inputs } = await buildAgentWithInputs(path.join(stage, "usr/lib", PKG, `${PKG}.mjs`));
    await chmod(path.join(stage, "usr/lib", PKG, `${PKG}.mjs`), 0o644);
    await put(stage, `usr/bin/${PKG}`, await readFile(path.join(PACKAGING, `${PKG}.sh`)), 0o755);
    const help = (await run(process.execPath, [path.join(stage, "usr/lib", PKG, `${PKG}.mjs`), "--help"])).stdout;
    await put(stage, `usr/share/man/man1/${PKG}.1.gz`, gzip(manPage(help, version)));
    await put(
      stage,
      `lib/systemd/system/${PKG}.service`,
      await readFile(path.join(ROOT, "agent/systemd", `${PKG}.service`)),
    );
    await put(stage, `${doc}/copyright`, await readFile(path.join(PACKAGING, "debian/copyright")));
    await put(stage, `${doc}/THIRD-PARTY-LICENSES.gz`, gzip(await thirdPartyLicenses(inputs)));
    await put(stage, `${doc}/README.md.gz`, gzip(await readFile(path.join(ROOT, "README.md"))));
    await put(stage, `${doc}/examples/agent.json`, await readFile(path.join(ROOT, "agent/agent.example.json")));
    const date = new Date(Number(process.env.SOURCE_DATE_EPOCH ?? 0) * 1000 || Date.now())
      .toUTCString()
      .replace("GMT", "+0000");
    const changelog = `${PKG} (${version}) unstable; urgency=medium\n\n  * Release ${version}.\n\n -- xivo-ha developers <dev@xivo-ha.invalid>  ${date}\n`;
    await put(stage, `${doc}/changelog.gz`, gzip(changelog));

    const files = await filesUnder(stage);
    let bytes = 0;
    const sums: string[] = [];
    for (const f of files) {
      const data = await readFile(f);
      bytes += (await stat(f)).size;
      sums.push(`${createHash("md5").update(data).digest("hex")}  ${path.relative(stage, f)}`);
    }
    const control = (await readFile(path.join(PACKAGING, "debian/control"), "utf8"))
      .replace("@VERSION@", version)
      .replace("@INSTALLED_SIZE@", String(Math.ceil(bytes / 1024)));
    await put(stage, "DEBIAN/control", control);
    await put(stage, "DEBIAN/md5sums", `${sums.join("\n")}\n`);
    for (const script of ["postinst", "prerm", "postrm"]) {
      await put(stage, `DEBIAN/${script}`, await readFile(path.join(PACKAGING, "debian", script)), 0o755);
    }
    // mkdtemp made the root 0700; a package's / must be 0755 like every directory in it.
    await chmod(stage, 0o755);
    await mkdir(outDir, { recursive: true });
    const deb = path.join(outDir, `${PKG}_${version}_all.deb`);
    await run("dpkg-deb", ["--root-owner-group", "-Zxz", "--build", stage, deb]);
    return deb;
  } finally {
    await rm(stage, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const deb = await packageAgent({ version: process.argv[2] });
  console.log(`built ${path.relative(process.cwd(), deb)}`);
}

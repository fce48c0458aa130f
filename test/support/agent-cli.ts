import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

/** The `xivo-ha-agent` bin as an administrator runs it: a real process, no terminal on stdin. */
export const AGENT_BIN = fileURLToPath(new URL("../../bin/xivo-ha-agent.mjs", import.meta.url));

export function agentCli(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [AGENT_BIN, ...args], {
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    child.once("exit", (code) => resolve({ code, out, err }));
  });
}

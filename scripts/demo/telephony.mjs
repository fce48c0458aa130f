#!/usr/bin/env node
// The demo's stand-in for the slave's Asterisk, driven like a service:
//   telephony.mjs start|stop|status <dir> <sip-port>
// `start` forks a detached SIP responder on 127.0.0.1:<sip-port>/udp that answers OPTIONS with
// 200 OK (so "failover done" means "the slave answers SIP"); `stop` ends it; `status` exits 0
// while it runs, 3 otherwise (LSB).
import { spawn } from "node:child_process";
import dgram from "node:dgram";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const [verb, dir, port] = process.argv.slice(2);
const pidFile = dir ? join(dir, "telephony.pid") : "";

function running() {
  if (!existsSync(pidFile)) return null;
  const pid = Number(readFileSync(pidFile, "utf8"));
  try {
    process.kill(pid, 0);
    return pid;
  } catch {
    return null;
  }
}

switch (verb) {
  case "start": {
    if (running()) break;
    const child = spawn(process.execPath, [process.argv[1], "serve", dir, port], { detached: true, stdio: "ignore" });
    writeFileSync(pidFile, String(child.pid));
    child.unref();
    break;
  }
  case "stop": {
    const pid = running();
    if (pid) process.kill(pid, "SIGTERM");
    for (let i = 0; i < 100 && running(); i++) await new Promise((r) => setTimeout(r, 20));
    rmSync(pidFile, { force: true });
    break;
  }
  case "status":
    process.exit(running() ? 0 : 3);
    break;
  case "serve": {
    const sock = dgram.createSocket("udp4");
    sock.on("message", (msg, from) => {
      const text = msg.toString();
      if (!text.startsWith("OPTIONS ")) return;
      const keep = text.split("\r\n").filter((l) => /^(via|v|from|f|to|t|call-id|i|cseq):/i.test(l));
      const reply = ["SIP/2.0 200 OK", ...keep, "Server: xivo-ha demo slave", "Content-Length: 0", "", ""].join("\r\n");
      sock.send(reply, from.port, from.address);
    });
    sock.bind(Number(port), "127.0.0.1");
    process.on("SIGTERM", () => process.exit(0));
    break;
  }
  default:
    console.error("usage: telephony.mjs start|stop|status <dir> <sip-port>");
    process.exit(2);
}

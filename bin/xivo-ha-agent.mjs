#!/usr/bin/env node
// The agent from its TypeScript sources (tsx registers the loader): what the tests run.
// On a slave, the Debian package's /usr/bin/xivo-ha-agent runs the bundle instead (`npm run
// package:agent`; `npm run build:agent` → dist/xivo-ha-agent.mjs): same code, no loader, about
// 40 MB less memory, and it runs on Node 18.19+ where this needs the development toolchain.
import { register } from "tsx/esm/api";

register();
await import("../agent/main.ts");

#!/usr/bin/env node
// The agent from its TypeScript sources (tsx registers the loader): what the tests run.
// On a slave, run the bundle instead (`npm run build:agent` → dist/xivo-ha-agent.mjs): same
// code, no loader, about 40 MB less memory.
import { register } from "tsx/esm/api";

register();
await import("../agent/main.ts");

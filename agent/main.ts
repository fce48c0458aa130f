import { main } from "./cli.js";

/** The agent's entry point, for the bundle (dist/) and the source bin (bin/) alike. */
process.exitCode = await main(process.argv.slice(2));

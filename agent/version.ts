/** The agent's version: in its reports, its start log line and `--version`. */
export const AGENT_VERSION = "0.1.0";

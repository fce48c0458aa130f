export { DEFAULT_LAN, LanConfig, LanPostgresProbe, LanProbe, LanSipProbe, LanTcpProbe, PG_PASSWORD_ENV, redactLan, resolveLanSecrets } from "./config.js";
export { LanMonitor, type LanView } from "./monitor.js";
export { LanProbeResult, runLanProbe } from "./probe.js";

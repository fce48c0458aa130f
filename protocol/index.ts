export * from "./encoding.js";
export * from "./verdict.js";
export * from "./signing.js";
export * from "./report.js";
export * from "./events.js";
export * from "./push.js";

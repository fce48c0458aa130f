/**
 * Structured logs: one JSON object per line on stdout, which journald keeps as is. Fields whose
 * name says secret are replaced, so a careless call can never write a token to the journal.
 */
export type LogFields = Record<string, unknown>;
export type Logger = (event: string, fields?: LogFields, level?: "info" | "warn" | "error") => void;

const SECRET = /token|password|secret|authorization|signing_?key/i;

function redact(value: unknown, depth = 0): unknown {
  if (depth > 4 || value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  return Object.fromEntries(
    Object.entries(value as Record<string, unknown>).map(([k, v]) => [
      k,
      SECRET.test(k) ? "[redacted]" : redact(v, depth + 1),
    ]),
  );
}

export function jsonLogger(write: (line: string) => void = (l) => process.stdout.write(`${l}\n`)): Logger {
  return (event, fields = {}, level = "info") => {
    write(JSON.stringify({ ts: new Date().toISOString(), level, event, ...(redact(fields) as LogFields) }));
  };
}

export const silentLogger: Logger = () => {};

/** localhost, 127.0.0.0/8, ::1 (bracketed or not): plain http there never leaves the machine. */
export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h.endsWith(".localhost") || h === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/** An http:// URL to another machine: a bearer token or a payload would cross the network in clear. */
export function insecureUrl(url: string): boolean {
  const u = new URL(url);
  return u.protocol === "http:" && !isLoopbackHost(u.hostname);
}

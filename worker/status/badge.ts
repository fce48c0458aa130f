import { formatUptime } from "./uptime.js";

const escapeXml = (s: string) => s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** Rough text width for an 11 px sans-serif: enough to size a badge without a font. */
const textWidth = (s: string) => Math.round(s.length * 6.6 + 10);

/** A shields-style badge: "uptime 30d | 99.95 %", green / orange / red / grey by the figure. */
export function uptimeBadge(uptime: number | null, label = "uptime 30d"): string {
  const value = uptime === null ? "no data" : formatUptime(uptime);
  const color = uptime === null ? "#9f9f9f" : uptime >= 0.999 ? "#1f9d55" : uptime >= 0.99 ? "#d97706" : "#dc2626";
  const lw = textWidth(label);
  const vw = textWidth(value);
  const [l, v] = [escapeXml(label), escapeXml(value)];
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${lw + vw}" height="20" role="img" aria-label="${l}: ${v}">` +
    `<title>${l}: ${v}</title>` +
    `<rect width="${lw}" height="20" fill="#555"/><rect x="${lw}" width="${vw}" height="20" fill="${color}"/>` +
    `<g fill="#fff" text-anchor="middle" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11">` +
    `<text x="${lw / 2}" y="14">${l}</text><text x="${lw + vw / 2}" y="14">${v}</text></g></svg>`
  );
}

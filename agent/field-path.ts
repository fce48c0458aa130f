/** A zod issue's path as a config field name: `worker.publicKeys[0].x`, or `(root)`. */
export function fieldPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return "(root)";
  return path.map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`)).join("");
}

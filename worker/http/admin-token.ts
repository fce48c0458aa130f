// No runtime types here: scripts/local-secrets.ts checks a local token by the same rule under Node.

/** A shorter ADMIN_TOKEN could be guessed: the worker refuses to serve the admin API with one. */
export const MIN_ADMIN_TOKEN = 32;

/** Why the ADMIN_TOKEN secret cannot be used (null: it can). */
export function adminTokenProblem(adminToken: string | undefined): string | null {
  if (!adminToken) return "the ADMIN_TOKEN secret is not set";
  if (adminToken.length < MIN_ADMIN_TOKEN)
    return `the ADMIN_TOKEN secret is shorter than ${MIN_ADMIN_TOKEN} characters`;
  return null;
}

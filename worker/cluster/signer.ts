import type { PushMessage } from "../../protocol/push.js";
import { importSigner, type SignedEnvelope, type Signer } from "../../protocol/signing.js";
import type { Verdict } from "../../protocol/verdict.js";
import { done, fail, type Outcome } from "../env.js";

/** Signs verdicts with the SIGNING_KEY secret, imported once (and again after a failed import). */
export class VerdictSigner {
  private signer: Promise<Signer> | null = null;

  constructor(private readonly key: string | undefined) {}

  private get(): Promise<Signer> {
    if (!this.key) return Promise.reject(new Error("the SIGNING_KEY secret is not set: no verdict can be signed"));
    this.signer ??= importSigner(this.key);
    this.signer.catch(() => (this.signer = null));
    return this.signer;
  }

  /** For a poll: 503 when there is no usable key. */
  async sign(verdict: Verdict): Promise<Outcome<SignedEnvelope>> {
    let signer: Signer;
    try {
      signer = await this.get();
    } catch (err) {
      return fail(503, "signing_unavailable", (err as Error).message);
    }
    return done(await signer.sign(verdict));
  }

  /** For a push: the agent is told why there is no verdict. */
  async push(verdict: Verdict): Promise<PushMessage> {
    try {
      return { type: "verdict", envelope: await (await this.get()).sign(verdict) };
    } catch (err) {
      return { type: "error", code: "signing_unavailable", message: (err as Error).message };
    }
  }
}

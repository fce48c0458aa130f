import { z } from "zod";
import { NotifyEventType } from "../../protocol/events.js";
import { insecureUrl } from "../../protocol/host.js";
import { uniqueNames } from "../../protocol/probe-fields.js";
import { WebhookSecret } from "../../protocol/webhook.js";

/**
 * Notification channels, part of a cluster's config (`notifications: [...]`). One interface per
 * provider, Gatus-style: Slack incoming webhooks, and signed (Standard Webhooks) HTTP webhooks.
 */

const Name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, "1 to 63 characters of A-Z a-z 0-9 _ . -");
/** https only: a webhook's bearer and a Slack URL's token would cross the network in clear. */
const Url = z
  .url({ protocol: /^https?$/, error: "must be an http(s) URL" })
  .max(2000)
  .refine((u) => !insecureUrl(u), "must be https (plain http only to a loopback host)");
/** Omitted: every event. An empty list would silence the channel, which is what removing it is for. */
const Events = z.array(NotifyEventType).min(1).max(NotifyEventType.options.length).optional();

export const SlackChannel = z.strictObject({ kind: z.literal("slack"), name: Name, url: Url, events: Events });

export const WebhookChannel = z.strictObject({
  kind: z.literal("webhook"),
  name: Name,
  url: Url,
  /** One or more: during a key rotation both old and new secrets sign every attempt. */
  secrets: z.array(WebhookSecret).min(1).max(4),
  events: Events,
});

export const Channel = z.discriminatedUnion("kind", [SlackChannel, WebhookChannel]);
export type Channel = z.infer<typeof Channel>;
export type SlackChannel = z.infer<typeof SlackChannel>;
export type WebhookChannel = z.infer<typeof WebhookChannel>;

export const Channels = uniqueNames(Channel, "channel").max(10);

/**
 * A channel as PUT: its secret may be left out (or, for Slack, be the redacted URL GET shows),
 * which keeps the one stored for the channel of the same name and kind (`keepSecrets`). So the
 * `config` a GET returns can be sent back as it is.
 */
export const SlackChannelInput = SlackChannel.extend({ url: Url.optional() });
export const WebhookChannelInput = WebhookChannel.extend({
  secrets: WebhookChannel.shape.secrets.optional(),
  /** What GET shows instead of the secrets; ignored. */
  secretsSet: z.number().int().min(0).optional(),
});
export const ChannelInput = z.discriminatedUnion("kind", [SlackChannelInput, WebhookChannelInput]);
export type ChannelInput = z.infer<typeof ChannelInput>;
export const ChannelsInput = uniqueNames(ChannelInput, "channel").max(10);

/** What GET shows: never the secrets (nor a Slack URL's token path, which is a secret too). */
export const ChannelView = z.discriminatedUnion("kind", [
  SlackChannel.extend({ url: z.string() }),
  WebhookChannel.omit({ secrets: true }).extend({ secretsSet: z.number().int().min(1) }),
]);
export type ChannelView = z.infer<typeof ChannelView>;

export function channelView(c: Channel): ChannelView {
  if (c.kind === "webhook") {
    const { secrets, ...rest } = c;
    return { ...rest, secretsSet: secrets.length };
  }
  return { ...c, url: redactUrl(c.url) };
}

/**
 * The channels of a PUT with every omitted secret taken from the stored channel of the same name
 * and kind: a webhook without `secrets`, a Slack channel without `url` or with the redacted URL
 * GET shows. An error names the field when there is nothing stored to keep.
 */
export function keepSecrets(
  input: readonly ChannelInput[],
  stored: readonly Channel[],
): { channels: Channel[] } | { field: string; message: string } {
  const channels: Channel[] = [];
  for (const [i, c] of input.entries()) {
    const before = stored.find((s) => s.name === c.name && s.kind === c.kind);
    if (c.kind === "webhook") {
      const { secretsSet: _shown, secrets, ...rest } = c;
      const kept = secrets ?? (before?.kind === "webhook" ? before.secrets : null);
      if (!kept)
        return {
          field: `notifications.${i}.secrets`,
          message: `notifications.${i}.secrets: required (no webhook channel "${c.name}" is stored to keep them from)`,
        };
      channels.push({ ...rest, secrets: kept });
    } else {
      const shown = before?.kind === "slack" ? redactUrl(before.url) : null;
      const url = c.url === undefined || c.url === shown ? (before?.kind === "slack" ? before.url : undefined) : c.url;
      if (!url || url.endsWith("/…")) {
        return {
          field: `notifications.${i}.url`,
          message: `notifications.${i}.url: required, in full (no Slack channel "${c.name}" is stored to keep it from)`,
        };
      }
      channels.push({ ...c, url });
    }
  }
  return { channels };
}

/** Keeps the origin only: Slack webhook URLs carry their credential in the path. */
export function redactUrl(url: string): string {
  return `${new URL(url).origin}/…`;
}

export const wants = (c: Channel, type: NotifyEventType) => !c.events || c.events.includes(type);

/** A cluster config as GET shows it: channels through `channelView`. */
export type PublicConfig<C> = Omit<C, "notifications"> & { notifications: ChannelView[] };

export function publicConfig<C extends { notifications: Channel[] }>(config: C): PublicConfig<C> {
  return { ...config, notifications: config.notifications.map(channelView) };
}

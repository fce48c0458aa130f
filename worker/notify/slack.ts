import type { NotifyEventType } from "../../protocol/events.js";
import { clip } from "../../protocol/encoding.js";

/**
 * Slack incoming-webhook messages (Block Kit). Several queued events for one channel go out as
 * one message (Slack takes about one message a second per webhook), within Slack's limits:
 * `text` ≤ 40 000 characters, ≤ 50 blocks, section text ≤ 3 000 characters.
 */

export const SLACK_MAX_TEXT = 40_000;
export const SLACK_MAX_BLOCKS = 50;
export const SLACK_MAX_SECTION = 3_000;
/** Each event takes a section + a context block; a header and a footer take two more. */
export const SLACK_MAX_EVENTS_PER_MESSAGE = Math.floor((SLACK_MAX_BLOCKS - 2) / 2);

export interface SlackEvent {
  cluster: string;
  type: NotifyEventType;
  at: number;
  reason: string;
  /** Part of a planned maintenance (worker/maintenance.ts): said in the title, so nobody is paged for it. */
  planned?: boolean;
}

const TITLES: Record<NotifyEventType, string> = {
  "master.down": ":red_circle: Master down",
  "master.degraded": ":large_orange_circle: Master degraded",
  "master.up": ":large_green_circle: Master up",
  "failover.done": ":arrows_counterclockwise: Failover done: the slave is active",
  "failback.done": ":leftwards_arrow_with_hook: Failback done: the slave is standby again",
  "failover.failed": ":rotating_light: Failover FAILED: the slave did not take over",
  "failback.failed": ":rotating_light: Failback FAILED: the slave's telephony did not stop",
  "telephony.failing": ":rotating_light: The active slave's telephony is not answering",
  "telephony.recovered": ":white_check_mark: The active slave's telephony answers again",
  "agent.lost": ":warning: Agent lost: no report from the slave",
  "agent.back": ":white_check_mark: Agent back",
  "replication.failing": ":warning: Replication failing",
  "replication.recovered": ":white_check_mark: Replication recovered",
  "wan.unreachable": ":globe_with_meridians: Master unreachable from the internet only",
  "wan.recovered": ":white_check_mark: Master reachable from the internet again",
  "lan.failing": ":warning: Slave's LAN view of the master failing",
  "lan.recovered": ":white_check_mark: Slave's LAN view of the master recovered",
  "maintenance.started": ":construction: Planned maintenance started",
  "maintenance.ended": ":white_check_mark: Planned maintenance ended",
};

/** "Failover done … (planned)": a planned switchover reads as one at a glance. */
export const slackTitle = (type: NotifyEventType, planned = false) =>
  planned && !type.startsWith("maintenance.") ? `${TITLES[type]} (planned)` : TITLES[type];

/** Slack mrkdwn: only &, < and > need escaping. */
const escapeMrkdwn = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

export interface SlackMessage {
  text: string;
  blocks: Array<Record<string, unknown>>;
}

/** One message for 1..SLACK_MAX_EVENTS_PER_MESSAGE events of one cluster, oldest first. */
export function slackMessage(events: readonly SlackEvent[], statusUrl: string | null): SlackMessage {
  if (events.length === 0 || events.length > SLACK_MAX_EVENTS_PER_MESSAGE)
    throw new RangeError(`1..${SLACK_MAX_EVENTS_PER_MESSAGE} events per message`);
  const cluster = events[0]!.cluster;
  const blocks: Array<Record<string, unknown>> = [];
  if (events.length > 1) {
    blocks.push({
      type: "header",
      text: { type: "plain_text", text: clip(`xivo-ha ${cluster}: ${events.length} events`, 150) },
    });
  }
  for (const e of events) {
    const head = `*${slackTitle(e.type, e.planned)}* — cluster \`${escapeMrkdwn(e.cluster)}\`\n`;
    blocks.push({
      type: "section",
      text: { type: "mrkdwn", text: clip(head + escapeMrkdwn(e.reason), SLACK_MAX_SECTION) },
    });
    const when = new Date(e.at).toISOString();
    // <!date^…> renders in the reader's time zone; the ISO text is the fallback.
    blocks.push({
      type: "context",
      elements: [
        {
          type: "mrkdwn",
          text: `event \`${e.type}\` · <!date^${Math.floor(e.at / 1000)}^{date_short_pretty} {time_secs}|${when}>`,
        },
      ],
    });
  }
  if (statusUrl) blocks.push({ type: "context", elements: [{ type: "mrkdwn", text: `<${statusUrl}|Status page>` }] });
  const lines = events.map(
    (e) =>
      `[${cluster}] ${slackTitle(e.type, e.planned).replace(/^:[a-z_]+: /, "")}: ${e.reason} (${new Date(e.at).toISOString()})`,
  );
  return { text: clip(lines.join("\n"), SLACK_MAX_TEXT), blocks };
}

// The config schema of one bridge to an upstream ("cloud") broker, and of the `bridges:` list.
// Part of THE config schema (hub/config/schema.ts imports it); defaults live here and nowhere else.
// Topic rules follow mosquitto's `topic pattern [out|in|both [qos [local-prefix remote-prefix]]]`,
// including its table of which empty pattern/prefix combinations are valid (mosquitto.conf(5)).
import { z } from "zod";
import { int, nonEmpty } from "../config/schema-kit.js";
import { duration } from "../config/duration.js";
import { validTopicFilter, validTopicName } from "../broker/topics.js";

const TOPIC_LIMITS = { maxLength: 65_535, maxLevels: 65_535 };

const URL_MSG = "a URL like mqtts://host:8883 or mqtt://host:1883";
const brokerUrl = z
  .string({ error: URL_MSG })
  .regex(/^(mqtt|mqtts):\/\/[^\s/]+(:\d+)?\/?$/, { error: URL_MSG, abort: true })
  .refine((u) => URL.canParse(u), { error: URL_MSG });

/** A duration that is a whole number of seconds in a range (MQTT carries these as integer seconds). */
function seconds(min: number, max: number) {
  const msg = `whole seconds between ${min}s and ${max}s`;
  return duration().refine((ms) => ms % 1000 === 0 && ms >= min * 1000 && ms <= max * 1000, { error: msg });
}

/** A topic prefix: a topic name without wildcards, or "" (mosquitto's "" place marker: no prefix). */
const prefix = z
  .string({ error: "a topic prefix without + or #" })
  .refine((p) => p === "" || validTopicName(p, TOPIC_LIMITS), { error: "a topic prefix without + or # (e.g. home/)" });

export const topicRuleSchema = z
  .strictObject({
    pattern: z
      .string({ error: "a topic filter (may use + and #), or \"\" to map local_prefix to remote_prefix exactly" })
      .describe('Topic filter shared between the brokers, e.g. "sensors/#". "" maps exactly one topic: local_prefix <-> remote_prefix.'),
    direction: z
      .enum(["out", "in", "both"])
      .default("out")
      .describe("out: local -> remote. in: remote -> local. both: each way (a message that came from upstream is never sent back)."),
    qos: z
      .union([z.literal(0), z.literal(1), z.literal(2)], { error: "0, 1 or 2" })
      .default(1)
      .describe(
        "QoS used for this rule: outbound messages go up at min(their QoS, this); inbound, the remote subscription's QoS. Default 1 (mosquitto's default is 0).",
      ),
    local_prefix: prefix.default("").describe('Prefix of the topic on this hub, e.g. "hub/". Removed going up, added coming down.'),
    remote_prefix: prefix.default("").describe('Prefix of the topic on the remote broker, e.g. "things/pi1/". Added going up, removed coming down.'),
    latest_only: z
      .boolean({ error: "true or false" })
      .default(false)
      .describe("Queue only the newest message per topic while the uplink is down (for state topics). Replaced messages count as dropped."),
  })
  .superRefine((r, ctx) => {
    // mosquitto.conf(5): pattern "" needs both prefixes; each prefix+pattern must be a valid filter.
    if (r.pattern === "" && (r.local_prefix === "" || r.remote_prefix === "")) {
      ctx.addIssue({ code: "custom", path: ["pattern"], message: 'both local_prefix and remote_prefix when pattern is ""' });
      return;
    }
    const checked = new Set<string>();
    for (const [side, p] of [
      ["local_prefix", r.local_prefix],
      ["remote_prefix", r.remote_prefix],
    ] as const) {
      const full = p + r.pattern;
      if (checked.has(full)) continue;
      checked.add(full);
      if (!validTopicFilter(full, TOPIC_LIMITS)) {
        ctx.addIssue({ code: "custom", path: [r.pattern === "" ? side : "pattern"], message: `a valid topic filter after adding ${side} (got "${full}")` });
      }
    }
  })
  .describe("One topic rule, as mosquitto's `topic pattern direction qos local_prefix remote_prefix`.");

const bridgeTlsSchema = z
  .strictObject({
    ca_file: nonEmpty("a file path").optional().describe("PEM file of CA certificates that may sign the broker's certificate; default: the system's CAs."),
    cert_file: nonEmpty("a file path").optional().describe("PEM client certificate (with key_file) for client-certificate authentication, e.g. AWS IoT."),
    key_file: nonEmpty("a file path").optional().describe("PEM private key of cert_file."),
    servername: nonEmpty("a host name").optional().describe("Host name sent in SNI and checked against the certificate; default: the URL's host."),
    alpn: z
      .array(nonEmpty("a protocol name"), { error: "a list of protocol names" })
      .optional()
      .describe("ALPN protocols offered, e.g. [x-amzn-mqtt-ca] for AWS IoT Core on port 443."),
    insecure: z
      .boolean({ error: "true or false" })
      .default(false)
      .describe("Skip verifying the broker's certificate. Only for testing: it allows man-in-the-middle attacks; logged as a warning at every start."),
  })
  .refine((t) => (t.cert_file === undefined) === (t.key_file === undefined), { error: "cert_file and key_file together (or neither)" })
  .describe("TLS for mqtts:// URLs. TLS 1.2 is the minimum; the broker's certificate is verified unless insecure: true.");

const queueSchema = z
  .strictObject({
    max_messages: z.int({ error: "an integer >= 1" }).min(1, { error: "an integer >= 1" }).default(100_000).describe("Messages kept while the uplink is down."),
    max_bytes: z
      .int({ error: "an integer >= 1024" })
      .min(1024, { error: "an integer >= 1024" })
      .default(67_108_864)
      .describe("Bytes (topic + payload) kept while the uplink is down. Default 64 MiB."),
    max_age: duration().optional().describe("Messages older than this are dropped instead of sent late. Default: no limit."),
    policy: z
      .enum(["drop_oldest", "drop_new"])
      .default("drop_oldest")
      .describe("Past a bound: drop_oldest makes room by dropping the oldest queued messages; drop_new refuses the new one. Every drop is counted."),
    synchronous: z
      .enum(["normal", "full"])
      .default("normal")
      .describe("normal: survives a crash or kill -9 of the hub. full: also a power cut, at the cost of one SD-card flush per commit."),
  })
  .describe("The durable store-and-forward queue (SQLite, <state_dir>/bridge-<name>.db).");

/**
 * AWS IoT Core's data endpoints (<prefix>-ats.iot.<region>.amazonaws.com, .com.cn in China). Custom
 * domains are not recognised: there the QoS limit below is only documented.
 */
export function isAwsIotUrl(url: string): boolean {
  return /^[^:]+:\/\/[^/:]+\.iot\.[a-z0-9-]+\.amazonaws\.com(\.cn)?(:\d+)?\/?$/i.test(url);
}

export const bridgeSchema = z
  .strictObject({
    name: z
      .string({ error: "a bridge name of lowercase letters, digits, _ and -" })
      .regex(/^[a-z0-9_-]+$/, { error: "a bridge name of lowercase letters, digits, _ and -" })
      .describe("Name of this uplink: its topics are <base_topic>/bridge/<name>/..., its queue <state_dir>/bridge-<name>.db."),
    url: z
      .union([brokerUrl, z.array(brokerUrl).min(1)], { error: `${URL_MSG}, or a list of them` })
      .describe("Remote broker, or a list tried in turn (failover): mqtts://host:8883 (TLS) or mqtt://host:1883."),
    protocol_version: z.union([z.literal(4), z.literal(5)], { error: "4 (MQTT 3.1.1) or 5 (MQTT 5)" }).default(5).describe("MQTT version spoken upstream."),
    client_id: nonEmpty("a client id").optional().describe("MQTT client identifier upstream; default hub-<host name>-<bridge name>. AWS IoT: the thing name."),
    username: z.string({ error: "a string" }).optional().describe("User name for the remote broker."),
    password: z
      .string({ error: "a string" })
      .optional()
      // biome-ignore lint/suspicious/noTemplateCurlyInString: the ${ENV} syntax, shown to the user
      .describe("Password for the remote broker. Prefer password_file or ${ENV} so it is not in this file."),
    password_file: nonEmpty("a file path").optional().describe("File whose contents (trailing newline trimmed) are the password. Relative to this file."),
    keepalive: seconds(1, 65_535)
      .prefault("60s")
      .describe("MQTT keep-alive; a silent (blackholed) link is given up after 1.5 times this."),
    clean_start: z
      .boolean({ error: "true or false" })
      .default(false)
      .describe("Start a new session at each connection. false keeps the remote session, so QoS 2 stays exactly-once across reconnects."),
    session_expiry: seconds(0, 4_294_967_295)
      .prefault("1d")
      .describe("MQTT 5: how long the remote keeps our session (and queued commands) while we are away."),
    connect_timeout: duration().prefault("30s").describe("Time a connection attempt (TCP, TLS, CONNACK) may take."),
    reconnect_min: duration().prefault("1s").describe("First reconnect delay; it doubles per failed attempt (with full jitter) up to reconnect_max."),
    reconnect_max: duration().prefault("2m").describe("Longest reconnect delay."),
    max_inflight: int(1, 65_535).default(32).describe("Messages sent upstream but not yet acknowledged, at most."),
    status_topic: z
      .union([nonEmpty("an MQTT topic"), z.literal(false)], { error: "an MQTT topic, or false" })
      .optional()
      .describe(
        "Remote topic where the hub says online/offline (retained; offline is also our last will). Default <client_id>/status. false: none (for brokers whose policy allows no such topic).",
      ),
    stats_interval: duration().prefault("10s").describe("How often changed counters are published on <base_topic>/bridge/<name>/... and logged."),
    tls: bridgeTlsSchema.optional(),
    queue: queueSchema.prefault({}),
    topics: z.array(topicRuleSchema, { error: "a list of topic rules" }).min(1, { error: "at least one topic rule" }).describe("What is shared, in which direction."),
  })
  .superRefine((b, ctx) => {
    if (b.reconnect_min > b.reconnect_max) ctx.addIssue({ code: "custom", path: ["reconnect_min"], message: "at most reconnect_max" });
    if (typeof b.status_topic === "string" && !validTopicName(b.status_topic, TOPIC_LIMITS)) {
      ctx.addIssue({ code: "custom", path: ["status_topic"], message: "an MQTT topic without + or #" });
    }
    // AWS IoT Core takes QoS 0 and 1 only and never acknowledges a QoS 2 PUBLISH or SUBSCRIBE (AWS IoT
    // Developer Guide, "AWS IoT differences from MQTT specifications"): a QoS 2 rule would stall the queue.
    if ((typeof b.url === "string" ? [b.url] : b.url).some(isAwsIotUrl)) {
      b.topics.forEach((r, i) => {
        if (r.qos === 2) ctx.addIssue({ code: "custom", path: ["topics", i, "qos"], message: "0 or 1: AWS IoT Core does not support QoS 2 (it never acknowledges it)" });
      });
    }
  })
  // The loader has already replaced password_file by password; keep it out of the Config type.
  .transform(({ password_file: _file, ...rest }) => rest)
  .describe("One uplink to an upstream MQTT broker with a durable store-and-forward queue.");

export const bridgesSchema = z
  .array(bridgeSchema, { error: "a list of bridges" })
  .superRefine((list, ctx) => {
    const seen = new Map<string, number>();
    list.forEach((b, i) => {
      const first = seen.get(b.name);
      if (first === undefined) seen.set(b.name, i);
      else ctx.addIssue({ code: "custom", path: [i, "name"], message: `a name not used by another bridge (also bridges[${first}])` });
    });
  })
  .default([])
  .describe("Uplinks to upstream (cloud) brokers. Each forwards matching topics both ways and queues outbound messages durably while down.");

export type BridgeConfig = z.output<typeof bridgeSchema>;
export type TopicRuleConfig = z.output<typeof topicRuleSchema>;

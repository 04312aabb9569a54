// Pure local <-> remote topic mapping of a bridge, with mosquitto's semantics (mosquitto.conf(5),
// `topic pattern [out|in|both [qos [local-prefix remote-prefix]]]`; src/bridge_topic.c):
// - out: subscribe locally to local_prefix+pattern; a message on local_prefix+X goes up as
//   remote_prefix+X. in: subscribe remotely to remote_prefix+pattern; remote_prefix+X comes down as
//   local_prefix+X. both: each way.
// - pattern "" maps exactly one topic: local_prefix <-> remote_prefix (both prefixes required).
// - Rules are tried in config order; the first rule of the right direction whose full filter
//   matches decides the topic (mosquitto's bridge__remap_topic_in / send__publish loops).
// One deliberate difference: `#` also matches its parent level (MQTT-4.7.1-2 / §4.7.1.2), so
// mosquitto maps `L/` + `#` applied to the topic `L` to remote_prefix+`L` (the prefix cannot be
// stripped). We treat such a topic as not matched by that rule instead of inventing a topic.
// And: mosquitto's remap loop skips rules without prefixes, so an earlier prefix-less rule does not
// stop a later prefixed one from renaming the topic; here the first matching rule wins, prefixes or
// not, which is what the order in the file suggests.
import { matches } from "../broker/topics.js";
import type { QoS } from "../contracts.js";

export type Direction = "out" | "in" | "both";

export interface TopicRule {
  pattern: string;
  direction: Direction;
  qos: QoS;
  local_prefix: string;
  remote_prefix: string;
  latest_only?: boolean;
}

export interface CompiledRule {
  /** Position in the config's list, for messages. */
  index: number;
  direction: Direction;
  qos: QoS;
  latestOnly: boolean;
  localPrefix: string;
  remotePrefix: string;
  /** local_prefix + pattern: what the bridge subscribes to locally (out, both). */
  localFilter: string;
  /** remote_prefix + pattern: what the bridge subscribes to remotely (in, both). */
  remoteFilter: string;
}

export interface Mapped {
  topic: string;
  rule: CompiledRule;
}

export function compileRules(rules: readonly TopicRule[]): CompiledRule[] {
  return rules.map((r, index) => ({
    index,
    direction: r.direction,
    qos: r.qos,
    latestOnly: r.latest_only ?? false,
    localPrefix: r.local_prefix,
    remotePrefix: r.remote_prefix,
    localFilter: r.local_prefix + r.pattern,
    remoteFilter: r.remote_prefix + r.pattern,
  }));
}

const goesOut = (r: CompiledRule) => r.direction !== "in";
const comesIn = (r: CompiledRule) => r.direction !== "out";

/** The remote topic for a local one, or undefined if no out/both rule takes it. */
export function mapOutbound(rules: readonly CompiledRule[], localTopic: string): Mapped | undefined {
  for (const r of rules) {
    if (!goesOut(r) || !matches(r.localFilter, localTopic) || !localTopic.startsWith(r.localPrefix)) continue;
    const topic = r.remotePrefix + localTopic.slice(r.localPrefix.length);
    if (topic !== "") return { topic, rule: r };
  }
  return undefined;
}

/** The local topic for a remote one, or undefined if no in/both rule takes it. */
export function mapInbound(rules: readonly CompiledRule[], remoteTopic: string): Mapped | undefined {
  for (const r of rules) {
    if (!comesIn(r) || !matches(r.remoteFilter, remoteTopic) || !remoteTopic.startsWith(r.remotePrefix)) continue;
    const topic = r.localPrefix + remoteTopic.slice(r.remotePrefix.length);
    if (topic !== "") return { topic, rule: r };
  }
  return undefined;
}

/** Distinct local filters to subscribe to (out and both rules), in rule order. */
export function localFilters(rules: readonly CompiledRule[]): string[] {
  return [...new Set(rules.filter(goesOut).map((r) => r.localFilter))];
}

/** Distinct remote filters to subscribe to (in and both rules) with the highest QoS asked for each. */
export function remoteSubscriptions(rules: readonly CompiledRule[]): Map<string, QoS> {
  const subs = new Map<string, QoS>();
  for (const r of rules) {
    if (!comesIn(r)) continue;
    const q = subs.get(r.remoteFilter);
    if (q === undefined || r.qos > q) subs.set(r.remoteFilter, r.qos);
  }
  return subs;
}

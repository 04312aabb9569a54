// The third gate: semantic checks on packets the client sent, after the framer, the string walker
// and mqtt-packet's parser. Each check returns a verdict saying what the connection must do:
// - "connack":    send CONNACK with `reason` (3.1.1: v5ToV3Connack(reason)), then close;
// - "disconnect": MQTT 5 only: send DISCONNECT with `reason`, then close (MQTT-4.13.1-1);
// - "close":      close without sending anything (3.1.1 has no way to say why).
// `reason` is always an MQTT 5 reason code. Checklist sections C, D, E.
//
// Topic syntax and caps (levels, bytes: D6) are the TopicRules' business (topics.ts), passed in so
// this file stays independent of how they are configured. Everything here is allocation-free on the
// accepting path (PASS is a shared constant).
import type { IConnectPacket, IPublishPacket, ISubscribePacket, IUnsubscribePacket, Packet } from "mqtt-packet";
import { fixedHeaderLength, type ProtocolLevel } from "./framing.js";
import { RC, v5ToV3Connack } from "./reason-codes.js";

export interface TopicRules {
  /** A valid PUBLISH/will topic name: non-empty, no wildcards, within the configured caps. */
  validName(topic: string): boolean;
  /** A valid topic filter (syntax and caps); `$share/...` filters are split by this file first. */
  validFilter(filter: string): boolean;
}

export interface RuleLimits {
  /** Longest accepted client identifier, in UTF-8 bytes (C6). */
  maxClientIdLength: number;
  /** The Topic Alias Maximum sent in CONNACK; 0 = aliases not accepted (D3). */
  topicAliasMaximum: number;
}

export type Verdict =
  | { readonly ok: true }
  | { readonly ok: false; readonly action: "close" | "connack" | "disconnect"; readonly reason: number; readonly message: string };

export const PASS: Verdict = Object.freeze({ ok: true } as const);

/** After CONNECT: v5 says why with DISCONNECT, 3.1.1 just closes. */
function reject(level: ProtocolLevel, reason: number, message: string): Verdict {
  return { ok: false, action: level === 5 ? "disconnect" : "close", reason, message };
}

/** At CONNECT: CONNACK when the client's version has a code for it, else close (MQTT-3.1.4-1). */
function refuse(level: ProtocolLevel, reason: number, message: string): Verdict {
  const action = level === 5 || v5ToV3Connack(reason) !== undefined ? "connack" : "close";
  return { ok: false, action, reason, message };
}

/**
 * Raw-byte checks of a framed CONNECT, run BEFORE mqtt-packet (which answers an unknown protocol
 * level or a set reserved flag with a bare 'error', leaving no way to send the CONNACK the spec
 * asks for). Protocol name and level (C2: MQTT-3.1.2-1/-2): `MQIsdp` with 3, `MQTT` with 4 or 5;
 * bit 7 of the level (bridge mode, as mosquitto bridges send with try_private) is accepted. Anything
 * else: CONNACK 0x84, which the connection should send in the 3.1.1 format (return code 0x01) as
 * mosquitto does: the client's format is unknown. Reserved flag (C1: MQTT-3.1.2-3), will flags
 * (MQTT-3.1.2-11/-13/-14 3.1.1; 5: MQTT-3.1.2-11/-12/-13), 3.1.1 password without user name
 * (MQTT-3.1.2-22).
 */
export function checkConnectRaw(buf: Buffer): Verdict {
  const h = fixedHeaderLength(buf);
  if (h < 0 || h + 2 > buf.length) return { ok: false, action: "close", reason: RC.MALFORMED_PACKET, message: "CONNECT too short" };
  const nameLen = (buf[h]! << 8) | buf[h + 1]!;
  const p = h + 2 + nameLen;
  if (p + 2 > buf.length) return { ok: false, action: "close", reason: RC.MALFORMED_PACKET, message: "CONNECT too short" };
  const level = buf[p]! & 0x7f;
  const flags = buf[p + 1]!;
  const name = buf.toString("latin1", h + 2, p);
  const known = (name === "MQTT" && (level === 4 || level === 5)) || (name === "MQIsdp" && level === 3);
  if (!known) {
    return { ok: false, action: "connack", reason: RC.UNSUPPORTED_PROTOCOL_VERSION, message: `unsupported protocol ${JSON.stringify(name)} level ${level}` };
  }
  const lv = level as ProtocolLevel;
  if (flags & 0x01) return refuse(lv, RC.MALFORMED_PACKET, "CONNECT reserved flag set");
  const will = (flags & 0x04) !== 0;
  const willQos = (flags >> 3) & 0x03;
  if (!will && (willQos !== 0 || (flags & 0x20) !== 0)) return refuse(lv, RC.MALFORMED_PACKET, "will QoS/retain set without will flag");
  if (willQos === 3) return refuse(lv, RC.MALFORMED_PACKET, "will QoS 3");
  if (lv < 5 && (flags & 0x40) !== 0 && (flags & 0x80) === 0) return refuse(lv, RC.MALFORMED_PACKET, "password without user name");
  return PASS;
}

/** Characters a client identifier may not contain: they would widen `%c` ACL patterns (C6; CVE-2017-7650). */
function badClientIdChar(id: string): boolean {
  for (let i = 0; i < id.length; i++) {
    const c = id.charCodeAt(i);
    if (c === 0x2b || c === 0x23 || c === 0x2f) return true; // + # /
  }
  return false;
}

/**
 * Semantic checks of a parsed CONNECT (after checkConnectRaw and the string walker).
 * - Client identifier (C4, C6): longer than the cap or containing `+ # /` → 0x85 (3.1.1: 0x02).
 *   Empty: MQTT 3.1 (level 3) requires 1-23 characters → 0x85; 3.1.1 accepts it only with clean
 *   session (MQTT-3.1.3-7/-8); MQTT 5 accepts it whatever Clean Start says (MQTT-3.1.3-6/-7): the
 *   caller assigns an identifier (C5). Empty with clean=0 under 5 therefore passes.
 * - Will topic must be a valid topic name (5: 0x90; 3.1.1: close); will Response Topic no wildcards.
 * - v5: Receive Maximum 0 and Maximum Packet Size 0 are protocol errors (MQTT 5 §3.1.2.11.3/.4);
 *   Authentication Data without Authentication Method is a protocol error (§3.1.2.11.10).
 */
export function checkConnect(packet: IConnectPacket, rules: TopicRules, limits: RuleLimits): Verdict {
  const level = (packet.protocolVersion ?? 4) as ProtocolLevel;
  const id = packet.clientId;
  if (id.length === 0) {
    if (level === 3) return refuse(level, RC.CLIENT_IDENTIFIER_NOT_VALID, "empty client identifier on MQTT 3.1");
    if (level === 4 && !packet.clean) return refuse(level, RC.CLIENT_IDENTIFIER_NOT_VALID, "empty client identifier with clean session 0");
  } else {
    if (id.length > limits.maxClientIdLength || Buffer.byteLength(id, "utf8") > limits.maxClientIdLength) {
      return refuse(level, RC.CLIENT_IDENTIFIER_NOT_VALID, "client identifier too long");
    }
    if (badClientIdChar(id)) return refuse(level, RC.CLIENT_IDENTIFIER_NOT_VALID, "client identifier contains + # or /");
  }
  const will = packet.will;
  if (will) {
    if (!rules.validName(will.topic)) return refuse(level, RC.TOPIC_NAME_INVALID, "invalid will topic");
    const rt = will.properties?.responseTopic;
    if (rt !== undefined && !rules.validName(rt)) return refuse(level, RC.PROTOCOL_ERROR, "invalid will response topic");
  }
  const props = packet.properties;
  if (level === 5 && props) {
    if (props.receiveMaximum === 0) return refuse(level, RC.PROTOCOL_ERROR, "receive maximum 0");
    if (props.maximumPacketSize === 0) return refuse(level, RC.PROTOCOL_ERROR, "maximum packet size 0");
    if (props.authenticationData !== undefined && props.authenticationMethod === undefined) {
      return refuse(level, RC.PROTOCOL_ERROR, "authentication data without authentication method");
    }
  }
  return PASS;
}

/**
 * Semantic checks of a parsed PUBLISH from a client.
 * - QoS > 0 needs a non-zero packet id (D5: 3.1.1 MQTT-2.3.1-1, 5 MQTT-2.2.1-3) → 0x82.
 * - v5: Topic Alias 0 or above our maximum → 0x94 (D3: MQTT-3.3.2-8/-9); a Subscription Identifier
 *   from a client → 0x82 (D11: MQTT-3.3.4-6); Response Topic must be a valid topic name → 0x82 (D13:
 *   MQTT-3.3.2-14).
 * - Empty topic: allowed only under v5 with a Topic Alias (resolve with applyTopicAlias); else 0x82
 *   (D2: MQTT-4.7.3-1, 5 §3.3.2.1).
 * - Topic name invalid (wildcards D1: MQTT-3.3.2-2; caps D6) → 0x90 (v5) / close (3.1.1).
 */
export function checkPublish(packet: IPublishPacket, level: ProtocolLevel, rules: TopicRules, limits: RuleLimits): Verdict {
  if (packet.qos > 0 && !packet.messageId) return reject(level, RC.PROTOCOL_ERROR, "QoS > 0 PUBLISH with packet identifier 0");
  let alias: number | undefined;
  const props = level === 5 ? packet.properties : undefined;
  if (props) {
    alias = props.topicAlias;
    if (alias !== undefined && (alias === 0 || alias > limits.topicAliasMaximum)) {
      return reject(level, RC.TOPIC_ALIAS_INVALID, `topic alias ${alias} outside 1..${limits.topicAliasMaximum}`);
    }
    if (props.subscriptionIdentifier !== undefined) return reject(level, RC.PROTOCOL_ERROR, "client sent a subscription identifier");
    if (props.responseTopic !== undefined && !rules.validName(props.responseTopic)) {
      return reject(level, RC.PROTOCOL_ERROR, "invalid response topic");
    }
  }
  if (packet.topic.length === 0) {
    if (alias !== undefined) return PASS;
    return reject(level, RC.PROTOCOL_ERROR, "empty topic name without topic alias");
  }
  if (!rules.validName(packet.topic)) return reject(level, RC.TOPIC_NAME_INVALID, "invalid topic name (wildcard, control character, or over the length or level cap)");
  return PASS;
}

/**
 * Applies an inbound v5 Topic Alias (MQTT 5 §3.3.2.3.4) after checkPublish passed: a topic with an
 * alias (re)defines the mapping; an empty topic takes the mapped one (written into `packet.topic`),
 * or, without a mapping, is a protocol error (D4). `aliases` is the connection's own table.
 */
export function applyTopicAlias(packet: IPublishPacket, aliases: Map<number, string>): Verdict {
  const alias = packet.properties?.topicAlias;
  if (alias === undefined) return PASS;
  if (packet.topic.length > 0) {
    aliases.set(alias, packet.topic);
    return PASS;
  }
  const topic = aliases.get(alias);
  if (topic === undefined) return reject(5, RC.PROTOCOL_ERROR, `topic alias ${alias} has no mapping`);
  packet.topic = topic;
  return PASS;
}

const SHARE = "$share/";

/** `$share/<name>/<filter>`: name non-empty without `+ #` (MQTT-4.8.2-2), filter valid (MQTT-4.8.2-1). */
function validShared(f: string, rules: TopicRules): boolean {
  const slash = f.indexOf("/", SHARE.length);
  if (slash <= SHARE.length) return false; // `$share/ab` (no filter) or `$share//x` (empty name)
  for (let i = SHARE.length; i < slash; i++) {
    const c = f.charCodeAt(i);
    if (c === 0x2b || c === 0x23) return false;
  }
  return slash + 1 < f.length && rules.validFilter(f.slice(slash + 1));
}

/** A filter is valid as a whole (caps included) and, when shared, by the sharing rules. */
function validFilter(f: string, rules: TopicRules): boolean {
  return rules.validFilter(f) && (!f.startsWith(SHARE) || validShared(f, rules));
}

/**
 * Semantic checks of a parsed SUBSCRIBE. Packet-level failures return a verdict: no filters (E1:
 * 3.1.1 MQTT-3.8.3-3, 5 MQTT-3.8.3-2) → 0x82; packet id 0 → 0x82; Subscription Identifier 0 → 0x82
 * (5 §3.8.2.1.2); QoS 3 → 0x81, Retain Handling 3 → 0x82 (E3, also caught on the raw bytes); No Local
 * on a `$share/` filter → 0x82 (E4: MQTT-3.8.3-4).
 * Invalid filters (E2, E4) — policy: under 3.1.1 close the connection (what mosquitto does); under 5
 * answer that filter with SUBACK 0x8F and go on. `failures[i]` is set to 0 for a filter that passed
 * (the caller decides what to grant) or to its SUBACK failure code; `failures.length` becomes the
 * number of filters.
 */
export function checkSubscribe(packet: ISubscribePacket, level: ProtocolLevel, rules: TopicRules, failures: number[]): Verdict {
  const subs = packet.subscriptions;
  if (subs.length === 0) return reject(level, RC.PROTOCOL_ERROR, "SUBSCRIBE without topic filters");
  if (!packet.messageId) return reject(level, RC.PROTOCOL_ERROR, "SUBSCRIBE with packet identifier 0");
  if (level === 5 && packet.properties?.subscriptionIdentifier === 0) return reject(level, RC.PROTOCOL_ERROR, "subscription identifier 0");
  failures.length = subs.length;
  for (let i = 0; i < subs.length; i++) {
    const s = subs[i]!;
    if (s.qos > 2) return reject(level, RC.MALFORMED_PACKET, "subscription QoS 3");
    if ((s.rh ?? 0) > 2) return reject(level, RC.PROTOCOL_ERROR, "retain handling 3");
    if (s.nl && level === 5 && s.topic.startsWith(SHARE)) return reject(level, RC.PROTOCOL_ERROR, "no local on a shared subscription");
    if (validFilter(s.topic, rules)) {
      failures[i] = 0;
    } else if (level === 5) {
      failures[i] = RC.TOPIC_FILTER_INVALID;
    } else {
      return reject(level, RC.TOPIC_FILTER_INVALID, "invalid topic filter (misplaced wildcard, control character, or over the length or level cap)");
    }
  }
  return PASS;
}

/**
 * Semantic checks of a parsed UNSUBSCRIBE: at least one filter (E1: MQTT-3.10.3-2) and packet id ≠ 0
 * → else 0x82; invalid filters as in checkSubscribe (3.1.1 close; 5 UNSUBACK 0x8F in `failures`).
 */
export function checkUnsubscribe(packet: IUnsubscribePacket, level: ProtocolLevel, rules: TopicRules, failures: number[]): Verdict {
  const filters = packet.unsubscriptions;
  if (filters.length === 0) return reject(level, RC.PROTOCOL_ERROR, "UNSUBSCRIBE without topic filters");
  if (!packet.messageId) return reject(level, RC.PROTOCOL_ERROR, "UNSUBSCRIBE with packet identifier 0");
  failures.length = filters.length;
  for (let i = 0; i < filters.length; i++) {
    if (validFilter(filters[i]!, rules)) {
      failures[i] = 0;
    } else if (level === 5) {
      failures[i] = RC.TOPIC_FILTER_INVALID;
    } else {
      return reject(level, RC.TOPIC_FILTER_INVALID, "invalid topic filter (misplaced wildcard, control character, or over the length or level cap)");
    }
  }
  return PASS;
}

/**
 * Every check above for one parsed packet from a client, by type. CONNECT still needs
 * checkConnectRaw on its bytes first. `failures` receives SUBSCRIBE/UNSUBSCRIBE per-filter codes.
 */
export function checkPacket(packet: Packet, level: ProtocolLevel, rules: TopicRules, limits: RuleLimits, failures: number[]): Verdict {
  switch (packet.cmd) {
    case "connect":
      return checkConnect(packet, rules, limits);
    case "publish":
      return checkPublish(packet, level, rules, limits);
    case "subscribe":
      return checkSubscribe(packet, level, rules, failures);
    case "unsubscribe":
      return checkUnsubscribe(packet, level, rules, failures);
    case "puback":
    case "pubrec":
    case "pubrel":
    case "pubcomp":
      // Packet identifiers are non-zero (3.1.1 MQTT-2.3.1-1, 5 MQTT-2.2.1-3).
      if (!packet.messageId) return reject(level, RC.PROTOCOL_ERROR, `${packet.cmd} with packet identifier 0`);
      return PASS;
    default:
      return PASS;
  }
}

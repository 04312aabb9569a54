// Encoding outbound PUBLISH packets without per-subscriber work where possible.
// The common case (no v5 properties that differ per subscriber) is encoded once per message and
// protocol family and shared by every QoS 0 delivery; QoS 1/2 deliveries copy that template and
// patch the packet identifier in place (it sits right after the topic: MQTT-3.3.2). Everything else
// goes through mqtt-packet's generator.
import type mqtt from "mqtt-packet";
import { generatePacket } from "./mqtt-generate.js";
import type { PublishProperties, QoS } from "../contracts.js";

/** A message as routed by the broker: immutable once routed; caches its encodings. */
export interface RoutedMessage {
  topic: string;
  payload: Buffer;
  qos: QoS;
  retain: boolean;
  properties?: PublishProperties;
  /** Monotonic ms after which the message must not be delivered (v5 Message Expiry). */
  expiresAt?: number;
  /** Session (or local client) that published it, for No Local. */
  origin?: unknown;
  /** Cached encodings: index = (v5 ? 4 : 0) + (retain ? 2 : 0) + (QoS > 0 ? 1 : 0). */
  enc?: Array<Buffer | undefined>;
}

export interface PublishOpts {
  qos: QoS;
  retain: boolean;
  dup: boolean;
  messageId: number;
  protocolVersion: 3 | 4 | 5;
  subscriptionIds?: number[];
  /** Outbound topic alias; `aliasOnly` sends an empty topic (alias already known to the client). */
  topicAlias?: number;
  aliasOnly?: boolean;
  now: number;
}

/** Bytes of a Variable Byte Integer (MQTT 5 §1.5.5) holding `n`; ack-encode.ts uses it too. */
export function vbiLength(n: number): number {
  return n < 128 ? 1 : n < 16384 ? 2 : n < 2097152 ? 3 : 4;
}

/** Writes `n` as a Variable Byte Integer at `at`; returns the offset after it. */
export function writeVbi(buf: Buffer, at: number, n: number): number {
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    buf[at++] = byte;
  } while (n > 0);
  return at;
}

/** The PUBLISH properties to forward, with Message Expiry set to what is left (MQTT-3.3.2-6). */
export function forwardedProperties(m: RoutedMessage, now: number): mqtt.IPublishPacket["properties"] | undefined {
  const p = m.properties;
  if (!p && m.expiresAt === undefined) return undefined;
  const out: NonNullable<mqtt.IPublishPacket["properties"]> = {};
  if (!p) {
    out.messageExpiryInterval = Math.max(1, Math.ceil((m.expiresAt! - now) / 1000));
    return out;
  }
  if (p.payloadFormatIndicator !== undefined) out.payloadFormatIndicator = p.payloadFormatIndicator;
  if (p.contentType !== undefined) out.contentType = p.contentType;
  if (p.responseTopic !== undefined) out.responseTopic = p.responseTopic;
  if (p.correlationData !== undefined) out.correlationData = p.correlationData;
  if (p.userProperties !== undefined) out.userProperties = p.userProperties;
  if (m.expiresAt !== undefined) out.messageExpiryInterval = Math.max(1, Math.ceil((m.expiresAt - now) / 1000));
  return out;
}

function encodeSimple(m: RoutedMessage, v5: boolean, retain: boolean, withId: boolean): Buffer {
  const topicLen = Buffer.byteLength(m.topic);
  // Variable header: topic (2 + n), packet id (QoS > 0 only: 2, filled per delivery), v5 property length (1: zero).
  const remaining = 2 + topicLen + (withId ? 2 : 0) + (v5 ? 1 : 0) + m.payload.length;
  const buf = Buffer.allocUnsafe(1 + vbiLength(remaining) + remaining);
  buf[0] = 0x30 | (retain ? 1 : 0);
  let o = writeVbi(buf, 1, remaining);
  buf.writeUInt16BE(topicLen, o);
  o += 2;
  o += buf.write(m.topic, o);
  if (withId) {
    buf.writeUInt16BE(0, o);
    o += 2;
  }
  if (v5) buf[o++] = 0;
  m.payload.copy(buf, o);
  return buf;
}

/**
 * Encodes one delivery. Returns a Buffer that may be shared (QoS 0): callers must not modify it.
 */
export function encodePublish(m: RoutedMessage, o: PublishOpts): Buffer {
  const v5 = o.protocolVersion === 5;
  const simple =
    (!v5 || (m.properties === undefined && m.expiresAt === undefined)) &&
    !o.subscriptionIds?.length &&
    o.topicAlias === undefined;
  if (simple) {
    const withId = o.qos > 0;
    const idx = (v5 ? 4 : 0) + (o.retain ? 2 : 0) + (withId ? 1 : 0);
    m.enc ??= [];
    let tpl = m.enc[idx];
    if (!tpl) {
      tpl = encodeSimple(m, v5, o.retain, withId);
      m.enc[idx] = tpl;
    }
    if (o.qos === 0) return tpl;
    // QoS 1/2 template: set QoS (and DUP) bits and the packet id in a private copy.
    const out = Buffer.from(tpl);
    out[0] = 0x30 | (o.dup ? 0x08 : 0) | (o.qos << 1) | (o.retain ? 1 : 0);
    const topicLen = Buffer.byteLength(m.topic);
    const remaining = 2 + topicLen + 2 + (v5 ? 1 : 0) + m.payload.length;
    out.writeUInt16BE(o.messageId, 1 + vbiLength(remaining) + 2 + topicLen);
    return out;
  }
  const properties = v5 ? (forwardedProperties(m, o.now) ?? {}) : undefined;
  if (properties) {
    if (o.subscriptionIds?.length) {
      properties.subscriptionIdentifier = o.subscriptionIds.length === 1 ? o.subscriptionIds[0]! : o.subscriptionIds;
    }
    if (o.topicAlias !== undefined) properties.topicAlias = o.topicAlias;
  }
  const packet: mqtt.IPublishPacket = {
    cmd: "publish",
    topic: o.aliasOnly ? "" : m.topic,
    payload: m.payload,
    qos: o.qos,
    retain: o.retain,
    dup: o.dup,
    messageId: o.qos > 0 ? o.messageId : undefined,
    properties,
  };
  return generatePacket(packet, { protocolVersion: o.protocolVersion });
}

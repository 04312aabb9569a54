// Fast-path decoders of SUBSCRIBE (MQTT 5 §3.8; 3.1.1 §3.8) and UNSUBSCRIBE (MQTT 5 §3.10; 3.1.1
// §3.10). mqtt-packet's parser took ~4.4 µs for a one-filter v5 SUBSCRIBE, on every handshake of a
// subscribing client; these build the same objects mqtt-packet builds (same keys in the same order:
// test/broker/parse-subscribe.test.ts compares them on random packets) in one pass.
//
// Decoded here: fixed header 0x82 / 0xA2, a packet identifier, the v5 property block, then filters
// (with, for SUBSCRIBE, an options byte each) up to the exact end of the packet. mqtt-packet's
// "bridge mode" options for 3.1.1 (no local / retain as published forced on) are not: the caller
// falls back. Anything not plainly well-formed throws UNUSUAL and mqtt-packet decides, so rejections
// (options with reserved bits, QoS 3, Retain Handling 3: checklist E3) are exactly as before.
// A packet without filters decodes with an empty list, as mqtt-packet does; packet-rules.ts
// checkSubscribe / checkUnsubscribe refuse it (MQTT-3.8.3-3 / MQTT-3.10.3-2; checklist E1).
import type { ISubscribePacket, IUnsubscribePacket } from "mqtt-packet";
import { Reader, UNUSUAL } from "./parse-reader.js";

// Subscription Options (MQTT 5 §3.8.3.1, figure 3-21).
const QOS_MASK = 0x03;
const NO_LOCAL = 0x04;
const RETAIN_AS_PUBLISHED = 0x08;
const RETAIN_HANDLING_SHIFT = 4;
const V5_RESERVED = 0xc0; // bits 6-7 (MQTT-3.8.3-5)
const V3_RESERVED = 0xfc; // 3.1.1: bits 2-7 (MQTT-3-8.3-4)

interface Subscription {
  topic: string;
  qos: number;
  nl?: boolean;
  rap?: boolean;
  rh?: number;
}

/**
 * Decodes a whole framed SUBSCRIBE (fixed header `h` bytes long) for a connection at protocol
 * `level`. Throws UNUSUAL for the fallback.
 */
export function decodeSubscribe(buf: Buffer, h: number, level: number): ISubscribePacket {
  // MQTT-3.8.1-1: flags 0b0010. The framer refuses others; mqtt-packet too.
  if (buf[0] !== 0x82) throw UNUSUAL;
  const end = buf.length;
  const r = new Reader(buf, h, end);
  // §3.8.2 Variable Header: Packet Identifier, then (v5) SUBSCRIBE Properties.
  const messageId = r.u16();
  const properties = level === 5 ? r.properties() : undefined;
  // §3.8.3 Payload: Topic Filter + Subscription Options, repeated to the end of the packet.
  const subscriptions: Subscription[] = [];
  while (r.pos < end) {
    const topic = r.str();
    const o = r.u8();
    const qos = o & QOS_MASK;
    if (qos === 3) throw UNUSUAL;
    if (level === 5) {
      const rh = o >> RETAIN_HANDLING_SHIFT; // bits 4-5 once bits 6-7 are known to be 0
      if (o & V5_RESERVED || rh === 3) throw UNUSUAL;
      subscriptions.push({ topic, qos, nl: (o & NO_LOCAL) !== 0, rap: (o & RETAIN_AS_PUBLISHED) !== 0, rh });
    } else {
      if (o & V3_RESERVED) throw UNUSUAL;
      subscriptions.push({ topic, qos });
    }
  }
  // Keys in mqtt-packet's order: its Packet fields, then what _parseSubscribe sets.
  const p: Record<string, unknown> = {
    cmd: "subscribe",
    retain: false,
    qos: 1,
    dup: false,
    length: end - h,
    topic: null,
    payload: null,
    subscriptions,
    messageId,
  };
  if (properties !== undefined) p.properties = properties;
  return p as unknown as ISubscribePacket;
}

/** Decodes a whole framed UNSUBSCRIBE, like decodeSubscribe. */
export function decodeUnsubscribe(buf: Buffer, h: number, level: number): IUnsubscribePacket {
  // MQTT-3.10.1-1: flags 0b0010.
  if (buf[0] !== 0xa2) throw UNUSUAL;
  const end = buf.length;
  const r = new Reader(buf, h, end);
  // §3.10.2 Variable Header: Packet Identifier, then (v5) UNSUBSCRIBE Properties.
  const messageId = r.u16();
  const properties = level === 5 ? r.properties() : undefined;
  // §3.10.3 Payload: Topic Filters to the end of the packet.
  const unsubscriptions: string[] = [];
  while (r.pos < end) unsubscriptions.push(r.str());
  const p: Record<string, unknown> = {
    cmd: "unsubscribe",
    retain: false,
    qos: 1,
    dup: false,
    length: end - h,
    topic: null,
    payload: null,
    unsubscriptions,
    messageId,
  };
  if (properties !== undefined) p.properties = properties;
  return p as unknown as IUnsubscribePacket;
}

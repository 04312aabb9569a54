// Byte-level helpers for the benchmark client: packets encoded once with mqtt-packet's `generate`,
// offsets inside an encoded PUBLISH (to patch packet id and payload in place), the MQTT 5 property
// walker for CONNACK/SUBACK, and the bit sets used for QoS 1 loss accounting.
import { generate } from "mqtt-packet";
import type { Packet } from "mqtt-packet";

export type Proto = 4 | 5;
export const PAYLOAD_BYTES = 64;
const KEEPALIVE_S = 300; // longer than any scenario, so no PINGREQ traffic is needed
const MAX_BITMAP_BYTES = 1 << 24; // 134M sequence numbers: bounds memory if a run goes wild

/** Growable bit set of sequence numbers (QoS 1 loss accounting). */
export interface Bitmap {
  bits: Uint8Array;
}
export function newBitmap(): Bitmap {
  return { bits: new Uint8Array(1 << 15) };
}
/** Sets bit `n`; returns true when it was not set before. */
export function bitmapSet(b: Bitmap, n: number): boolean {
  const byte = n >>> 3;
  if (byte >= b.bits.length) {
    if (byte >= MAX_BITMAP_BYTES) return false;
    let size = b.bits.length * 2;
    while (size <= byte) size *= 2;
    const grown = new Uint8Array(Math.min(size, MAX_BITMAP_BYTES));
    grown.set(b.bits);
    b.bits = grown;
  }
  const mask = 1 << (n & 7);
  if (b.bits[byte]! & mask) return false;
  b.bits[byte]! |= mask;
  return true;
}
/** Number of bits set in `a` but not in `b` (acknowledged but never delivered). */
export function countMissing(a: Uint8Array, b: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < a.length; i++) {
    let x = a[i]! & ~(i < b.length ? b[i]! : 0) & 0xff;
    while (x) {
      x &= x - 1;
      n++;
    }
  }
  return n;
}

/** `persistent`: a session that outlives the connection (v3 Clean Session 0; v5 Clean Start 0 + 1 h expiry). */
export function encodeConnect(clientId: string, proto: Proto, persistent = false): Buffer {
  return generate({
    cmd: "connect",
    clientId,
    protocolVersion: proto,
    protocolId: "MQTT",
    clean: !persistent,
    keepalive: KEEPALIVE_S,
    // v5 Receive Maximum (MQTT 5 §3.1.2.11.3): let the broker push up to 65535 unacknowledged QoS 1 deliveries
    ...(proto === 5 ? { properties: { receiveMaximum: 65535, ...(persistent ? { sessionExpiryInterval: 3600 } : {}) } } : {}),
  });
}

export function encodeSubscribe(topic: string, qos: 0 | 1, messageId: number, proto: Proto): Buffer {
  return generate({ cmd: "subscribe", messageId, subscriptions: [{ topic, qos }] }, { protocolVersion: proto });
}

export function encodePublish(
  topic: string,
  payload: Buffer,
  qos: 0 | 1,
  retain: boolean,
  messageId: number,
  proto: Proto,
): Buffer {
  const pkt: Packet = { cmd: "publish", topic, payload, qos, retain, dup: false };
  if (qos > 0) pkt.messageId = messageId;
  return generate(pkt, { protocolVersion: proto });
}

/** Offsets of the packet id and payload inside an encoded PUBLISH (no properties). */
export function publishLayout(buf: Buffer, proto: Proto): { pidOff: number; payOff: number } {
  let i = 1;
  while (buf[i]! & 0x80) i++;
  const body = i + 1;
  const topicLen = buf.readUInt16BE(body);
  const pidOff = body + 2 + topicLen;
  const qos = (buf[0]! >> 1) & 3;
  const afterPid = qos > 0 ? pidOff + 2 : pidOff;
  return { pidOff, payOff: afterPid + (proto === 5 ? 1 : 0) };
}

// MQTT 5 §2.2.2.2: property identifier → value encoding, needed to walk a property block.
const PROP_SIZE = new Map<number, "b" | "u16" | "u32" | "var" | "str" | "pair">([
  ...[0x01, 0x17, 0x19, 0x24, 0x25, 0x28, 0x29, 0x2a].map((id) => [id, "b"] as const),
  ...[0x13, 0x21, 0x22, 0x23].map((id) => [id, "u16"] as const),
  ...[0x02, 0x11, 0x18, 0x27].map((id) => [id, "u32"] as const),
  [0x0b, "var"] as const,
  ...[0x03, 0x08, 0x09, 0x12, 0x15, 0x16, 0x1a, 0x1c, 0x1f].map((id) => [id, "str"] as const),
  [0x26, "pair"] as const,
]);

export function readVarint(buf: Buffer, p: number): [number, number] {
  let v = 0;
  let mul = 1;
  for (let i = 0; i < 4; i++) {
    const b = buf[p++]!;
    v += (b & 0x7f) * mul;
    if ((b & 0x80) === 0) return [v, p];
    mul *= 128;
  }
  throw new Error("malformed variable byte integer");
}

/** Walks a v5 property block at `p`; returns the Receive Maximum (or `dflt`) and the offset after it. */
export function walkProps(buf: Buffer, p: number, dflt: number): [number, number] {
  const [len, start] = readVarint(buf, p);
  const end = start + len;
  let receiveMax = dflt;
  for (let q = start; q < end; ) {
    const id = buf[q++]!;
    const kind = PROP_SIZE.get(id);
    if (kind === "b") q += 1;
    else if (kind === "u16") {
      if (id === 0x21) receiveMax = buf.readUInt16BE(q);
      q += 2;
    } else if (kind === "u32") q += 4;
    else if (kind === "var") q = readVarint(buf, q)[1];
    else if (kind === "str") q += 2 + buf.readUInt16BE(q);
    else if (kind === "pair") {
      q += 2 + buf.readUInt16BE(q);
      q += 2 + buf.readUInt16BE(q);
    } else throw new Error(`unknown property 0x${id.toString(16)}`);
  }
  return [receiveMax, end];
}

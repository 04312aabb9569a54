// The second gate: walks a whole framed packet, finds every UTF-8 string field and checks it on the
// RAW bytes, before mqtt-packet decodes it. mqtt-packet decodes with Buffer#toString, which turns
// invalid UTF-8 (surrogates, overlongs, truncations, > U+10FFFF) into U+FFFD; that cannot be
// detected afterwards. Rules: MQTT-1.5.3-1/-2 (3.1.1), MQTT-1.5.4-1/-2 (5), checklist B1/B2.
//
// On the way it also checks the v5 property blocks, which mqtt-packet reads without bounds:
// - a property length that overruns the packet (A11; mqtt-packet PR #162), property values that
//   overrun their block, unknown property ids, ids not allowed in this packet (MQTT 5 §2.2.2.2:
//   malformed), duplicates of single-use properties (protocol error), byte properties other than
//   0/1 (protocol error: mqtt-packet turns them into booleans);
// - the number of User Properties, against a cap (D12; CVE-2021-41039: mqtt-packet builds an object
//   per property, so 100k of them cost real time; this walk rejects them first);
// - trailing bytes after the last field of CONNECT, v5 acks, DISCONNECT and AUTH (malformed);
// - SUBSCRIBE option bytes: reserved bits, QoS 3, Retain Handling 3 (E3; 3.1.1 MQTT-3.8.3-4,
//   5 MQTT-3.8.3-5), so the verdict does not depend on mqtt-packet's checks.
// Binary fields (password, will payload, correlation/authentication data, PUBLISH payload) are
// skipped, not checked. Allocation: none for ASCII strings; non-ASCII ones go through isUtf8 on a
// subarray view.
import { isUtf8 } from "node:buffer";
import type { ProtocolLevel } from "./framing.js";
import { type ProtocolFault, RC } from "./reason-codes.js";

// Where a property may appear, as a bit per packet context (MQTT 5 §2.2.2.2 table).
const CONNECT = 1;
const WILL = 2;
const PUBLISH = 4;
const SUBSCRIBE = 8;
const UNSUBSCRIBE = 16;
const ACK = 32; // PUBACK, PUBREC, PUBREL, PUBCOMP
const DISCONNECT = 64;
const AUTH = 128;

// Property value encodings.
const T_BYTE = 1;
const T_U16 = 2;
const T_U32 = 3;
const T_VBI = 4;
const T_STRING = 5;
const T_PAIR = 6;
const T_BINARY = 7;

const USER_PROPERTY = 38;

/** [id, type, contexts]. Server-only properties (CONNACK/SUBACK) are known but allowed nowhere here. */
const PROPERTY_TABLE: readonly (readonly [number, number, number])[] = [
  [1, T_BYTE, WILL | PUBLISH], // Payload Format Indicator
  [2, T_U32, WILL | PUBLISH], // Message Expiry Interval
  [3, T_STRING, WILL | PUBLISH], // Content Type
  [8, T_STRING, WILL | PUBLISH], // Response Topic
  [9, T_BINARY, WILL | PUBLISH], // Correlation Data
  [11, T_VBI, PUBLISH | SUBSCRIBE], // Subscription Identifier (from a client in PUBLISH: D11, packet-rules)
  [17, T_U32, CONNECT | DISCONNECT], // Session Expiry Interval
  [18, T_STRING, 0], // Assigned Client Identifier (CONNACK)
  [19, T_U16, 0], // Server Keep Alive (CONNACK)
  [21, T_STRING, CONNECT | AUTH], // Authentication Method
  [22, T_BINARY, CONNECT | AUTH], // Authentication Data
  [23, T_BYTE, CONNECT], // Request Problem Information
  [24, T_U32, WILL], // Will Delay Interval
  [25, T_BYTE, CONNECT], // Request Response Information
  [26, T_STRING, 0], // Response Information (CONNACK)
  [28, T_STRING, DISCONNECT], // Server Reference
  [31, T_STRING, ACK | DISCONNECT | AUTH], // Reason String
  [33, T_U16, CONNECT], // Receive Maximum
  [34, T_U16, CONNECT], // Topic Alias Maximum
  [35, T_U16, PUBLISH], // Topic Alias
  [36, T_BYTE, 0], // Maximum QoS (CONNACK)
  [37, T_BYTE, 0], // Retain Available (CONNACK)
  [USER_PROPERTY, T_PAIR, 0xff], // User Property: everywhere, repeatable
  [39, T_U32, CONNECT], // Maximum Packet Size
  [40, T_BYTE, 0], // Wildcard Subscription Available (CONNACK)
  [41, T_BYTE, 0], // Subscription Identifier Available (CONNACK)
  [42, T_BYTE, 0], // Shared Subscription Available (CONNACK)
];

const PROP_TYPE = new Uint8Array(43);
const PROP_CONTEXTS = new Uint8Array(43);
for (const [id, type, ctx] of PROPERTY_TABLE) {
  PROP_TYPE[id] = type;
  PROP_CONTEXTS[id] = ctx;
}

/** Thrown inside the walk, caught in checkWireStrings; never escapes this module. */
class WireFault implements ProtocolFault {
  readonly reason: number;
  readonly message: string;
  constructor(reason: number, message: string) {
    this.reason = reason;
    this.message = message;
  }
}

function malformed(message: string): WireFault {
  return new WireFault(RC.MALFORMED_PACKET, message);
}

/** Per-call state: the user-property budget and the last decoded VBI. */
interface Walk {
  userPropsLeft: number;
  vbi: number;
}

/** Checks the string at `pos` (2-byte length + bytes) and returns the position after it. */
function str(buf: Buffer, pos: number, end: number, what: string): number {
  if (pos + 2 > end) throw malformed(`${what}: length field runs past the packet`);
  const s = pos + 2;
  const e = s + ((buf[pos]! << 8) | buf[pos + 1]!);
  if (e > end) throw malformed(`${what}: string runs past the packet`);
  let ascii = true;
  for (let i = s; i < e; i++) {
    const c = buf[i]!;
    // 0x00 never occurs inside a multi-byte UTF-8 sequence, so a zero byte is U+0000.
    if (c === 0) throw malformed(`${what} contains U+0000`);
    if (c >= 0x80) ascii = false;
  }
  if (!ascii && !isUtf8(buf.subarray(s, e))) throw malformed(`${what} is not well-formed UTF-8`);
  return e;
}

/** Skips binary data (2-byte length + bytes). */
function bin(buf: Buffer, pos: number, end: number, what: string): number {
  if (pos + 2 > end) throw malformed(`${what}: length field runs past the packet`);
  const e = pos + 2 + ((buf[pos]! << 8) | buf[pos + 1]!);
  if (e > end) throw malformed(`${what}: data runs past the packet`);
  return e;
}

function fixed(pos: number, n: number, end: number, what: string): number {
  if (pos + n > end) throw malformed(`${what} runs past the packet`);
  return pos + n;
}

/** Decodes a VBI (≤ 4 bytes, minimal: MQTT-1.5.5-1) into w.vbi; returns the position after it. */
function vbi(buf: Buffer, pos: number, end: number, w: Walk, what: string): number {
  let value = 0;
  let mul = 1;
  for (let i = 0; i < 4; i++) {
    if (pos + i >= end) throw malformed(`${what} runs past the packet`);
    const b = buf[pos + i]!;
    value += (b & 0x7f) * mul;
    if ((b & 0x80) === 0) {
      if (i > 0 && b === 0) throw malformed(`${what}: non-minimal variable byte integer`);
      w.vbi = value;
      return pos + i + 1;
    }
    mul *= 128;
  }
  throw malformed(`${what}: variable byte integer longer than 4 bytes`);
}

/** Walks one v5 property block (property length + properties) allowed in `ctx`. */
function props(buf: Buffer, pos: number, end: number, ctx: number, w: Walk): number {
  pos = vbi(buf, pos, end, w, "property length");
  const blockEnd = pos + w.vbi;
  if (blockEnd > end) throw malformed("property length runs past the packet"); // A11
  let seenLo = 0; // ids 0..31
  let seenHi = 0; // ids 32..63
  while (pos < blockEnd) {
    const id = buf[pos++]!;
    // Identifiers are VBIs, but every defined one is < 128: anything else is unknown.
    const type = id < PROP_TYPE.length ? PROP_TYPE[id]! : 0;
    if (type === 0) throw malformed(`unknown property identifier ${id}`);
    if ((PROP_CONTEXTS[id]! & ctx) === 0) throw malformed(`property ${id} is not allowed in this packet`);
    if (id === USER_PROPERTY) {
      if (--w.userPropsLeft < 0) throw new WireFault(RC.QUOTA_EXCEEDED, "too many user properties");
    } else {
      const bit = 1 << (id & 31);
      if (id < 32) {
        if (seenLo & bit) throw new WireFault(RC.PROTOCOL_ERROR, `property ${id} appears more than once`);
        seenLo |= bit;
      } else {
        if (seenHi & bit) throw new WireFault(RC.PROTOCOL_ERROR, `property ${id} appears more than once`);
        seenHi |= bit;
      }
    }
    switch (type) {
      case T_BYTE: {
        const at = pos;
        pos = fixed(pos, 1, blockEnd, `property ${id}`);
        if (buf[at]! > 1) throw new WireFault(RC.PROTOCOL_ERROR, `property ${id} must be 0 or 1`);
        break;
      }
      case T_U16:
        pos = fixed(pos, 2, blockEnd, `property ${id}`);
        break;
      case T_U32:
        pos = fixed(pos, 4, blockEnd, `property ${id}`);
        break;
      case T_VBI:
        pos = vbi(buf, pos, blockEnd, w, `property ${id}`);
        break;
      case T_STRING:
        pos = str(buf, pos, blockEnd, `property ${id}`);
        break;
      case T_PAIR:
        pos = str(buf, pos, blockEnd, "user property name");
        pos = str(buf, pos, blockEnd, "user property value");
        break;
      default:
        pos = bin(buf, pos, blockEnd, `property ${id}`);
        break;
    }
  }
  return blockEnd;
}

function connect(buf: Buffer, pos: number, end: number, w: Walk): void {
  pos = str(buf, pos, end, "protocol name");
  if (pos + 4 > end) throw malformed("CONNECT variable header runs past the packet");
  // The CONNECT carries its own level (bit 7: mqtt-packet's bridge mode). Levels other than 3/4/5
  // are not walked further: packet-rules' checkConnectRaw answers them with CONNACK 0x84/0x01.
  const level = buf[pos]! & 0x7f;
  if (level !== 3 && level !== 4 && level !== 5) return;
  const flags = buf[pos + 1]!;
  pos += 4; // level, flags, keep alive
  if (level === 5) pos = props(buf, pos, end, CONNECT, w);
  pos = str(buf, pos, end, "client identifier");
  if (flags & 0x04) {
    if (level === 5) pos = props(buf, pos, end, WILL, w);
    pos = str(buf, pos, end, "will topic");
    pos = bin(buf, pos, end, "will payload");
  }
  if (flags & 0x80) pos = str(buf, pos, end, "user name");
  if (flags & 0x40) pos = bin(buf, pos, end, "password");
  if (pos !== end) throw malformed("trailing bytes after CONNECT payload");
}

function subscribe(buf: Buffer, pos: number, end: number, level: ProtocolLevel, w: Walk): void {
  pos = fixed(pos, 2, end, "packet identifier");
  if (level === 5) pos = props(buf, pos, end, SUBSCRIBE, w);
  while (pos < end) {
    pos = str(buf, pos, end, "topic filter");
    if (pos >= end) throw malformed("topic filter without subscription options");
    const o = buf[pos++]!;
    if ((o & 0x03) === 0x03) throw malformed("subscription QoS 3");
    if (level === 5) {
      if (o & 0xc0) throw malformed("reserved subscription option bits set");
      if ((o & 0x30) === 0x30) throw new WireFault(RC.PROTOCOL_ERROR, "retain handling 3");
    } else if (o & 0xfc) {
      throw malformed("reserved subscription option bits set");
    }
  }
}

function unsubscribe(buf: Buffer, pos: number, end: number, level: ProtocolLevel, w: Walk): void {
  pos = fixed(pos, 2, end, "packet identifier");
  if (level === 5) pos = props(buf, pos, end, UNSUBSCRIBE, w);
  while (pos < end) pos = str(buf, pos, end, "topic filter");
}

/** v5 packets shaped [prefix bytes][reason code][properties] where the tail is optional by length. */
function reasonAndProps(buf: Buffer, pos: number, end: number, ctx: number, w: Walk): void {
  if (pos < end) pos++; // reason code (its value is checked by mqtt-packet and packet-rules)
  if (pos < end) pos = props(buf, pos, end, ctx, w);
  if (pos !== end) throw malformed("trailing bytes after properties");
}

/**
 * Checks every UTF-8 string (and the v5 property blocks) of one whole framed packet received by
 * the server. `level` is the connection's protocol level (a CONNECT is walked by its own level).
 * Returns undefined when the packet may go on to mqtt-packet, else the fault to close with.
 */
export function checkWireStrings(buf: Buffer, level: ProtocolLevel, maxUserProperties: number): ProtocolFault | undefined {
  let pos = 1;
  let rl = 0;
  let mul = 1;
  for (;;) {
    if (pos >= buf.length || pos > 4) return malformed("bad fixed header");
    const b = buf[pos++]!;
    rl += (b & 0x7f) * mul;
    if ((b & 0x80) === 0) break;
    mul *= 128;
  }
  const end = buf.length;
  if (pos + rl !== end) return malformed("remaining length does not match the packet");
  const w: Walk = { userPropsLeft: maxUserProperties, vbi: 0 };
  try {
    switch (buf[0]! >> 4) {
      case 1:
        connect(buf, pos, end, w);
        break;
      case 3:
        pos = str(buf, pos, end, "topic name");
        if (buf[0]! & 0x06) pos = fixed(pos, 2, end, "packet identifier");
        if (level === 5) props(buf, pos, end, PUBLISH, w);
        break; // the rest is the payload: binary
      case 4:
      case 5:
      case 6:
      case 7:
        if (level === 5) reasonAndProps(buf, fixed(pos, 2, end, "packet identifier"), end, ACK, w);
        break;
      case 8:
        subscribe(buf, pos, end, level, w);
        break;
      case 10:
        unsubscribe(buf, pos, end, level, w);
        break;
      case 14:
        if (level === 5) reasonAndProps(buf, pos, end, DISCONNECT, w);
        break;
      case 15:
        if (level === 5) reasonAndProps(buf, pos, end, AUTH, w);
        break;
      default:
        break; // PINGREQ has no body; other types are refused by the framer
    }
  } catch (e) {
    if (e instanceof WireFault) return e;
    throw e;
  }
  return undefined;
}

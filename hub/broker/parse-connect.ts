// Fast-path decoder of CONNECT (MQTT 5 §3.1; 3.1.1 §3.1; 3.1 uses the 3.1.1 layout with "MQIsdp").
// mqtt-packet's parser took ~12.5 µs and ~3 KB of garbage for a v5 CONNECT (its buffer list copies
// on every read), a large part of a connection handshake. This builds the very object mqtt-packet
// builds (same keys, same order, same value types: test/broker/parse-connect.test.ts compares them
// on random packets) in one pass over the bytes.
//
// Only plain CONNECTs are decoded here: protocol "MQTT" level 4 or 5, or "MQIsdp" level 3, no
// bridge bit, consistent flags, every field inside the packet, nothing after the last field.
// Anything else returns undefined and goes to mqtt-packet, so its errors, and the CONNACK codes the
// broker derives from them (packet-rules.ts checkConnectRaw), stay exactly as before.
import type { IConnectPacket } from "mqtt-packet";
import { type Properties, Reader, UNUSUAL } from "./parse-reader.js";

// Connect Flags (MQTT 5 §3.1.2.3, figure 3-4).
const RESERVED = 0x01;
const CLEAN = 0x02;
const WILL = 0x04;
const WILL_QOS_SHIFT = 3;
const WILL_RETAIN = 0x20;
const PASSWORD = 0x40;
const USER_NAME = 0x80;

const MQTT = Buffer.from("MQTT", "latin1");
const MQISDP = Buffer.from("MQIsdp", "latin1");

/** The protocol name field (§3.1.2.1) is "MQTT" or, for MQTT 3.1, "MQIsdp"; compared as bytes. */
function protocolName(r: Reader): "MQTT" | "MQIsdp" {
  const n = r.u16();
  const s = r.pos;
  if (s + n > r.end) throw UNUSUAL;
  r.pos = s + n;
  if (n === 4 && r.buf.compare(MQTT, 0, 4, s, s + 4) === 0) return "MQTT";
  if (n === 6 && r.buf.compare(MQISDP, 0, 6, s, s + 6) === 0) return "MQIsdp";
  throw UNUSUAL;
}

/**
 * Decodes a whole framed CONNECT whose fixed header is `h` bytes long (the framer has checked the
 * first byte is 0x10 and the remaining length matches). Throws UNUSUAL for the fallback.
 */
export function decodeConnect(buf: Buffer, h: number): IConnectPacket {
  const end = buf.length;
  const r = new Reader(buf, h, end);
  const protocolId = protocolName(r);
  // §3.1.2.2 Protocol Version. Bit 7 set is mqtt-packet's bridge mode: left to mqtt-packet.
  const level = r.u8();
  if (protocolId === "MQTT" ? level !== 4 && level !== 5 : level !== 3) throw UNUSUAL;
  const flags = r.u8();
  // MQTT-3.1.2-3: the reserved flag is 0. Will QoS and Will Retain only with the Will Flag
  // (MQTT-3.1.2-11/-13/-15), Will QoS not 3 (MQTT-3.1.2-12/-14). mqtt-packet refuses most of these.
  if (flags & RESERVED) throw UNUSUAL;
  const will = (flags & WILL) !== 0;
  const willQos = (flags >> WILL_QOS_SHIFT) & 0x03;
  const willRetain = (flags & WILL_RETAIN) !== 0;
  if (will ? willQos === 3 : willQos !== 0 || willRetain) throw UNUSUAL;
  // §3.1.2.10 Keep Alive; §3.1.2.11 CONNECT Properties (v5 only).
  const keepalive = r.u16();
  const properties = level === 5 ? r.properties() : undefined;
  // §3.1.3 Payload, in this order: Client Identifier, [Will Properties, Will Topic, Will Payload],
  // [User Name], [Password].
  const clientId = r.str();
  let willProperties: Properties | undefined;
  let willTopic = "";
  let willPayload: Buffer | undefined;
  if (will) {
    if (level === 5) willProperties = r.properties();
    willTopic = r.str();
    willPayload = r.bin();
  }
  const username = flags & USER_NAME ? r.str() : undefined;
  const password = flags & PASSWORD ? r.bin() : undefined;
  // mqtt-packet ignores trailing bytes; the string gate refuses them (malformed). Not decoded here.
  if (r.pos !== end) throw UNUSUAL;

  // The object, keys in mqtt-packet's order: its Packet fields, then what _parseConnect sets.
  const p: Record<string, unknown> = {
    cmd: "connect",
    retain: false,
    qos: 0,
    dup: false,
    length: end - h,
    topic: null,
    payload: null,
    protocolId,
    protocolVersion: level,
  };
  if (will) {
    const w: Record<string, unknown> = { retain: willRetain, qos: willQos };
    if (willProperties !== undefined) w.properties = willProperties;
    w.topic = willTopic;
    w.payload = willPayload;
    p.will = w;
  }
  p.clean = (flags & CLEAN) !== 0;
  p.keepalive = keepalive;
  if (properties !== undefined) p.properties = properties;
  p.clientId = clientId;
  if (username !== undefined) p.username = username;
  if (password !== undefined) p.password = password;
  return p as unknown as IConnectPacket;
}

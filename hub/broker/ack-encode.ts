// Direct encoders for the CONNACK and SUBACK/UNSUBACK the broker sends on every handshake.
// mqtt-packet's generic generator takes ~10 µs for a v5 CONNACK with four properties (it walks a
// property table and allocates per field); these write the few fields we actually send into one
// buffer in well under a microsecond, which is what connection handshakes/s is made of.
// Packets with anything else (user properties, reason strings on success...) go to mqtt-packet.
// Layouts: MQTT 5 §3.2 (CONNACK), §3.9 (SUBACK), §3.11 (UNSUBACK); 3.1.1 §3.2, §3.9, §3.11.
import { vbiLength, writeVbi } from "./publish-encode.js";

/** The CONNACK properties the broker sends (MQTT 5 §3.2.2.3). */
export interface ConnackProps {
  sessionExpiryInterval?: number;
  receiveMaximum?: number;
  maximumPacketSize?: number;
  topicAliasMaximum?: number;
  assignedClientIdentifier?: string;
  serverKeepAlive?: number;
  reasonString?: string;
}

// Property identifiers (MQTT 5 §2.2.2.2).
const SESSION_EXPIRY = 0x11;
const ASSIGNED_CLIENT_ID = 0x12;
const SERVER_KEEP_ALIVE = 0x13;
const REASON_STRING = 0x1f;
const RECEIVE_MAXIMUM = 0x21;
const TOPIC_ALIAS_MAXIMUM = 0x22;
const MAXIMUM_PACKET_SIZE = 0x27;

/** Bytes of one UTF-8 string property (identifier, length prefix, bytes), or 0 when absent. */
function strPropLength(s: string | undefined): number {
  return s === undefined ? 0 : 3 + Buffer.byteLength(s);
}

function writeStrProp(buf: Buffer, at: number, id: number, s: string): number {
  buf[at++] = id;
  const n = buf.write(s, at + 2, "utf8");
  buf.writeUInt16BE(n, at);
  return at + 2 + n;
}

/** CONNACK for protocol level 3/4: return code (§3.2.2.3), or level 5: reason code and properties. */
export function encodeConnack(protocolVersion: 3 | 4 | 5, sessionPresent: boolean, code: number, props?: ConnackProps): Buffer {
  if (protocolVersion !== 5) return Buffer.from([0x20, 2, sessionPresent ? 1 : 0, code]);
  const p = props ?? {};
  const propLen =
    (p.sessionExpiryInterval !== undefined ? 5 : 0) +
    (p.receiveMaximum !== undefined ? 3 : 0) +
    (p.maximumPacketSize !== undefined ? 5 : 0) +
    (p.topicAliasMaximum !== undefined ? 3 : 0) +
    (p.serverKeepAlive !== undefined ? 3 : 0) +
    strPropLength(p.assignedClientIdentifier) +
    strPropLength(p.reasonString);
  const remaining = 2 + vbiLength(propLen) + propLen;
  const buf = Buffer.allocUnsafe(1 + vbiLength(remaining) + remaining);
  buf[0] = 0x20;
  let at = writeVbi(buf, 1, remaining);
  buf[at++] = sessionPresent ? 1 : 0;
  buf[at++] = code;
  at = writeVbi(buf, at, propLen);
  // Property order is free (MQTT 5 §2.2.2.2).
  if (p.sessionExpiryInterval !== undefined) {
    buf[at] = SESSION_EXPIRY;
    at = buf.writeUInt32BE(p.sessionExpiryInterval, at + 1);
  }
  if (p.assignedClientIdentifier !== undefined) at = writeStrProp(buf, at, ASSIGNED_CLIENT_ID, p.assignedClientIdentifier);
  if (p.serverKeepAlive !== undefined) {
    buf[at] = SERVER_KEEP_ALIVE;
    at = buf.writeUInt16BE(p.serverKeepAlive, at + 1);
  }
  if (p.reasonString !== undefined) at = writeStrProp(buf, at, REASON_STRING, p.reasonString);
  if (p.receiveMaximum !== undefined) {
    buf[at] = RECEIVE_MAXIMUM;
    at = buf.writeUInt16BE(p.receiveMaximum, at + 1);
  }
  if (p.topicAliasMaximum !== undefined) {
    buf[at] = TOPIC_ALIAS_MAXIMUM;
    at = buf.writeUInt16BE(p.topicAliasMaximum, at + 1);
  }
  if (p.maximumPacketSize !== undefined) {
    buf[at] = MAXIMUM_PACKET_SIZE;
    at = buf.writeUInt32BE(p.maximumPacketSize, at + 1);
  }
  return buf;
}

/**
 * SUBACK (0x90) or UNSUBACK (0xB0) with one reason code per filter. v5 carries an empty property
 * section (§3.9.2.1); a 3.1.1 UNSUBACK has no payload (§3.11.3), so `codes` is ignored there.
 */
export function encodeSubAck(kind: "suback" | "unsuback", protocolVersion: 3 | 4 | 5, messageId: number, codes: readonly number[]): Buffer {
  const v5 = protocolVersion === 5;
  const n = kind === "unsuback" && !v5 ? 0 : codes.length;
  const remaining = 2 + (v5 ? 1 : 0) + n;
  const buf = Buffer.allocUnsafe(1 + vbiLength(remaining) + remaining);
  buf[0] = kind === "suback" ? 0x90 : 0xb0;
  let at = writeVbi(buf, 1, remaining);
  at = buf.writeUInt16BE(messageId, at);
  if (v5) buf[at++] = 0;
  for (let i = 0; i < n; i++) buf[at++] = codes[i]!;
  return buf;
}

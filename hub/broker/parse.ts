// Parses exactly one framed packet and returns the packet or a fault, never throwing and never
// leaving an 'error' event unhandled (aedes #324/#612, GHSA-xxqp: uncaught throws around parse).
// Common packets (PUBLISH, acks, PINGREQ, CONNECT, SUBSCRIBE, UNSUBSCRIBE, DISCONNECT) are decoded directly
// (parse-connect.ts, parse-subscribe.ts); anything unusual goes to mqtt-packet's parser. Call it only
// on bytes that passed the framer and the string walker.
//
// Parser reuse: mqtt-packet's Parser is a stream parser with state (a BufferList, a state counter,
// a read offset `_pos`, the current packet, `settings`). Because it is fed exactly one whole packet
// at a time, after a successful parse its state is back at "expect header" with an empty list, and
// the same instance serves the next packet. After ANY failure (an 'error' event, a throw, or no
// packet at all) the instance is dropped and a fresh one created: mqtt-packet's own recovery
// (`_resetState` at the next parse) does not reset `_pos`, so a parser that failed mid-packet
// misreads the next packet's length (test/broker/parse.test.ts shows it). Failures close the
// connection anyway, so this costs nothing on the normal path.
//
// `settings` (internal, but the same object `parser(opts)` stores) is set before every parse: the
// parser replaces it by the CONNECT packet it last parsed, and it decides whether v5 properties are
// read. One frozen settings object per (level, bridge) keeps this allocation-free.
import { createRequire } from "node:module";
import type { Packet, Parser } from "mqtt-packet";
import type { ProtocolLevel } from "./framing.js";
import { decodeConnect } from "./parse-connect.js";
import { UNUSUAL } from "./parse-reader.js";
import { decodeSubscribe, decodeUnsubscribe } from "./parse-subscribe.js";
import { type ProtocolFault, RC } from "./reason-codes.js";

export interface PacketParser {
  /**
   * Parses one whole framed packet (fixed header included). `level` is the connection's protocol
   * level (for a CONNECT it does not matter: the packet carries its own). `bridge` reproduces
   * mqtt-packet's bridge mode (CONNECT protocol level with bit 7 set) for 3.1.1 SUBSCRIBE options.
   */
  parse(buf: Buffer, level: ProtocolLevel, bridge?: boolean): Packet | ProtocolFault;
}

const require = createRequire(import.meta.url);
type ParserFactory = () => Parser;
let parserFactory: ParserFactory | undefined;

/**
 * A new mqtt-packet stream parser. Its module is loaded by the first packet the fast path leaves to
 * it: with bl, readable-stream and debug it costs ~7 MB of RSS, which a hub whose clients send only
 * what fastParse decodes never needs (issue 3, idle RSS).
 */
function newMqttParser(): Parser {
  parserFactory ??= (require("mqtt-packet/parser.js") as { parser: ParserFactory }).parser;
  return parserFactory();
}

interface ParserInternals {
  settings: unknown;
}

type Settings = Readonly<{ protocolVersion: ProtocolLevel; bridgeMode: boolean }>;

function settings(level: ProtocolLevel, bridgeMode: boolean): Settings {
  return Object.freeze({ protocolVersion: level, bridgeMode });
}

// Index: level * 2 + (bridge ? 1 : 0). Immutable.
const SETTINGS: readonly (Settings | undefined)[] = Object.freeze([
  undefined,
  undefined,
  undefined,
  undefined,
  undefined,
  undefined,
  settings(3, false),
  settings(3, true),
  settings(4, false),
  settings(4, true),
  settings(5, false),
  settings(5, true),
]);

/** True when `parse` returned a fault rather than a packet. */
export function isParseFault(x: Packet | ProtocolFault): x is ProtocolFault {
  return !("cmd" in x);
}

export interface PacketParserOptions {
  /**
   * Decode the common packets without mqtt-packet (default true). Tests turn it off to check that
   * the fast path changes no verdict of the gate.
   */
  fastPath?: boolean;
}

/** One parser for the whole broker (parsing is synchronous); see the header comment for how its state is kept clean. */
export function createPacketParser(opts: PacketParserOptions = {}): PacketParser {
  const useFast = opts.fastPath ?? true;
  let packet: Packet | undefined;
  let error: unknown;
  let hasError = false;
  // Listeners are created once per parser instance, not per packet.
  const onPacket = (p: Packet): void => {
    if (packet === undefined) packet = p;
  };
  const onError = (e: unknown): void => {
    if (!hasError) {
      hasError = true;
      error = e;
    }
  };
  const fresh = (): Parser => {
    const p = newMqttParser();
    p.on("packet", onPacket);
    p.on("error", onError);
    return p;
  };
  // Made at the first packet the fast path does not decode (see newMqttParser).
  let parser: Parser | undefined;

  return {
    parse(buf: Buffer, level: ProtocolLevel, bridge = false): Packet | ProtocolFault {
      if (useFast) {
        const fast = fastParse(buf, level, bridge);
        if (fast !== undefined) return fast;
      }
      packet = undefined;
      error = undefined;
      hasError = false;
      parser ??= fresh();
      (parser as unknown as ParserInternals).settings = SETTINGS[level * 2 + (bridge ? 1 : 0)];
      try {
        parser.parse(buf);
      } catch (e) {
        parser = fresh();
        packet = undefined;
        return { reason: RC.MALFORMED_PACKET, message: `parser threw: ${describe(e)}` };
      }
      if (hasError) {
        parser = fresh();
        packet = undefined;
        return { reason: RC.MALFORMED_PACKET, message: describe(error) };
      }
      const p = packet;
      packet = undefined;
      if (p === undefined) {
        parser = fresh();
        return { reason: RC.MALFORMED_PACKET, message: "incomplete packet" };
      }
      return p;
    },
  };
}

const ACKS = ["", "", "", "", "puback", "pubrec", "pubrel", "pubcomp"] as const;

/**
 * The hot packets, decoded without mqtt-packet: acknowledgements with just a packet id, PINGREQ,
 * and PUBLISH without properties. They are most of a busy broker's traffic, and the generic parser
 * (stream buffer list, debug calls, packet object) was a fifth of the broker's CPU time in the
 * QoS 1 fan-in benchmark. The framer has already checked type, flags and lengths, and the string
 * walker the topic's UTF-8, so only the shape needs reading here. Also the handshake packets:
 * CONNECT, SUBSCRIBE and UNSUBSCRIBE (parse-connect.ts, parse-subscribe.ts), where mqtt-packet was
 * most of the CPU and garbage of a connection handshake. Anything else (v5 properties on PUBLISH,
 * reason codes, other types, bridge mode, whatever those decoders find unusual): `undefined`, and
 * mqtt-packet parses it. Same object shapes as mqtt-packet.
 */
function fastParse(buf: Buffer, level: ProtocolLevel, bridge: boolean): Packet | undefined {
  // Only whole packets: the remaining length must account for exactly the bytes given.
  let rl = 0;
  let mul = 1;
  let h = 1;
  for (;;) {
    if (h >= buf.length || h > 4) return undefined;
    const b = buf[h++]!;
    rl += (b & 0x7f) * mul;
    if ((b & 0x80) === 0) break;
    mul *= 128;
  }
  if (h + rl !== buf.length) return undefined;
  const b0 = buf[0]!;
  const type = b0 >> 4;
  if (type >= 4 && type <= 7) {
    if (buf.length !== 4 || (type === 6 ? b0 !== 0x62 : (b0 & 0x0f) !== 0)) return undefined;
    const messageId = (buf[2]! << 8) | buf[3]!;
    const cmd = ACKS[type];
    const qos = type === 6 ? 1 : 0;
    // MQTT 5 §3.4.2.1: an omitted reason code means 0x00 Success, and mqtt-packet sets it. Two
    // literals rather than adding the key later: one object shape each on this hot path.
    const ack =
      level === 5
        ? { cmd, retain: false, qos, dup: false, length: 2, topic: null, payload: null, messageId, reasonCode: 0 }
        : { cmd, retain: false, qos, dup: false, length: 2, topic: null, payload: null, messageId };
    return ack as unknown as Packet;
  }
  if (type === 12) {
    if (buf.length !== 2 || b0 !== 0xc0) return undefined;
    return { cmd: "pingreq", retain: false, qos: 0, dup: false, length: 0, topic: null, payload: null } as unknown as Packet;
  }
  if (type === 1 || type === 8 || type === 10) return handshakePacket(buf, h, type, level, bridge);
  if (type === 14) return disconnectPacket(buf, h, level);
  if (type !== 3) return undefined;
  const qos = (b0 >> 1) & 3;
  if (qos === 3) return undefined;
  if (h + 2 > buf.length) return undefined;
  const topicLen = (buf[h]! << 8) | buf[h + 1]!;
  let pos = h + 2 + topicLen;
  let messageId: number | undefined;
  if (qos > 0) {
    if (pos + 2 > buf.length) return undefined;
    messageId = (buf[pos]! << 8) | buf[pos + 1]!;
    pos += 2;
  }
  if (level === 5) {
    if (pos >= buf.length || buf[pos] !== 0) return undefined; // properties: the full parser
    pos += 1;
  }
  if (pos > buf.length) return undefined;
  const packet: Record<string, unknown> = {
    cmd: "publish",
    retain: (b0 & 1) === 1,
    qos,
    dup: (b0 & 8) === 8,
    length: buf.length - h,
    topic: buf.toString("utf8", h + 2, h + 2 + topicLen),
    payload: buf.subarray(pos),
  };
  if (messageId !== undefined) packet.messageId = messageId;
  return packet as unknown as Packet;
}

/**
 * DISCONNECT as clients normally send it: empty (3.1/3.1.1, and v5 for reason 0x00, §3.14.2.1) or
 * v5 with reason 0x00 Normal or 0x04 Disconnect with Will Message and no properties. Other reason
 * codes and properties (Session Expiry, reason string) go to mqtt-packet.
 */
function disconnectPacket(buf: Buffer, h: number, level: ProtocolLevel): Packet | undefined {
  if (buf[0] !== 0xe0) return undefined;
  const rl = buf.length - h;
  if (level !== 5) {
    if (rl !== 0) return undefined;
    return { cmd: "disconnect", retain: false, qos: 0, dup: false, length: 0, topic: null, payload: null } as unknown as Packet;
  }
  const reasonCode = rl === 0 ? 0 : buf[h]!;
  if (rl > 2 || (rl === 2 && buf[h + 1] !== 0) || (reasonCode !== 0x00 && reasonCode !== 0x04)) return undefined;
  return { cmd: "disconnect", retain: false, qos: 0, dup: false, length: rl, topic: null, payload: null, reasonCode } as unknown as Packet;
}

/** CONNECT / SUBSCRIBE / UNSUBSCRIBE through their decoders; `undefined` when they find it unusual. */
function handshakePacket(buf: Buffer, h: number, type: number, level: ProtocolLevel, bridge: boolean): Packet | undefined {
  // 3.1.1 bridge mode changes SUBSCRIBE options' meaning in mqtt-packet: its business.
  if (bridge && level < 5 && type !== 1) return undefined;
  try {
    if (type === 1) return decodeConnect(buf, h);
    if (type === 8) return decodeSubscribe(buf, h, level);
    return decodeUnsubscribe(buf, h, level);
  } catch (e) {
    if (e === UNUSUAL) return undefined;
    throw e;
  }
}

/** Parses one packet with a throwaway parser (tests, one-off tools). The broker uses createPacketParser. */
export function parseOne(buf: Buffer, level: ProtocolLevel): Packet | ProtocolFault {
  return createPacketParser().parse(buf, level);
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

// Runs mqtt-packet's parser on exactly one framed packet and returns the packet or a fault, never
// throwing and never leaving an 'error' event unhandled (aedes #324/#612, GHSA-xxqp: uncaught
// throws around parse). Call it only on bytes that passed the framer and the string walker.
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
import mqtt from "mqtt-packet";
import type { Packet, Parser } from "mqtt-packet";
import type { ProtocolLevel } from "./framing.js";
import { type ProtocolFault, RC } from "./reason-codes.js";

export interface PacketParser {
  /**
   * Parses one whole framed packet (fixed header included). `level` is the connection's protocol
   * level (for a CONNECT it does not matter: the packet carries its own). `bridge` reproduces
   * mqtt-packet's bridge mode (CONNECT protocol level with bit 7 set) for 3.1.1 SUBSCRIBE options.
   */
  parse(buf: Buffer, level: ProtocolLevel, bridge?: boolean): Packet | ProtocolFault;
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

/** One parser per connection; see the header comment for how its state is kept clean. */
export function createPacketParser(): PacketParser {
  let packet: Packet | undefined;
  let error: unknown;
  let hasError = false;
  // Listeners are created once per connection, not per packet.
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
    const p = mqtt.parser();
    p.on("packet", onPacket);
    p.on("error", onError);
    return p;
  };
  let parser = fresh();

  return {
    parse(buf: Buffer, level: ProtocolLevel, bridge = false): Packet | ProtocolFault {
      packet = undefined;
      error = undefined;
      hasError = false;
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

/** Parses one packet with a throwaway parser (tests, one-off tools). The broker uses createPacketParser. */
export function parseOne(buf: Buffer, level: ProtocolLevel): Packet | ProtocolFault {
  return createPacketParser().parse(buf, level);
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

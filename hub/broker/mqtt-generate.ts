// mqtt-packet's encoder, loaded on first use. The broker encodes its common packets itself
// (ack-encode.ts, publish-encode.ts templates, CONNACK/SUBACK in connect.ts/inbound.ts); this is for
// the rest (reason strings, v5 properties on a forwarded PUBLISH, server DISCONNECT). Importing
// mqtt-packet's index would also load its stream parser with bl, readable-stream and debug, ~7 MB
// of RSS that an idle hub does not need (issue 3: idle RSS); parse.ts loads the parser lazily too.
import { createRequire } from "node:module";
import type { Packet } from "mqtt-packet";

type Generate = (packet: Packet, opts?: { protocolVersion?: number }) => Buffer;

const require = createRequire(import.meta.url);
let loaded: Generate | undefined;

/** mqtt-packet's `generate` (the same function its index exports), loaded by the first call. */
export function generatePacket(packet: Packet, opts: { protocolVersion: number }): Buffer {
  loaded ??= require("mqtt-packet/generate.js") as Generate;
  return loaded(packet, opts);
}

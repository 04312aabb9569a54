// parseOne / createPacketParser: one whole packet in, a packet or a fault out, never a throw, and a
// reused parser stays clean after every kind of failure.
import mqtt from "mqtt-packet";
import t from "tap";
import type { IDisconnectPacket, IPublishPacket, ISubscribePacket } from "mqtt-packet";
import { createPacketParser, isParseFault, parseOne } from "../../hub/broker/parse.js";
import { RC } from "../../hub/broker/reason-codes.js";

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ""), "hex");
// PUBLISH QoS 0, topic "a", then either payload 00 (v4) or property length 0 + empty payload (v5).
const PUB = hex("30 04 0001 61 00");

t.test("parses one packet per call, by the connection's level", async (t) => {
  const v4 = parseOne(PUB, 4) as IPublishPacket;
  t.equal(v4.cmd, "publish");
  t.same(v4.payload, Buffer.from([0]), "v4: the 00 is payload");
  const v5 = parseOne(PUB, 5) as IPublishPacket;
  t.same(v5.payload, Buffer.alloc(0), "v5: the 00 is the property length");
  t.equal(v5.topic, "a");
});

t.test("malformed input is a fault, not a throw or an unhandled 'error'", async (t) => {
  const rows: [string, Buffer, 3 | 4 | 5][] = [
    ["CONNECT with level 9", hex("10 0d 0004 4d515454 09 02 003c 0001 63"), 4],
    ["SUBSCRIBE with reserved option bits", hex("82 06 0001 0001 61 c0"), 4],
    ["v5 DISCONNECT with an invalid reason code", hex("e0 02 03 00"), 5],
    ["PUBLISH with a topic length past the end", hex("30 03 0009 61"), 4],
    ["packet cut short (header claims more)", hex("30 0a 0001 61"), 4],
    ["empty buffer", Buffer.alloc(0), 4],
  ];
  for (const [name, buf, level] of rows) {
    const r = parseOne(buf, level);
    t.ok(isParseFault(r), name);
    t.match(r, { reason: RC.MALFORMED_PACKET }, name);
  }
});

t.test("a reused parser is clean after errors, incomplete input and level changes", async (t) => {
  const p = createPacketParser();
  const bad = [hex("82 07 0001 00 0001 61 c0"), hex("82 06 0001 0001 61 c0"), hex("30 0a 0001 61"), hex("e0 02 03 ff"), hex("10 0d 0004 4d515454 09 02 003c 0001 63")];
  for (const b of bad) {
    t.ok(isParseFault(p.parse(b, 5)));
    const good = p.parse(PUB, 4) as IPublishPacket;
    t.equal(good.cmd, "publish", "next packet parses");
    t.same(good.payload, Buffer.from([0]));
  }
  // A v5 CONNECT makes mqtt-packet switch its own settings to v5; the level passed in wins.
  const connect5 = hex("10 0e 0004 4d515454 05 02 003c 00 0001 63");
  t.equal((p.parse(connect5, 4) as { cmd: string }).cmd, "connect");
  t.same((p.parse(PUB, 4) as IPublishPacket).payload, Buffer.from([0]), "still v4 when asked for v4");
  const d = p.parse(hex("e0 00"), 5) as IDisconnectPacket;
  t.equal(d.reasonCode, 0);
});

t.test("mqtt-packet 9.0.2 itself misparses after an error (why parse.ts replaces the parser)", async (t) => {
  // Locks the library behaviour this module works around: `_resetState` leaves `_pos` behind.
  const raw = mqtt.parser({ protocolVersion: 5 });
  const seen: string[] = [];
  raw.on("packet", (p) => seen.push(p.cmd));
  raw.on("error", (e: Error) => seen.push(`error: ${e.message}`));
  raw.parse(hex("82 07 0001 00 0001 61 c0"));
  raw.parse(hex("c0 00"));
  raw.parse(hex("c0 00"));
  t.same(seen, ["error: Invalid subscribe topic flag bits, bits 7-6 must be 0"], "the PINGREQs after the error are never parsed");
});

t.test("bridge mode gives 3.1.1 subscriptions the bridge options", async (t) => {
  const sub = hex("82 06 0001 0001 61 01");
  const p = createPacketParser();
  t.same((p.parse(sub, 4, true) as ISubscribePacket).subscriptions, [{ topic: "a", qos: 1, rh: 0, rap: true, nl: true }]);
  t.same((p.parse(sub, 4) as ISubscribePacket).subscriptions, [{ topic: "a", qos: 1 }]);
});

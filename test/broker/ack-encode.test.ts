// The direct CONNACK / SUBACK / UNSUBACK encoders (hub/broker/ack-encode.ts) produce packets that
// decode (with mqtt-packet, as clients do) to the same packet mqtt-packet's generator makes, for
// every combination of the fields the broker sends.
import fc from "fast-check";
import mqtt from "mqtt-packet";
import { isDeepStrictEqual } from "node:util";
import t from "tap";
import { type ConnackProps, encodeConnack, encodeSubAck } from "../../hub/broker/ack-encode.js";

const u16 = fc.integer({ min: 1, max: 65535 });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const propsArb: fc.Arbitrary<ConnackProps> = fc.record(
  {
    sessionExpiryInterval: u32,
    receiveMaximum: u16,
    // mqtt-packet drops the reason string when the packet would exceed this (its client-side reading
    // of the property); the broker announces at least 128 (the schema's minimum), far above a CONNACK.
    maximumPacketSize: fc.integer({ min: 65536, max: 268_435_455 }),
    topicAliasMaximum: fc.integer({ min: 0, max: 65535 }),
    assignedClientIdentifier: fc.string({ maxLength: 40, unit: "grapheme" }),
    serverKeepAlive: fc.integer({ min: 0, max: 65535 }),
    reasonString: fc.string({ maxLength: 300, unit: "grapheme" }),
  },
  { requiredKeys: [] },
);

function parseOne(buf: Buffer, protocolVersion: 3 | 4 | 5): mqtt.Packet {
  const p = mqtt.parser({ protocolVersion });
  let got: mqtt.Packet | undefined;
  p.on("packet", (x) => {
    got = x;
  });
  p.on("error", (e) => {
    throw e;
  });
  p.parse(buf);
  if (!got) throw new Error("no packet parsed");
  return got;
}

t.test("v5 CONNACK: decodes as mqtt-packet's own", async (t) => {
  fc.assert(
    fc.property(fc.boolean(), fc.constantFrom(0, 0x80, 0x85, 0x86, 0x87, 0x8a), propsArb, (present, code, props) => {
      const mine = encodeConnack(5, present, code, props);
      const ref = mqtt.generate({ cmd: "connack", sessionPresent: present, reasonCode: code, properties: props }, { protocolVersion: 5 });
      // Property order is free (MQTT 5 §2.2.2.2) and mqtt-packet follows the object's key order, so
      // compare what a client decodes, and the length.
      if (mine.length !== ref.length) throw new Error(`length differs for ${JSON.stringify(props)}`);
      const back = parseOne(mine, 5);
      const want = parseOne(ref, 5);
      if (!isDeepStrictEqual(back, want)) throw new Error(`decodes differently: ${JSON.stringify(back)} vs ${JSON.stringify(want)}`);
    }),
    { seed: 42, numRuns: 500 },
  );
  t.pass("500 property combinations decode alike");
});

t.test("3.1.1 / 3.1 CONNACK", async (t) => {
  for (const v of [3, 4] as const) {
    for (const rc of [0, 1, 2, 3, 4, 5]) {
      for (const present of [false, true]) {
        const ref = mqtt.generate({ cmd: "connack", sessionPresent: present, returnCode: rc }, { protocolVersion: v });
        t.same(encodeConnack(v, present, rc), ref, `v${v} rc ${rc} present ${present}`);
      }
    }
  }
});

t.test("SUBACK and UNSUBACK at every level", async (t) => {
  fc.assert(
    fc.property(
      fc.constantFrom(3, 4, 5),
      u16,
      fc.array(fc.constantFrom(0, 1, 2, 0x80, 0x87, 0x91, 0x9e), { minLength: 1, maxLength: 200 }),
      (v, id, codes) => {
        const level = v as 3 | 4 | 5;
        const sub = encodeSubAck("suback", level, id, codes);
        const refSub = mqtt.generate(
          level === 5 ? { cmd: "suback", messageId: id, granted: codes, properties: {} } : { cmd: "suback", messageId: id, granted: codes },
          { protocolVersion: level },
        );
        if (!sub.equals(refSub)) throw new Error(`suback v${v} differs: ${sub.toString("hex")} vs ${refSub.toString("hex")}`);
        // UNSUBACK has its own reason codes (MQTT 5 §3.11.3).
        const ucodes = codes.map((c) => (c === 0x80 || c === 0x87 || c === 0x91 ? c : c === 0x9e ? 0x11 : 0));
        const unsub = encodeSubAck("unsuback", level, id, ucodes);
        const back = parseOne(unsub, level) as mqtt.IUnsubackPacket;
        if (back.messageId !== id) throw new Error("unsuback id lost");
        if (level === 5 && JSON.stringify(back.granted) !== JSON.stringify(ucodes)) throw new Error("unsuback codes lost");
        if (level !== 5 && unsub.length !== 4) throw new Error("3.1.1 UNSUBACK must have no payload");
      },
    ),
    { seed: 7, numRuns: 300 },
  );
  t.pass("300 combinations agree");
});

// The SUBSCRIBE/UNSUBSCRIBE fast path (hub/broker/parse-subscribe.ts) must build exactly the packet
// mqtt-packet builds for the connection's protocol level, and leave everything unusual (bad option
// bits, bridge mode, damaged lengths) to mqtt-packet, whose verdict then stands.
import fc from "fast-check";
import mqtt from "mqtt-packet";
import t, { type Test } from "tap";
import type { ProtocolLevel } from "../../hub/broker/framing.js";
import { UNUSUAL } from "../../hub/broker/parse-reader.js";
import { decodeSubscribe, decodeUnsubscribe } from "../../hub/broker/parse-subscribe.js";
import { createPacketParser, isParseFault } from "../../hub/broker/parse.js";
import { pkt, str } from "../support/bytes.js";
import { headerLength, mutateBody, mutationsArb, referenceParse, samePacket, truncateArb } from "../support/packet-reference.js";

/** The fast path's answer: a packet, or undefined where it hands over to mqtt-packet. */
function fast(buf: Buffer, level: ProtocolLevel): mqtt.Packet | undefined {
  try {
    const h = headerLength(buf);
    return buf[0]! >> 4 === 8 ? decodeSubscribe(buf, h, level) : decodeUnsubscribe(buf, h, level);
  } catch (e) {
    if (e === UNUSUAL) return undefined;
    throw e;
  }
}

function agrees(t: Test, buf: Buffer, level: ProtocolLevel, what: string): void {
  const ours = fast(buf, level);
  const ref = referenceParse(buf, level);
  t.ok(ours !== undefined, `${what}: decoded by the fast path`);
  t.ok("packet" in ref && samePacket(ours, ref.packet), `${what}: same packet as mqtt-packet`);
}

t.test("SUBSCRIBE/UNSUBSCRIBE as clients send them take the fast path and decode like mqtt-packet", async (t) => {
  const one = { cmd: "subscribe" as const, messageId: 1, subscriptions: [{ topic: "idle/1", qos: 0 as const }] };
  agrees(t, mqtt.generate(one, { protocolVersion: 5 }), 5, "bench v5");
  agrees(t, mqtt.generate(one, { protocolVersion: 4 }), 4, "bench v4");
  agrees(t, mqtt.generate(one, { protocolVersion: 3 }), 3, "v3.1");
  const ha = {
    cmd: "subscribe" as const,
    messageId: 65535,
    subscriptions: [
      { topic: "homeassistant/status", qos: 1 as const, nl: true, rap: true, rh: 2 as const },
      { topic: "$share/g/hub/+/state", qos: 2 as const, rh: 1 as const },
    ],
    properties: { subscriptionIdentifier: 268_435_455, userProperties: { a: ["1", "2"], __proto__: "p" } as never },
  };
  agrees(t, mqtt.generate(ha, { protocolVersion: 5 }), 5, "v5 options, identifier, user properties");
  const unsub = { cmd: "unsubscribe" as const, messageId: 9, unsubscriptions: ["a/#", "", "é/😀"] };
  agrees(t, mqtt.generate(unsub, { protocolVersion: 4 }), 4, "UNSUBSCRIBE v4");
  agrees(t, mqtt.generate({ ...unsub, properties: { userProperties: { k: "v" } } }, { protocolVersion: 5 }), 5, "UNSUBSCRIBE v5");
  // No filters: mqtt-packet decodes an empty list; packet-rules refuses it (checklist E1).
  agrees(t, pkt(0x82, [0, 1]), 4, "SUBSCRIBE without filters v4");
  agrees(t, pkt(0x82, [0, 1], [0]), 5, "SUBSCRIBE without filters v5");
  agrees(t, pkt(0xa2, [0, 1]), 4, "UNSUBSCRIBE without filters v4");
});

t.test("unusual SUBSCRIBE/UNSUBSCRIBE are left to mqtt-packet, whose verdict stands", async (t) => {
  const parser = createPacketParser();
  const cases: Array<[string, Buffer, ProtocolLevel]> = [
    ["v4 reserved option bits (MQTT-3-8.3-4)", pkt(0x82, [0, 1], str("a"), 0x04), 4],
    ["v4 QoS 3", pkt(0x82, [0, 1], str("a"), 0x03), 4],
    ["v5 reserved option bits (MQTT-3.8.3-5)", pkt(0x82, [0, 1], [0], str("a"), 0x40), 5],
    ["v5 Retain Handling 3", pkt(0x82, [0, 1], [0], str("a"), 0x30), 5],
    ["filter without options", pkt(0x82, [0, 1], str("a")), 4],
    ["filter past the end", pkt(0x82, [0, 1], [0, 5], "61"), 4],
    ["no packet identifier", pkt(0x82, [0]), 4],
    ["property length past the end (A11)", pkt(0x82, [0, 1], [9], 0x0b, 1), 5],
    ["Subscription Identifier with a 5-byte VBI", pkt(0x82, [0, 1], [6], 0x0b, [0x80, 0x80, 0x80, 0x80, 0x01], str("a"), 0), 5],
    ["repeated Subscription Identifier", pkt(0x82, [0, 1], [4], 0x0b, 1, 0x0b, 2, str("a"), 0), 5],
    ["wrong fixed-header flags", pkt(0x80, [0, 1], str("a"), 0), 4],
    ["UNSUBSCRIBE filter past the end", pkt(0xa2, [0, 1], [0, 5], "61"), 4],
    ["UNSUBSCRIBE wrong flags", pkt(0xa0, [0, 1], str("a")), 4],
  ];
  for (const [what, buf, level] of cases) {
    t.equal(fast(buf, level), undefined, `${what}: not decoded by the fast path`);
    const ref = referenceParse(buf, level);
    const ours = parser.parse(buf, level);
    if ("packet" in ref) t.ok(!isParseFault(ours) && samePacket(ours, ref.packet), `${what}: mqtt-packet's packet`);
    else t.ok(isParseFault(ours), `${what}: refused, as by mqtt-packet (${ref.error})`);
  }
  // 3.1.1 bridge mode (mosquitto bridges): mqtt-packet adds no local / retain as published.
  const bridged = mqtt.generate({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: "a", qos: 1 }] }, { protocolVersion: 4 });
  const ref = referenceParse(bridged, 4, true);
  const ours = parser.parse(bridged, 4, true);
  t.ok("packet" in ref && !isParseFault(ours) && samePacket(ours, ref.packet), "bridge mode: mqtt-packet's packet");
});

// --- property tests ---------------------------------------------------------------------------
const text = fc.oneof(fc.constantFrom("", "a", "a/+/b", "#", "$share/g/x", "é/😀", "__proto__"), fc.string({ maxLength: 12 }), fc.string({ unit: "grapheme", maxLength: 6 }));
const userProperties = fc.dictionary(fc.string({ maxLength: 4 }), fc.oneof(text, fc.array(text, { minLength: 2, maxLength: 3 })), { minKeys: 1, maxKeys: 3 });
const qos = fc.constantFrom(0, 1, 2) as fc.Arbitrary<0 | 1 | 2>;

function packetArb(level: ProtocolLevel): fc.Arbitrary<mqtt.Packet> {
  const v5 = level === 5;
  const subscribe = fc.record(
    {
      cmd: fc.constant("subscribe" as const),
      messageId: fc.integer({ min: 1, max: 0xffff }),
      subscriptions: fc.array(
        fc.record({ topic: text, qos, ...(v5 ? { nl: fc.boolean(), rap: fc.boolean(), rh: fc.constantFrom(0, 1, 2) as fc.Arbitrary<0 | 1 | 2> } : {}) }),
        { minLength: 1, maxLength: 4 },
      ),
      ...(v5 ? { properties: fc.record({ subscriptionIdentifier: fc.integer({ min: 1, max: 268_435_455 }), userProperties }, { requiredKeys: [] }) } : {}),
    },
    { requiredKeys: ["cmd", "messageId", "subscriptions"] },
  );
  const unsubscribe = fc.record(
    {
      cmd: fc.constant("unsubscribe" as const),
      messageId: fc.integer({ min: 1, max: 0xffff }),
      unsubscriptions: fc.array(text, { minLength: 1, maxLength: 4 }),
      ...(v5 ? { properties: fc.record({ userProperties }, { requiredKeys: [] }) } : {}),
    },
    { requiredKeys: ["cmd", "messageId", "unsubscriptions"] },
  );
  return fc.oneof(subscribe, unsubscribe) as fc.Arbitrary<mqtt.Packet>;
}

const caseArb = fc
  .constantFrom(3, 4, 5, 5)
  .chain((l) => packetArb(l as ProtocolLevel).map((p) => [l as ProtocolLevel, p] as const));

function encode(p: mqtt.Packet, level: ProtocolLevel): Buffer | undefined {
  try {
    const buf = Buffer.from(mqtt.generate(p, { protocolVersion: level }));
    return buf.length > 0 ? buf : undefined;
  } catch {
    return undefined;
  }
}

t.test("random valid SUBSCRIBE/UNSUBSCRIBE: the fast path decodes every one, exactly as mqtt-packet", async (t) => {
  let encoded = 0;
  fc.assert(
    fc.property(caseArb, ([level, p]) => {
      const buf = encode(p, level);
      if (buf === undefined) return true;
      encoded++;
      const ours = fast(buf, level);
      const ref = referenceParse(buf, level);
      return ours !== undefined && "packet" in ref && samePacket(ours, ref.packet);
    }),
    { seed: 41, numRuns: 3000 },
  );
  t.ok(encoded > 2500, `most cases encodable (${encoded})`);
});

t.test("mutated SUBSCRIBE/UNSUBSCRIBE: whatever the fast path decodes, mqtt-packet decodes the same", async (t) => {
  const seen = { fast: 0, fallback: 0 };
  fc.assert(
    fc.property(caseArb, mutationsArb, truncateArb, ([level, p], mutations, truncate) => {
      const valid = encode(p, level);
      if (valid === undefined) return true;
      const buf = mutateBody(valid, mutations, truncate);
      const ours = fast(buf, level);
      if (ours === undefined) {
        seen.fallback++;
        return true;
      }
      seen.fast++;
      const ref = referenceParse(buf, level);
      return "packet" in ref && samePacket(ours, ref.packet);
    }),
    { seed: 42, numRuns: 10_000 },
  );
  t.comment(`mutated cases: ${JSON.stringify(seen)}`);
  t.ok(seen.fast > 1000 && seen.fallback > 1000, "both paths exercised");
});

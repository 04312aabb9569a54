// The CONNECT fast path (hub/broker/parse-connect.ts) must build exactly the packet mqtt-packet
// builds, and leave everything unusual to mqtt-packet: the rest of the broker consumes those shapes,
// and every refusal must stay what it was.
import fc from "fast-check";
import mqtt from "mqtt-packet";
import t, { type Test } from "tap";
import { decodeConnect } from "../../hub/broker/parse-connect.js";
import { UNUSUAL } from "../../hub/broker/parse-reader.js";
import { createPacketParser, isParseFault } from "../../hub/broker/parse.js";
import { bytes, pkt, str, vbi } from "../support/bytes.js";
import { headerLength, mutateBody, mutationsArb, referenceParse, samePacket, truncateArb } from "../support/packet-reference.js";

/** The fast path's answer: a packet, or undefined where it hands over to mqtt-packet. */
function fast(buf: Buffer): mqtt.Packet | undefined {
  try {
    return decodeConnect(buf, headerLength(buf));
  } catch (e) {
    if (e === UNUSUAL) return undefined;
    throw e;
  }
}

function agrees(t: Test, buf: Buffer, what: string): void {
  const ours = fast(buf);
  const ref = referenceParse(buf, 4);
  t.ok(ours !== undefined, `${what}: decoded by the fast path`);
  t.ok("packet" in ref && samePacket(ours, ref.packet), `${what}: same packet as mqtt-packet`);
}

t.test("CONNECTs real clients send take the fast path and decode like mqtt-packet", async (t) => {
  const base = { cmd: "connect" as const, protocolId: "MQTT" as const, clean: true, keepalive: 60 };
  const cases: Array<[string, mqtt.IConnectPacket]> = [
    ["bench v5 (Receive Maximum)", { ...base, protocolVersion: 5, clientId: "hs-1", keepalive: 300, properties: { receiveMaximum: 65535 } }],
    ["MQTT.js v4 default", { ...base, protocolVersion: 4, clientId: "mqttjs_3f2a1b" }],
    ["mosquitto_sub v3.1", { ...base, protocolId: "MQIsdp", protocolVersion: 3, clientId: "mosq-abc" }],
    ["empty client id v5", { ...base, protocolVersion: 5, clientId: "" }],
    ["persistent v5 with session expiry", { ...base, protocolVersion: 5, clientId: "ha", clean: false, properties: { sessionExpiryInterval: 0xffffffff, topicAliasMaximum: 10, maximumPacketSize: 1 << 20, requestProblemInformation: false, requestResponseInformation: true } }],
    ["v4 user and password", { ...base, protocolVersion: 4, clientId: "c", username: "alice", password: Buffer.from("s3cret") }],
    ["v4 empty password", { ...base, protocolVersion: 4, clientId: "c", username: "", password: Buffer.alloc(0) }],
    ["v4 will", { ...base, protocolVersion: 4, clientId: "c", will: { topic: "hub/x/availability", payload: Buffer.from("offline"), qos: 1, retain: true } }],
    [
      "v5 will with properties",
      {
        ...base,
        protocolVersion: 5,
        clientId: "c",
        will: {
          topic: "w",
          payload: Buffer.from("bye"),
          qos: 2,
          retain: false,
          properties: { willDelayInterval: 30, payloadFormatIndicator: true, messageExpiryInterval: 60, contentType: "text/plain", responseTopic: "r", correlationData: Buffer.from([1, 2]), userProperties: { k: "v" } },
        },
      },
    ],
    ["v5 user properties, repeated names, prototype names", { ...base, protocolVersion: 5, clientId: "c", properties: { userProperties: { a: ["1", "2", "3"], __proto__: "x", constructor: "y" } as never } }],
    ["v5 authentication method and data", { ...base, protocolVersion: 5, clientId: "c", properties: { authenticationMethod: "SCRAM", authenticationData: Buffer.from("d") } }],
  ];
  for (const [what, p] of cases) agrees(t, mqtt.generate(p), what);
  // Which mqtt-packet will not encode, but which MQTT 5 allows (MQTT-3.1.3-6/-7).
  agrees(t, pkt(0x10, str("MQTT"), 5, 0x00, [0, 60], [0], str("")), "v5 empty client id, clean start 0");
});

t.test("user properties keep mqtt-packet's quirks: null prototype, arrays, a repeat after an empty value", async (t) => {
  // Two pairs with the same name, the first value empty: mqtt-packet's truthiness test keeps only the second.
  const list = bytes(0x26, str("n"), str(""), 0x26, str("n"), str("v"), 0x26, str("__proto__"), str("p"));
  const props = bytes(vbi(list.length), list);
  const buf = pkt(0x10, str("MQTT"), 5, 0x02, [0, 60], props, str("id"));
  const ours = fast(buf) as mqtt.IConnectPacket;
  const ref = referenceParse(buf, 5);
  t.ok("packet" in ref && samePacket(ours, ref.packet), "same as mqtt-packet");
  const up = ours.properties!.userProperties as Record<string, unknown>;
  t.equal(Object.getPrototypeOf(up), null);
  t.same(Object.entries(up), [
    ["n", "v"],
    ["__proto__", "p"],
  ]);
});

t.test("unusual CONNECTs are left to mqtt-packet, whose verdict stands", async (t) => {
  const parser = createPacketParser();
  const cases: Array<[string, Buffer]> = [
    ["bridge bit (level 0x84)", pkt(0x10, str("MQTT"), 0x84, 0x02, [0, 60], str("bridge"))],
    ["MQTT with level 3", pkt(0x10, str("MQTT"), 3, 0x02, [0, 60], str("c"))],
    ["MQIsdp with level 4", pkt(0x10, str("MQIsdp"), 4, 0x02, [0, 60], str("c"))],
    ["unknown protocol name", pkt(0x10, str("MQTX"), 4, 0x02, [0, 60], str("c"))],
    ["level 6", pkt(0x10, str("MQTT"), 6, 0x02, [0, 60], str("c"))],
    ["reserved flag (MQTT-3.1.2-3)", pkt(0x10, str("MQTT"), 4, 0x03, [0, 60], str("c"))],
    ["will QoS without will flag", pkt(0x10, str("MQTT"), 4, 0x0a, [0, 60], str("c"))],
    ["will retain without will flag", pkt(0x10, str("MQTT"), 4, 0x22, [0, 60], str("c"))],
    ["will QoS 3", pkt(0x10, str("MQTT"), 4, 0x1e, [0, 60], str("c"), str("w"), str("p"))],
    ["trailing byte", pkt(0x10, str("MQTT"), 4, 0x02, [0, 60], str("c"), 0)],
    ["client id past the end", pkt(0x10, str("MQTT"), 4, 0x02, [0, 60], [0, 9], "61")],
    ["property length past the end (A11)", pkt(0x10, str("MQTT"), 5, 0x02, [0, 60], [0x20], 0x11, [0, 0, 0, 1], str("c"))],
    ["property value past its block", pkt(0x10, str("MQTT"), 5, 0x02, [0, 60], [0x03], 0x11, [0, 0, 0, 1], str("c"))],
    ["repeated Session Expiry", pkt(0x10, str("MQTT"), 5, 0x02, [0, 60], [0x0a], 0x11, [0, 0, 0, 1], 0x11, [0, 0, 0, 2], str("c"))],
    ["unknown property 0x7f", pkt(0x10, str("MQTT"), 5, 0x02, [0, 60], [0x02], 0x7f, 0, str("c"))],
    ["non-minimal property length", pkt(0x10, str("MQTT"), 5, 0x02, [0, 60], [0x80, 0x00], str("c"))],
    ["password flag but no password", pkt(0x10, str("MQTT"), 4, 0xc2, [0, 60], str("c"), str("u"))],
  ];
  for (const [what, buf] of cases) {
    t.equal(fast(buf), undefined, `${what}: not decoded by the fast path`);
    const ref = referenceParse(buf, 4);
    const ours = parser.parse(buf, 4);
    if ("packet" in ref) t.ok(!isParseFault(ours) && samePacket(ours, ref.packet), `${what}: mqtt-packet's packet`);
    else t.ok(isParseFault(ours), `${what}: refused, as by mqtt-packet (${ref.error})`);
  }
});

// --- property tests ---------------------------------------------------------------------------
const text = fc.oneof(
  fc.constantFrom("", "a", "hub/x", "é/😀", "__proto__", "constructor", "toString"),
  fc.string({ maxLength: 12 }),
  fc.string({ unit: "grapheme", maxLength: 6 }),
);
const bin = fc.uint8Array({ maxLength: 16 }).map((u) => Buffer.from(u));
const u16 = fc.integer({ min: 1, max: 0xffff });
const u32 = fc.integer({ min: 1, max: 0xffffffff });
// At least one: mqtt-packet encodes an empty userProperties object as nothing at all.
const userProperties = fc.dictionary(fc.string({ maxLength: 4 }), fc.oneof(text, fc.array(text, { minLength: 2, maxLength: 3 })), { minKeys: 1, maxKeys: 3 });

function connectArb(level: 3 | 4 | 5): fc.Arbitrary<mqtt.IConnectPacket> {
  const v5 = level === 5;
  const willProps = fc.record(
    { willDelayInterval: u32, payloadFormatIndicator: fc.boolean(), messageExpiryInterval: u32, contentType: text, responseTopic: text, correlationData: bin, userProperties },
    { requiredKeys: [] },
  );
  const props = fc.record(
    {
      sessionExpiryInterval: u32,
      receiveMaximum: u16,
      maximumPacketSize: u32,
      topicAliasMaximum: u16,
      requestResponseInformation: fc.boolean(),
      requestProblemInformation: fc.boolean(),
      userProperties,
      authenticationMethod: text,
      authenticationData: bin,
    },
    { requiredKeys: [] },
  );
  // mqtt-packet refuses to encode a password without a user name before MQTT 5.
  const credentials = fc.oneof(
    fc.constant({}),
    fc.record({ username: text }),
    fc.record({ username: text, password: bin }),
    ...(v5 ? [fc.record({ password: bin })] : []),
  );
  const packet = fc.record(
    {
      cmd: fc.constant("connect" as const),
      protocolId: fc.constant(level === 3 ? ("MQIsdp" as const) : ("MQTT" as const)),
      protocolVersion: fc.constant(level),
      clientId: text,
      clean: fc.boolean(),
      keepalive: fc.integer({ min: 0, max: 0xffff }),
      will: fc.record(
        { topic: text.filter((x) => x !== ""), payload: bin, qos: fc.constantFrom(0, 1, 2) as fc.Arbitrary<0 | 1 | 2>, retain: fc.boolean(), ...(v5 ? { properties: willProps } : {}) },
        { requiredKeys: ["topic", "payload", "qos", "retain"] },
      ),
      ...(v5 ? { properties: props } : {}),
    },
    { requiredKeys: ["cmd", "protocolId", "protocolVersion", "clientId", "clean", "keepalive"] },
  );
  return fc.tuple(packet, credentials).map(([p, c]) => ({ ...p, ...c }) as mqtt.IConnectPacket);
}

const levelArb = fc.constantFrom(3, 4, 5, 5) as fc.Arbitrary<3 | 4 | 5>;

function encode(p: mqtt.Packet, level: 3 | 4 | 5): Buffer | undefined {
  // mqtt-packet refuses some (a password without a user name...) by throwing or returning nothing.
  try {
    const buf = Buffer.from(mqtt.generate(p, { protocolVersion: level }));
    return buf.length > 0 ? buf : undefined;
  } catch {
    return undefined;
  }
}

t.test("random valid CONNECTs: the fast path decodes every one, exactly as mqtt-packet", async (t) => {
  let encoded = 0;
  fc.assert(
    fc.property(
      levelArb.chain((l) => connectArb(l).map((p) => [l, p] as const)),
      ([level, p]) => {
        const buf = encode(p, level);
        if (buf === undefined) return true;
        encoded++;
        const ours = fast(buf);
        const ref = referenceParse(buf, level);
        return ours !== undefined && "packet" in ref && samePacket(ours, ref.packet);
      },
    ),
    { seed: 31, numRuns: 3000 },
  );
  // The rest: an empty client id with clean session 0, or on 3.1, which mqtt-packet will not encode.
  t.ok(encoded > 2000, `most cases encodable (${encoded})`);
});

t.test("mutated CONNECTs: whatever the fast path decodes, mqtt-packet decodes the same", async (t) => {
  const seen = { fast: 0, fallback: 0 };
  fc.assert(
    fc.property(
      levelArb.chain((l) => connectArb(l).map((p) => [l, p] as const)),
      mutationsArb,
      truncateArb,
      ([level, p], mutations, truncate) => {
        const valid = encode(p, level);
        if (valid === undefined) return true;
        const buf = mutateBody(valid, mutations, truncate);
        const ours = fast(buf); // throws (fails the property) on anything but UNUSUAL
        if (ours === undefined) {
          seen.fallback++;
          return true;
        }
        seen.fast++;
        const ref = referenceParse(buf, level);
        return "packet" in ref && samePacket(ours, ref.packet);
      },
    ),
    { seed: 32, numRuns: 10_000 },
  );
  t.comment(`mutated cases: ${JSON.stringify(seen)}`);
  t.ok(seen.fast > 1000 && seen.fallback > 1000, "both paths exercised");
});

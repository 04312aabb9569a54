// String walker tests: checklist B1-B3 in every UTF-8 field, A11 (property length overrun), D12
// (user property cap), property table rules and SUBSCRIBE option bits (E3), from raw bytes.
import mqtt from "mqtt-packet";
import t from "tap";
import { createFramer, isFrameError, type ProtocolLevel } from "../../hub/broker/framing.js";
import { parseOne } from "../../hub/broker/parse.js";
import { RC } from "../../hub/broker/reason-codes.js";
import { checkWireStrings } from "../../hub/broker/wire-strings.js";

import { type Part, vbi, bytes } from "../support/bytes.js";
/** Length-prefixed field from raw bytes (a string or binary data). */
const raw = (b: Buffer): Buffer => bytes([b.length >> 8, b.length & 0xff], b);
const str = (s: string): Buffer => raw(Buffer.from(s, "utf8"));
const pkt = (b0: number, ...body: Part[]): Buffer => {
  const b = bytes(...body);
  return bytes(b0, vbi(b.length), b);
};
/** A v5 property block. */
const props = (...p: Part[]): Buffer => {
  const b = bytes(...p);
  return bytes(vbi(b.length), b);
};

const CAP = 64;
const check = (buf: Buffer, level: ProtocolLevel, cap = CAP) => checkWireStrings(buf, level, cap);

// --- B1/B2: every UTF-8 field -------------------------------------------------------------------
/** Each builder puts `field` (raw bytes) into one UTF-8 string field. */
const FIELDS: [string, ProtocolLevel, (field: Buffer) => Buffer][] = [
  ["v4 CONNECT protocol name", 4, (f) => pkt(0x10, raw(f), 4, 0x02, [0, 60], str("c"))],
  ["v4 CONNECT client id", 4, (f) => pkt(0x10, str("MQTT"), 4, 0x02, [0, 60], raw(f))],
  ["v3 CONNECT client id", 3, (f) => pkt(0x10, str("MQIsdp"), 3, 0x02, [0, 60], raw(f))],
  ["v4 CONNECT will topic", 4, (f) => pkt(0x10, str("MQTT"), 4, 0x06, [0, 60], str("c"), raw(f), str("p"))],
  ["v4 CONNECT user name", 4, (f) => pkt(0x10, str("MQTT"), 4, 0xc2, [0, 60], str("c"), raw(f), str("pw"))],
  ["v5 CONNECT client id", 5, (f) => pkt(0x10, str("MQTT"), 5, 0x02, [0, 60], [0], raw(f))],
  ["v5 CONNECT user property name", 5, (f) => pkt(0x10, str("MQTT"), 5, 0x02, [0, 60], props(38, raw(f), str("v")), str("c"))],
  ["v5 CONNECT user property value", 5, (f) => pkt(0x10, str("MQTT"), 5, 0x02, [0, 60], props(38, str("k"), raw(f)), str("c"))],
  ["v5 CONNECT authentication method", 5, (f) => pkt(0x10, str("MQTT"), 5, 0x02, [0, 60], props(21, raw(f)), str("c"))],
  ["v5 will content type", 5, (f) => pkt(0x10, str("MQTT"), 5, 0x06, [0, 60], [0], str("c"), props(3, raw(f)), str("w"), str("p"))],
  ["v5 will response topic", 5, (f) => pkt(0x10, str("MQTT"), 5, 0x06, [0, 60], [0], str("c"), props(8, raw(f)), str("w"), str("p"))],
  ["v5 will topic", 5, (f) => pkt(0x10, str("MQTT"), 5, 0x06, [0, 60], [0], str("c"), [0], raw(f), str("p"))],
  ["v5 user name", 5, (f) => pkt(0x10, str("MQTT"), 5, 0x82, [0, 60], [0], str("c"), raw(f))],
  ["v4 PUBLISH topic", 4, (f) => pkt(0x30, raw(f), "payload")],
  ["v4 PUBLISH QoS 1 topic", 4, (f) => pkt(0x32, raw(f), [0, 1], "payload")],
  ["v5 PUBLISH topic", 5, (f) => pkt(0x30, raw(f), [0], "payload")],
  ["v5 PUBLISH content type", 5, (f) => pkt(0x30, str("t"), props(3, raw(f)), "payload")],
  ["v5 PUBLISH response topic", 5, (f) => pkt(0x32, str("t"), [0, 1], props(8, raw(f)), "payload")],
  ["v5 PUBLISH user property value", 5, (f) => pkt(0x30, str("t"), props(38, str("k"), raw(f)), "payload")],
  ["v4 SUBSCRIBE filter", 4, (f) => pkt(0x82, [0, 1], str("ok"), 0, raw(f), 1)],
  ["v5 SUBSCRIBE filter", 5, (f) => pkt(0x82, [0, 1], [0], raw(f), 1)],
  ["v5 SUBSCRIBE user property", 5, (f) => pkt(0x82, [0, 1], props(38, raw(f), str("v")), str("a"), 1)],
  ["v4 UNSUBSCRIBE filter", 4, (f) => pkt(0xa2, [0, 1], str("ok"), raw(f))],
  ["v5 UNSUBSCRIBE filter", 5, (f) => pkt(0xa2, [0, 1], [0], raw(f))],
  ["v5 PUBACK reason string", 5, (f) => pkt(0x40, [0, 1], 0x10, props(31, raw(f)))],
  ["v5 PUBREL user property", 5, (f) => pkt(0x62, [0, 1], 0x00, props(38, str("k"), raw(f)))],
  ["v5 DISCONNECT reason string", 5, (f) => pkt(0xe0, 0x04, props(31, raw(f)))],
  ["v5 DISCONNECT server reference", 5, (f) => pkt(0xe0, 0x00, props(28, raw(f)))],
  ["v5 AUTH authentication method", 5, (f) => pkt(0xf0, 0x18, props(21, raw(f)))],
];

const BAD: [string, string][] = [
  ["surrogate ED A0 80", "61eda08062"],
  ["overlong C0 AF", "61c0af62"],
  ["truncated F0 9F 98", "61f09f9862"],
  ["truncated at the end F0 9F 98", "61f09f98"],
  ["above U+10FFFF (F4 90 80 80)", "61f490808062"],
  ["lone continuation byte 80", "618062"],
  ["U+0000", "610062"],
];

t.test("B1/B2: invalid UTF-8 and U+0000 are malformed in every string field", async (t) => {
  for (const [field, level, build] of FIELDS) {
    const good = build(Buffer.from("MQTT", "utf8"));
    // Protocol name aside, a non-ASCII valid string passes too.
    t.equal(check(good, level), undefined, `${field}: valid ASCII passes`);
    t.equal(check(build(Buffer.from("a/é/😀/\uffff", "utf8")), level), undefined, `${field}: valid non-ASCII passes`);
    for (const [what, hex] of BAD) {
      t.match(check(build(Buffer.from(hex, "hex")), level), { reason: RC.MALFORMED_PACKET }, `${field}: ${what}`);
    }
  }
});

t.test("binary fields may hold any bytes", async (t) => {
  const junk = Buffer.from("00eda080c0aff09f98", "hex");
  const rows: [string, ProtocolLevel, Buffer][] = [
    ["password", 4, pkt(0x10, str("MQTT"), 4, 0xc2, [0, 60], str("c"), str("u"), raw(junk))],
    ["will payload", 4, pkt(0x10, str("MQTT"), 4, 0x06, [0, 60], str("c"), str("w"), raw(junk))],
    ["PUBLISH payload", 4, pkt(0x30, str("t"), junk)],
    ["v5 correlation data", 5, pkt(0x30, str("t"), props(9, raw(junk)), junk)],
    ["v5 authentication data", 5, pkt(0x10, str("MQTT"), 5, 0x02, [0, 60], props(21, str("m"), 22, raw(junk)), str("c"))],
  ];
  for (const [name, level, buf] of rows) t.equal(check(buf, level), undefined, name);
});

t.test("B3: a BOM in a topic is accepted and kept byte-for-byte", async (t) => {
  const topic = Buffer.from("efbbbf612f62", "hex");
  const buf = pkt(0x30, raw(topic), "x");
  t.equal(check(buf, 4), undefined);
  const p = parseOne(buf, 4);
  t.ok("cmd" in p && p.cmd === "publish" && Buffer.from(p.topic, "utf8").equals(topic));
});

// --- A11 ---------------------------------------------------------------------------------------
t.test("A11: a property length that overruns the packet is malformed; the next packet is not eaten", async (t) => {
  const f = createFramer({ maxPacketSize: 1024 });
  f.push(pkt(0x10, str("MQTT"), 5, 0x02, [0, 60], [0], str("c")));
  f.next();
  f.setProtocol(5);
  f.setConnected();
  // PUBLISH whose property length (10) claims more than the 2 bytes left, then a PINGREQ.
  f.push(bytes(pkt(0x30, str("t"), 10, [1, 0]), "c000"));
  const pub = f.next();
  const ping = f.next();
  t.ok(pub instanceof Buffer && !isFrameError(pub));
  t.match(check(pub as Buffer, 5), { reason: RC.MALFORMED_PACKET, message: /property length/ });
  t.same(ping, bytes("c000"), "PINGREQ framed on its own");
  const overruns: [string, Buffer][] = [
    ["CONNECT", pkt(0x10, str("MQTT"), 5, 0x02, [0, 60], [50], str("c"))],
    ["SUBSCRIBE", pkt(0x82, [0, 1], [20], str("a"), 0)],
    ["PUBACK", pkt(0x40, [0, 1], 0, 5, 31)],
    ["DISCONNECT", pkt(0xe0, 0, 9)],
    ["property value past its block", pkt(0x30, str("t"), [3, 3, 0, 5], "abcdef")],
    ["5-byte property length", pkt(0x30, str("t"), [0x80, 0x80, 0x80, 0x80, 0x01])],
    ["non-minimal property length", pkt(0x30, str("t"), [0x80, 0x00])],
  ];
  for (const [name, buf] of overruns) t.match(check(buf, 5), { reason: RC.MALFORMED_PACKET }, name);
});

// --- D12 ---------------------------------------------------------------------------------------
t.test("D12: user properties are capped before mqtt-packet builds them", async (t) => {
  const one = bytes(38, str("a"), str("b"));
  const many = Buffer.concat(Array.from({ length: 100_000 }, () => one));
  const buf = pkt(0x10, str("MQTT"), 5, 0x02, [0, 60], props(many), str("c"));
  t.ok(buf.length < 1024 * 1024, "within a 1 MiB packet cap");
  t.match(check(buf, 5, 64), { reason: RC.QUOTA_EXCEEDED });
  t.equal(check(buf, 5, 100_000), undefined, "a cap of 100,000 lets it through");
  // Counted over the whole packet: CONNECT and will properties together.
  const split = pkt(0x10, str("MQTT"), 5, 0x06, [0, 60], props(one, one), str("c"), props(one, one), str("w"), str("p"));
  t.equal(check(split, 5, 4), undefined);
  t.match(check(split, 5, 3), { reason: RC.QUOTA_EXCEEDED });
});

// --- property rules ----------------------------------------------------------------------------
t.test("v5 property identifiers, placement, duplicates and byte values", async (t) => {
  const rows: [string, Buffer, number | undefined][] = [
    ["unknown id 0", pkt(0x30, str("t"), props(0, 0))],
    ["unknown id 4", pkt(0x30, str("t"), props(4, 0))],
    ["unknown id 200 (multi-byte VBI id)", pkt(0x30, str("t"), props(0xc8, 0x01, 0))],
    ["topic alias in CONNECT", pkt(0x10, str("MQTT"), 5, 0x02, [0, 60], props(35, [0, 1]), str("c"))],
    ["server keep alive (CONNACK only) in CONNECT", pkt(0x10, str("MQTT"), 5, 0x02, [0, 60], props(19, [0, 1]), str("c"))],
    ["assigned client id (CONNACK only) in PUBLISH", pkt(0x30, str("t"), props(18, str("x")))],
    ["will delay in CONNECT properties", pkt(0x10, str("MQTT"), 5, 0x02, [0, 60], props(24, [0, 0, 0, 1]), str("c"))],
    ["session expiry in will properties", pkt(0x10, str("MQTT"), 5, 0x06, [0, 60], [0], str("c"), props(17, [0, 0, 0, 1]), str("w"), str("p"))],
    ["topic alias in SUBSCRIBE", pkt(0x82, [0, 1], props(35, [0, 1]), str("a"), 0)],
    ["reason string in UNSUBSCRIBE", pkt(0xa2, [0, 1], props(31, str("r")), str("a"))],
  ].map(([n, b]) => [n as string, b as Buffer, RC.MALFORMED_PACKET]);
  rows.push(
    ["duplicate content type", pkt(0x30, str("t"), props(3, str("a"), 3, str("b"))), RC.PROTOCOL_ERROR],
    ["duplicate topic alias", pkt(0x30, str("t"), props(35, [0, 1], 35, [0, 1])), RC.PROTOCOL_ERROR],
    ["duplicate receive maximum", pkt(0x10, str("MQTT"), 5, 0x02, [0, 60], props(33, [0, 1], 33, [0, 2]), str("c")), RC.PROTOCOL_ERROR],
    ["payload format indicator 2", pkt(0x30, str("t"), props(1, 2)), RC.PROTOCOL_ERROR],
    ["request problem information 7", pkt(0x10, str("MQTT"), 5, 0x02, [0, 60], props(23, 7), str("c")), RC.PROTOCOL_ERROR],
    ["repeated user properties", pkt(0x30, str("t"), props(38, str("k"), str("1"), 38, str("k"), str("2"))), undefined],
    ["all PUBLISH properties once", pkt(0x32, str("t"), [0, 9], props(1, 1, 2, [0, 0, 0, 9], 3, str("c"), 8, str("r"), 9, str("d"), 35, [0, 1], 11, 5)), undefined],
  );
  for (const [name, buf, reason] of rows) {
    const r = check(buf, 5);
    if (reason === undefined) t.equal(r, undefined, name);
    else t.match(r, { reason }, name);
  }
});

t.test("trailing bytes and truncated fields", async (t) => {
  const rows: [string, ProtocolLevel, Buffer][] = [
    ["v4 CONNECT with trailing bytes", 4, pkt(0x10, str("MQTT"), 4, 0x02, [0, 60], str("c"), [1, 2])],
    ["v4 CONNECT missing password", 4, pkt(0x10, str("MQTT"), 4, 0xc2, [0, 60], str("c"), str("u"))],
    ["v4 CONNECT will flag without will fields", 4, pkt(0x10, str("MQTT"), 4, 0x06, [0, 60], str("c"))],
    ["v5 PUBACK with bytes after properties", 5, pkt(0x40, [0, 1], 0, [0], 9)],
    ["v5 DISCONNECT with bytes after properties", 5, pkt(0xe0, 0, [0], 9)],
    ["topic length past the end", 4, pkt(0x30, [0, 9], "ab")],
    ["QoS 1 PUBLISH cut inside the packet id", 5, pkt(0x32, str("t"), 0)],
    ["SUBSCRIBE filter without options byte", 4, pkt(0x82, [0, 1], str("a"))],
    ["UNSUBSCRIBE filter cut short", 4, pkt(0xa2, [0, 1], [0, 5], "ab")],
    ["remaining length disagrees with the buffer", 4, bytes("c00200")],
  ];
  for (const [name, level, buf] of rows) t.match(check(buf, level), { reason: RC.MALFORMED_PACKET }, name);
  t.equal(check(pkt(0x10, str("MQTT"), 9, 0x02, [0, 60], str("c"), "junk"), 4), undefined, "unknown level: left to checkConnectRaw");
  t.equal(check(pkt(0xe0), 5), undefined, "v5 DISCONNECT with no body");
  t.equal(check(pkt(0xe0, 0x04), 5), undefined, "v5 DISCONNECT with reason only");
  t.equal(check(pkt(0x40, [0, 1]), 5), undefined, "v5 PUBACK with id only");
});

t.test("E3: SUBSCRIBE option bytes", async (t) => {
  const sub = (level: ProtocolLevel, o: number) =>
    level === 5 ? pkt(0x82, [0, 1], [0], str("a"), o) : pkt(0x82, [0, 1], str("a"), o);
  const rows: [string, ProtocolLevel, number, number | undefined][] = [
    ["v4 QoS 2", 4, 0x02, undefined],
    ["v4 QoS 3", 4, 0x03, RC.MALFORMED_PACKET],
    ["v4 reserved bit 2", 4, 0x04, RC.MALFORMED_PACKET],
    ["v4 reserved bit 7", 4, 0x80, RC.MALFORMED_PACKET],
    ["v5 all options", 5, 0x2e, undefined],
    ["v5 QoS 3", 5, 0x03, RC.MALFORMED_PACKET],
    ["v5 reserved bit 6", 5, 0x40, RC.MALFORMED_PACKET],
    ["v5 reserved bit 7", 5, 0x80, RC.MALFORMED_PACKET],
    ["v5 retain handling 3", 5, 0x30, RC.PROTOCOL_ERROR],
  ];
  for (const [name, level, o, reason] of rows) {
    const r = check(sub(level, o), level);
    if (reason === undefined) t.equal(r, undefined, name);
    else t.match(r, { reason }, name);
  }
});

t.test("packets encoded by mqtt-packet pass", async (t) => {
  const up = { k: ["v1", "v2"], "\u00e9": "\u{1f600}" };
  const packets: [ProtocolLevel, mqtt.Packet][] = [
    [4, { cmd: "connect", protocolId: "MQTT", protocolVersion: 4, clientId: "dev-1", clean: true, keepalive: 30, username: "u", password: Buffer.from([0, 255]), will: { topic: "w/t", payload: Buffer.from("bye"), qos: 1, retain: true } }],
    [3, { cmd: "connect", protocolId: "MQIsdp", protocolVersion: 3, clientId: "dev-1", clean: true, keepalive: 30 }],
    [5, { cmd: "connect", protocolId: "MQTT", protocolVersion: 5, clientId: "", clean: true, keepalive: 30, properties: { sessionExpiryInterval: 60, receiveMaximum: 10, maximumPacketSize: 1000, topicAliasMaximum: 5, requestProblemInformation: true, userProperties: up }, will: { topic: "w", payload: Buffer.from("x"), properties: { willDelayInterval: 5, contentType: "text/plain", responseTopic: "r/t", correlationData: Buffer.from([1]), userProperties: up } } }],
    [5, { cmd: "publish", topic: "a/b", payload: Buffer.from("x"), qos: 2, retain: false, dup: false, messageId: 7, properties: { payloadFormatIndicator: true, messageExpiryInterval: 9, topicAlias: 3, responseTopic: "r", correlationData: Buffer.from("c"), userProperties: up, contentType: "ct" } }],
    [4, { cmd: "publish", topic: "a/\u00e9", payload: Buffer.from("x"), qos: 1, retain: true, dup: true, messageId: 7 }],
    [5, { cmd: "subscribe", messageId: 3, subscriptions: [{ topic: "a/+", qos: 1, nl: true, rap: true, rh: 2 }, { topic: "$share/g/x/#", qos: 0 }], properties: { subscriptionIdentifier: 9, userProperties: up } }],
    [4, { cmd: "subscribe", messageId: 3, subscriptions: [{ topic: "a/+", qos: 1 }] }],
    [5, { cmd: "unsubscribe", messageId: 3, unsubscriptions: ["a/+", "b"], properties: { userProperties: up } }],
    [5, { cmd: "puback", messageId: 3, reasonCode: 0x10, properties: { reasonString: "none", userProperties: up } }],
    [5, { cmd: "pubrel", messageId: 3, reasonCode: 0x92 }],
    [4, { cmd: "pubcomp", messageId: 3 }],
    [5, { cmd: "disconnect", reasonCode: 0x04, properties: { sessionExpiryInterval: 0, reasonString: "bye", serverReference: "other", userProperties: up } }],
    [5, { cmd: "auth", reasonCode: 0x18, properties: { authenticationMethod: "SCRAM", authenticationData: Buffer.from([9]), reasonString: "r" } }],
    [4, { cmd: "pingreq" }],
  ];
  for (const [level, p] of packets) {
    const buf = mqtt.generate(p, { protocolVersion: level });
    t.equal(check(buf, level), undefined, `${p.cmd} v${level}`);
  }
});

// Packet-rule tests: checklist C, D and E rows at the packet layer. Each row is raw bytes run through
// the whole gate (checkConnectRaw for CONNECT, string walker, mqtt-packet, checkPacket), so a row
// also shows at which stage a bad packet is stopped.
import t, { type Test } from "tap";
import type { IPublishPacket, ISubscribePacket } from "mqtt-packet";
import type { ProtocolLevel } from "../../hub/broker/framing.js";
import {
  applyTopicAlias,
  checkConnectRaw,
  checkPacket,
  checkSubscribe,
  PASS,
  type RuleLimits,
  type TopicRules,
} from "../../hub/broker/packet-rules.js";
import { isParseFault, parseOne } from "../../hub/broker/parse.js";
import { RC, reasonName, v5ToV3Connack, v5ToV3Suback } from "../../hub/broker/reason-codes.js";
import { validTopicFilter, validTopicName } from "../../hub/broker/topics.js";
import { checkWireStrings } from "../../hub/broker/wire-strings.js";

import { type Part, vbi, bytes, str, pkt } from "../support/bytes.js";
const props = (...p: Part[]): Buffer => {
  const b = bytes(...p);
  return bytes(vbi(b.length), b);
};
/** CONNECT with the given flags, client id and extra payload fields. */
const conn = (level: ProtocolLevel, flags: number, id: string, ...rest: Part[]): Buffer =>
  pkt(0x10, str(level === 3 ? "MQIsdp" : "MQTT"), level, flags, [0, 60], level === 5 ? [0] : [], str(id), ...rest);

// --- the gate under test -------------------------------------------------------------------------
const TOPIC_LIMITS = { maxLength: 65_535, maxLevels: 32 };
const RULES: TopicRules = {
  validName: (s) => validTopicName(s, TOPIC_LIMITS),
  validFilter: (s) => validTopicFilter(s, TOPIC_LIMITS),
};
const LIMITS: RuleLimits = { maxClientIdLength: 64, topicAliasMaximum: 10 };

type Outcome = "ok" | { stage: "raw" | "wire" | "parse" | "rules"; action?: string; reason: number };
function gate(buf: Buffer, level: ProtocolLevel, failures: number[] = [], limits = LIMITS): Outcome {
  if (buf[0]! >> 4 === 1) {
    const v = checkConnectRaw(buf);
    if (!v.ok) return { stage: "raw", action: v.action, reason: v.reason };
  }
  const w = checkWireStrings(buf, level, 64);
  if (w) return { stage: "wire", reason: w.reason };
  const p = parseOne(buf, level);
  if (isParseFault(p)) return { stage: "parse", reason: p.reason };
  const v = checkPacket(p, level, RULES, limits, failures);
  return v.ok ? "ok" : { stage: "rules", action: v.action, reason: v.reason };
}
type Row = [name: string, level: ProtocolLevel, buf: Buffer, expected: Outcome];
function table(t: Test, rows: Row[]): void {
  for (const [name, level, buf, expected] of rows) {
    const got = gate(buf, level);
    if (expected === "ok") t.equal(got, "ok", name);
    else t.same(got, expected, name);
  }
}
const rules = (action: string, reason: number): Outcome => ({ stage: "rules", action, reason });
const raw = (action: string, reason: number): Outcome => ({ stage: "raw", action, reason });

// --- C: CONNECT ----------------------------------------------------------------------------------
t.test("C1, C2 and CONNECT flag rules (raw bytes, before mqtt-packet)", async (t) => {
  table(t, [
    ["C1 reserved flag, v4: close", 4, conn(4, 0x03, "c"), raw("close", RC.MALFORMED_PACKET)],
    ["C1 reserved flag, v5: CONNACK 0x81", 5, conn(5, 0x03, "c"), raw("connack", RC.MALFORMED_PACKET)],
    ["C2 level 9: CONNACK 0x84", 4, pkt(0x10, str("MQTT"), 9, 0x02, [0, 60], str("c")), raw("connack", RC.UNSUPPORTED_PROTOCOL_VERSION)],
    ["C2 MQTT with level 3", 4, pkt(0x10, str("MQTT"), 3, 0x02, [0, 60], str("c")), raw("connack", RC.UNSUPPORTED_PROTOCOL_VERSION)],
    ["C2 MQIsdp with level 4", 4, pkt(0x10, str("MQIsdp"), 4, 0x02, [0, 60], str("c")), raw("connack", RC.UNSUPPORTED_PROTOCOL_VERSION)],
    ["C2 unknown protocol name", 4, pkt(0x10, str("MQTX"), 4, 0x02, [0, 60], str("c")), raw("connack", RC.UNSUPPORTED_PROTOCOL_VERSION)],
    ["bridge bit (0x84) accepted", 4, pkt(0x10, str("MQTT"), 0x84, 0x02, [0, 60], str("c")), "ok"],
    ["MQTT 3.1 (MQIsdp, 3)", 3, conn(3, 0x02, "c"), "ok"],
    ["will QoS 3", 4, conn(4, 0x1e, "c", str("w"), str("p")), raw("close", RC.MALFORMED_PACKET)],
    ["will retain without will flag, v4", 4, conn(4, 0x22, "c"), raw("close", RC.MALFORMED_PACKET)],
    ["will QoS without will flag, v5", 5, conn(5, 0x0a, "c"), raw("connack", RC.MALFORMED_PACKET)],
    ["v4 password without user name (MQTT-3.1.2-22)", 4, conn(4, 0x42, "c", str("pw")), raw("close", RC.MALFORMED_PACKET)],
    ["v5 password without user name is allowed", 5, conn(5, 0x42, "c", str("pw")), "ok"],
    ["truncated before the level", 4, pkt(0x10, str("MQTT")), raw("close", RC.MALFORMED_PACKET)],
  ]);
  t.equal(v5ToV3Connack(RC.UNSUPPORTED_PROTOCOL_VERSION), 0x01, "0x84 is sent as 3.1.1 return code 1");
});

t.test("C4, C5, C6, C7: client identifiers", async (t) => {
  table(t, [
    ["C4 v4 empty id, clean 0: CONNACK 0x85 (3.1.1: 0x02)", 4, conn(4, 0x00, ""), rules("connack", RC.CLIENT_IDENTIFIER_NOT_VALID)],
    ["C5 v4 empty id, clean 1", 4, conn(4, 0x02, ""), "ok"],
    ["C5 v5 empty id, clean start 1", 5, conn(5, 0x02, ""), "ok"],
    ["v5 empty id, clean start 0 (MQTT-3.1.3-6/7: assign one)", 5, conn(5, 0x00, ""), "ok"],
    ["MQTT 3.1 empty id", 3, conn(3, 0x02, ""), rules("connack", RC.CLIENT_IDENTIFIER_NOT_VALID)],
    ["C6 id at the cap", 4, conn(4, 0x02, "x".repeat(64)), "ok"],
    ["C6 id over the cap", 4, conn(4, 0x02, "x".repeat(65)), rules("connack", RC.CLIENT_IDENTIFIER_NOT_VALID)],
    ["C6 id over the cap in UTF-8 bytes", 5, conn(5, 0x02, "é".repeat(33)), rules("connack", RC.CLIENT_IDENTIFIER_NOT_VALID)],
    ["C6 id with +", 4, conn(4, 0x02, "a+b"), rules("connack", RC.CLIENT_IDENTIFIER_NOT_VALID)],
    ["C6 id with #", 5, conn(5, 0x02, "#"), rules("connack", RC.CLIENT_IDENTIFIER_NOT_VALID)],
    ["C6 id with /", 4, conn(4, 0x02, "a/b"), rules("connack", RC.CLIENT_IDENTIFIER_NOT_VALID)],
    ["C7 id __proto__", 4, conn(4, 0x02, "__proto__"), "ok"],
    ["C7 id constructor", 5, conn(5, 0x02, "constructor"), "ok"],
    ["B2 id with U+0000: stopped before parsing", 4, conn(4, 0x02, "a\u0000b"), { stage: "wire", reason: RC.MALFORMED_PACKET }],
    ["B1 id with a surrogate", 4, pkt(0x10, str("MQTT"), 4, 0x02, [0, 60], [0, 3], "eda080"), { stage: "wire", reason: RC.MALFORMED_PACKET }],
  ]);
  t.equal(v5ToV3Connack(RC.CLIENT_IDENTIFIER_NOT_VALID), 0x02);
});

t.test("will topic and v5 CONNECT properties", async (t) => {
  table(t, [
    ["will topic a/#, v4: close (3.1.1 has no code)", 4, conn(4, 0x06, "c", str("a/#"), str("p")), rules("close", RC.TOPIC_NAME_INVALID)],
    ["will topic a/#, v5: CONNACK 0x90", 5, conn(5, 0x06, "c", [0], str("a/#"), str("p")), rules("connack", RC.TOPIC_NAME_INVALID)],
    ["D6 will topic with 33 levels", 5, conn(5, 0x06, "c", [0], str("a/".repeat(32) + "a"), str("p")), rules("connack", RC.TOPIC_NAME_INVALID)],
    ["empty will topic", 4, conn(4, 0x06, "c", str(""), str("p")), rules("close", RC.TOPIC_NAME_INVALID)],
    ["will response topic with wildcard", 5, conn(5, 0x06, "c", props(8, str("r/+")), str("w"), str("p")), rules("connack", RC.PROTOCOL_ERROR)],
    ["valid will", 5, conn(5, 0x26, "c", props(8, str("r/t")), str("w/t"), str("p")), "ok"],
    ["receive maximum 0", 5, pkt(0x10, str("MQTT"), 5, 0x02, [0, 60], props(33, [0, 0]), str("c")), rules("connack", RC.PROTOCOL_ERROR)],
    ["maximum packet size 0", 5, pkt(0x10, str("MQTT"), 5, 0x02, [0, 60], props(39, [0, 0, 0, 0]), str("c")), rules("connack", RC.PROTOCOL_ERROR)],
    ["authentication data without method", 5, pkt(0x10, str("MQTT"), 5, 0x02, [0, 60], props(22, str("d")), str("c")), rules("connack", RC.PROTOCOL_ERROR)],
  ]);
});

// --- D: PUBLISH ----------------------------------------------------------------------------------
const pub4 = (topic: string, qos = 0, id = 1) => (qos ? pkt(0x30 | (qos << 1), str(topic), [id >> 8, id & 255], "x") : pkt(0x30, str(topic), "x"));
const pub5 = (topic: string, pr: Buffer = props(), qos = 0, id = 1) =>
  qos ? pkt(0x30 | (qos << 1), str(topic), [id >> 8, id & 255], pr, "x") : pkt(0x30, str(topic), pr, "x");

t.test("D: PUBLISH rows", async (t) => {
  table(t, [
    ["valid topic", 4, pub4("a/b"), "ok"],
    ["D1 a/#, v4: close", 4, pub4("a/#"), rules("close", RC.TOPIC_NAME_INVALID)],
    ["D1 a/+/b, v4: close", 4, pub4("a/+/b"), rules("close", RC.TOPIC_NAME_INVALID)],
    ["D1 #, v5: DISCONNECT 0x90", 5, pub5("#"), rules("disconnect", RC.TOPIC_NAME_INVALID)],
    ["D2 empty topic, v4", 4, pub4(""), rules("close", RC.PROTOCOL_ERROR)],
    ["D2 empty topic, v5 without alias: 0x82", 5, pub5(""), rules("disconnect", RC.PROTOCOL_ERROR)],
    ["D2 empty topic, v5 with alias: passes to alias resolution", 5, pub5("", props(35, [0, 1])), "ok"],
    ["D3 alias 0: 0x94", 5, pub5("a", props(35, [0, 0])), rules("disconnect", RC.TOPIC_ALIAS_INVALID)],
    ["D3 alias above the maximum: 0x94", 5, pub5("a", props(35, [0, 11])), rules("disconnect", RC.TOPIC_ALIAS_INVALID)],
    ["D3 alias at the maximum", 5, pub5("a", props(35, [0, 10])), "ok"],
    ["D5 QoS 1 with packet id 0, v4: close", 4, pub4("a", 1, 0), rules("close", RC.PROTOCOL_ERROR)],
    ["D5 QoS 2 with packet id 0, v5", 5, pub5("a", props(), 2, 0), rules("disconnect", RC.PROTOCOL_ERROR)],
    ["D6 32 levels", 4, pub4("a/".repeat(31) + "a"), "ok"],
    ["D6 33 levels", 4, pub4("a/".repeat(32) + "a"), rules("close", RC.TOPIC_NAME_INVALID)],
    ["D6 10,000 levels", 5, pub5("/".repeat(9_999)), rules("disconnect", RC.TOPIC_NAME_INVALID)],
    ["D8 $foo/bar is a topic like any other", 4, pub4("$foo/bar"), "ok"],
    ["D11 subscription identifier from a client", 5, pub5("a", props(11, 1)), rules("disconnect", RC.PROTOCOL_ERROR)],
    ["D13 response topic with a wildcard", 5, pub5("a", props(8, str("r/#"))), rules("disconnect", RC.PROTOCOL_ERROR)],
    ["D13 valid response topic", 5, pub5("a", props(8, str("r/t"))), "ok"],
    ["B2 topic with U+0000", 4, pub4("a\u0000b"), { stage: "wire", reason: RC.MALFORMED_PACKET }],
    ["B1 topic with an overlong sequence", 4, pkt(0x30, [0, 3], "61c0af", "x"), { stage: "wire", reason: RC.MALFORMED_PACKET }],
    ["PUBACK with packet id 0", 4, pkt(0x40, [0, 0]), rules("close", RC.PROTOCOL_ERROR)],
    ["PUBREL with packet id 0, v5", 5, pkt(0x62, [0, 0]), rules("disconnect", RC.PROTOCOL_ERROR)],
    ["PUBCOMP", 4, pkt(0x70, [0, 5]), "ok"],
  ]);
});

t.test("D3 with aliases disabled, D4 alias resolution", async (t) => {
  const p = parseOne(pub5("a/b", props(35, [0, 1])), 5) as IPublishPacket;
  const v = checkPacket(p, 5, RULES, { ...LIMITS, topicAliasMaximum: 0 }, []);
  t.match(v, { ok: false, reason: RC.TOPIC_ALIAS_INVALID }, "any alias when the maximum is 0");

  const aliases = new Map<number, string>();
  const unmapped = parseOne(pub5("", props(35, [0, 2])), 5) as IPublishPacket;
  t.same(applyTopicAlias(unmapped, aliases), { ok: false, action: "disconnect", reason: RC.PROTOCOL_ERROR, message: "topic alias 2 has no mapping" }, "D4");
  t.equal(applyTopicAlias(p, aliases), PASS, "a topic with an alias defines it");
  t.equal(aliases.get(1), "a/b");
  const use = parseOne(pub5("", props(35, [0, 1])), 5) as IPublishPacket;
  t.equal(applyTopicAlias(use, aliases), PASS);
  t.equal(use.topic, "a/b", "empty topic replaced by the mapping");
  const redefine = parseOne(pub5("c", props(35, [0, 1])), 5) as IPublishPacket;
  applyTopicAlias(redefine, aliases);
  t.equal(aliases.get(1), "c", "remapped");
  const plain = parseOne(pub5("d"), 5) as IPublishPacket;
  t.equal(applyTopicAlias(plain, aliases), PASS, "no alias: nothing to do");
});

// --- E: SUBSCRIBE / UNSUBSCRIBE -----------------------------------------------------------------
const sub4 = (...filters: [string, number][]) => pkt(0x82, [0, 1], ...filters.flatMap(([f, o]) => [str(f), o]));
const sub5 = (...filters: [string, number][]) => pkt(0x82, [0, 1], [0], ...filters.flatMap(([f, o]) => [str(f), o]));

t.test("E1, E2, E4 (3.1.1 policy: close) and packet ids", async (t) => {
  table(t, [
    ["E1 SUBSCRIBE without filters, v4", 4, pkt(0x82, [0, 1]), rules("close", RC.PROTOCOL_ERROR)],
    ["E1 SUBSCRIBE without filters, v5", 5, pkt(0x82, [0, 1], [0]), rules("disconnect", RC.PROTOCOL_ERROR)],
    ["E1 UNSUBSCRIBE without filters, v4", 4, pkt(0xa2, [0, 1]), rules("close", RC.PROTOCOL_ERROR)],
    ["E1 UNSUBSCRIBE without filters, v5", 5, pkt(0xa2, [0, 1], [0]), rules("disconnect", RC.PROTOCOL_ERROR)],
    ["SUBSCRIBE packet id 0", 4, pkt(0x82, [0, 0], str("a"), 0), rules("close", RC.PROTOCOL_ERROR)],
    ["UNSUBSCRIBE packet id 0", 5, pkt(0xa2, [0, 0], [0], str("a")), rules("disconnect", RC.PROTOCOL_ERROR)],
    ["subscription identifier 0", 5, pkt(0x82, [0, 1], props(11, 0), str("a"), 0), rules("disconnect", RC.PROTOCOL_ERROR)],
    ["valid filters", 4, sub4(["a/+/c", 1], ["#", 0], ["+", 2], ["$SYS/#", 0]), "ok"],
    ["E2 a/#/b, v4: close", 4, sub4(["ok", 0], ["a/#/b", 0]), rules("close", RC.TOPIC_FILTER_INVALID)],
    ["E2 a#, v4", 4, sub4(["a#", 0]), rules("close", RC.TOPIC_FILTER_INVALID)],
    ["E2 a+, v4", 4, sub4(["a+", 0]), rules("close", RC.TOPIC_FILTER_INVALID)],
    ["E2 +a, v4", 4, sub4(["+a", 0]), rules("close", RC.TOPIC_FILTER_INVALID)],
    ["E2 empty filter, v4", 4, sub4(["", 0]), rules("close", RC.TOPIC_FILTER_INVALID)],
    ["E4 $share/ab, v4", 4, sub4(["$share/ab", 0]), rules("close", RC.TOPIC_FILTER_INVALID)],
    ["E2 UNSUBSCRIBE a/#/b, v4", 4, pkt(0xa2, [0, 1], str("a/#/b")), rules("close", RC.TOPIC_FILTER_INVALID)],
    ["D6 filter with 33 levels, v4", 4, sub4(["a/".repeat(32) + "#", 0]), rules("close", RC.TOPIC_FILTER_INVALID)],
    ["E3 reserved option bits: stopped on the raw bytes", 4, sub4(["a", 0x04]), { stage: "wire", reason: RC.MALFORMED_PACKET }],
    ["E3 QoS 3", 5, sub5(["a", 0x03]), { stage: "wire", reason: RC.MALFORMED_PACKET }],
    ["E3 retain handling 3", 5, sub5(["a", 0x30]), { stage: "wire", reason: RC.PROTOCOL_ERROR }],
    ["E4 no local on a shared subscription: 0x82", 5, sub5(["$share/g/x", 0x04]), rules("disconnect", RC.PROTOCOL_ERROR)],
    ["E6 __proto__ filter", 5, sub5(["__proto__", 0]), "ok"],
  ]);
});

t.test("E2, E4 under v5 (policy: SUBACK/UNSUBACK 0x8F per filter, the rest go on)", async (t) => {
  const filters = ["a/#/b", "ok/+", "a#", "a+", "+a", "$share/ab", "$share//x", "$share/a+b/x", "$share/g/", "$share/g/a/+", "$sharex/y", "a/".repeat(32) + "a"];
  const failures: number[] = [9, 9, 9];
  t.equal(gate(sub5(...filters.map((f): [string, number] => [f, 1])), 5, failures), "ok");
  t.same(failures, [0x8f, 0, 0x8f, 0x8f, 0x8f, 0x8f, 0x8f, 0x8f, 0x8f, 0, 0, 0x8f]);
  const unsub: number[] = [];
  t.equal(gate(pkt(0xa2, [0, 1], [0], ...filters.map(str)), 5, unsub), "ok");
  t.same(unsub, failures, "UNSUBSCRIBE the same");
});

t.test("checkSubscribe on objects (values mqtt-packet would not produce)", async (t) => {
  const base: ISubscribePacket = { cmd: "subscribe", messageId: 1, subscriptions: [] };
  const f: number[] = [];
  t.match(checkSubscribe({ ...base, subscriptions: [{ topic: "a", qos: 3 as 0 }] }, 4, RULES, f), { action: "close", reason: RC.MALFORMED_PACKET });
  t.match(checkSubscribe({ ...base, subscriptions: [{ topic: "a", qos: 0, rh: 3 }] }, 5, RULES, f), { action: "disconnect", reason: RC.PROTOCOL_ERROR });
  t.equal(checkSubscribe({ ...base, subscriptions: [{ topic: "$share/g/a", qos: 0, nl: true }] }, 4, RULES, f), PASS, "no-local is a v5 option only");
});

// --- reason codes --------------------------------------------------------------------------------
t.test("reason codes: v5 to 3.1.1 mappings and names", async (t) => {
  const rows: [number, number | undefined][] = [
    [RC.SUCCESS, 0],
    [RC.UNSUPPORTED_PROTOCOL_VERSION, 1],
    [RC.CLIENT_IDENTIFIER_NOT_VALID, 2],
    [RC.SERVER_UNAVAILABLE, 3],
    [RC.SERVER_BUSY, 3],
    [RC.QUOTA_EXCEEDED, 3],
    [RC.BAD_USERNAME_OR_PASSWORD, 4],
    [RC.NOT_AUTHORIZED, 5],
    [RC.BANNED, 5],
    [RC.MALFORMED_PACKET, undefined],
    [RC.PROTOCOL_ERROR, undefined],
    [RC.TOPIC_NAME_INVALID, undefined],
    [RC.PACKET_TOO_LARGE, undefined],
  ];
  for (const [v5, v3] of rows) t.equal(v5ToV3Connack(v5), v3, reasonName(v5));
  t.equal(v5ToV3Suback(RC.GRANTED_QOS_2), 2);
  t.equal(v5ToV3Suback(RC.TOPIC_FILTER_INVALID), 0x80);
  t.equal(reasonName(0x81), "MALFORMED_PACKET (0x81)");
  t.equal(reasonName(0x00), "SUCCESS (0x00)");
  t.equal(reasonName(0x7f), "0x7f");
  const spot: [keyof typeof RC, number][] = [
    ["MALFORMED_PACKET", 0x81], ["PROTOCOL_ERROR", 0x82], ["PACKET_TOO_LARGE", 0x95], ["TOPIC_NAME_INVALID", 0x90],
    ["TOPIC_ALIAS_INVALID", 0x94], ["RECEIVE_MAXIMUM_EXCEEDED", 0x93], ["SESSION_TAKEN_OVER", 0x8e], ["QUOTA_EXCEEDED", 0x97],
    ["KEEP_ALIVE_TIMEOUT", 0x8d], ["SHARED_SUBS_NOT_SUPPORTED", 0x9e], ["SUBSCRIPTION_IDS_NOT_SUPPORTED", 0xa1],
    ["WILDCARD_SUBS_NOT_SUPPORTED", 0xa2], ["NO_MATCHING_SUBSCRIBERS", 0x10], ["NO_SUBSCRIPTION_EXISTED", 0x11],
    ["DISCONNECT_WITH_WILL", 0x04], ["MAXIMUM_CONNECT_TIME", 0xa0], ["PAYLOAD_FORMAT_INVALID", 0x99],
  ];
  for (const [name, code] of spot) t.equal(RC[name], code, name);
});

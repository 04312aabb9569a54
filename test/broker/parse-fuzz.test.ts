// Property test of the whole inbound gate (checklist "Property-based check"): valid packets encoded
// by mqtt-packet for 3.1.1 and 5, then up to 4 byte mutations and an optional truncation, fed in
// random chunk sizes through framer -> checkConnectRaw -> wire-strings -> mqtt-packet -> packet-rules.
// Properties: nothing throws; the framer never holds a packet's worth beyond the cap; a reused
// parser still parses a known packet afterwards; a PUBLISH topic that passed the string gate decodes
// losslessly (no U+FFFD substitution). Fixed seed, bounded runs: deterministic and a few seconds.
import fc from "fast-check";
import mqtt from "mqtt-packet";
import t from "tap";
import { createFramer, fixedHeaderLength, isFrameError, type ProtocolLevel } from "../../hub/broker/framing.js";
import { checkConnectRaw, checkPacket, type RuleLimits, type TopicRules } from "../../hub/broker/packet-rules.js";
import { createPacketParser, isParseFault } from "../../hub/broker/parse.js";
import { validTopicFilter, validTopicName } from "../../hub/broker/topics.js";
import { checkWireStrings } from "../../hub/broker/wire-strings.js";
import { canonical } from "../support/packet-reference.js";

const SEED = 20_260_512;
const RUNS = 20_000;
const MAX_PACKET = 2048;
const TOPIC_LIMITS = { maxLength: 65_535, maxLevels: 32 };
const RULES: TopicRules = {
  validName: (s) => validTopicName(s, TOPIC_LIMITS),
  validFilter: (s) => validTopicFilter(s, TOPIC_LIMITS),
};
const LIMITS: RuleLimits = { maxClientIdLength: 64, topicAliasMaximum: 10 };

// --- packet arbitraries --------------------------------------------------------------------------
const text = fc.oneof(
  fc.constantFrom("", "a", "a/b", "a/+", "#", "$share/g/x", "$SYS/x", "é/😀", "__proto__", "a\u0000b"),
  fc.string({ maxLength: 12 }),
  fc.string({ unit: "binary", maxLength: 8 }),
);
const bytesArb = fc.uint8Array({ maxLength: 24 }).map((u) => Buffer.from(u));
const qos = fc.constantFrom(0, 1, 2) as fc.Arbitrary<0 | 1 | 2>;
const id = fc.integer({ min: 0, max: 65_535 });
const userProps = fc.option(fc.dictionary(fc.string({ maxLength: 4 }), fc.string({ maxLength: 4 }), { maxKeys: 3 }), { nil: undefined });

function packetArb(level: ProtocolLevel): fc.Arbitrary<mqtt.Packet> {
  const v5 = level === 5;
  const pubProps = fc.record(
    {
      payloadFormatIndicator: fc.boolean(),
      messageExpiryInterval: fc.nat(),
      topicAlias: fc.integer({ min: 0, max: 20 }),
      responseTopic: text,
      correlationData: bytesArb,
      contentType: text,
      userProperties: userProps,
    },
    { requiredKeys: [] },
  );
  const connect = fc.record({
    cmd: fc.constant("connect" as const),
    protocolId: fc.constant(level === 3 ? ("MQIsdp" as const) : ("MQTT" as const)),
    protocolVersion: fc.constant(level),
    clientId: text,
    clean: fc.boolean(),
    keepalive: id,
    username: fc.option(text, { nil: undefined }),
    password: fc.option(bytesArb, { nil: undefined }),
    will: fc.option(
      fc.record({ topic: text, payload: bytesArb, qos, retain: fc.boolean(), ...(v5 ? { properties: pubProps } : {}) }),
      { nil: undefined },
    ),
    ...(v5
      ? { properties: fc.record({ sessionExpiryInterval: fc.nat(), receiveMaximum: id, maximumPacketSize: fc.nat(), userProperties: userProps }, { requiredKeys: [] }) }
      : {}),
  });
  const publish = fc.record({
    cmd: fc.constant("publish" as const),
    topic: text,
    payload: bytesArb,
    qos,
    retain: fc.boolean(),
    dup: fc.boolean(),
    messageId: id,
    ...(v5 ? { properties: pubProps } : {}),
  });
  const subscribe = fc.record({
    cmd: fc.constant("subscribe" as const),
    messageId: id,
    subscriptions: fc.array(
      fc.record({ topic: text, qos, ...(v5 ? { nl: fc.boolean(), rap: fc.boolean(), rh: fc.constantFrom(0, 1, 2) } : {}) }),
      { minLength: 1, maxLength: 3 },
    ),
    ...(v5 ? { properties: fc.record({ subscriptionIdentifier: fc.integer({ min: 0, max: 300 }), userProperties: userProps }, { requiredKeys: [] }) } : {}),
  });
  const unsubscribe = fc.record({
    cmd: fc.constant("unsubscribe" as const),
    messageId: id,
    unsubscriptions: fc.array(text, { minLength: 1, maxLength: 3 }),
    ...(v5 ? { properties: fc.record({ userProperties: userProps }, { requiredKeys: [] }) } : {}),
  });
  const ack = fc.record({
    cmd: fc.constantFrom("puback" as const, "pubrec" as const, "pubrel" as const, "pubcomp" as const),
    messageId: id,
    ...(v5 ? { reasonCode: fc.constantFrom(0, 0x10, 0x80, 0x92), properties: fc.record({ reasonString: text, userProperties: userProps }, { requiredKeys: [] }) } : {}),
  });
  const simple: fc.Arbitrary<mqtt.Packet>[] = [fc.constant({ cmd: "pingreq" as const }), fc.constant({ cmd: "disconnect" as const })];
  if (v5) {
    simple.push(
      fc.record({ cmd: fc.constant("disconnect" as const), reasonCode: fc.constantFrom(0, 4, 0x81), properties: fc.record({ reasonString: text, serverReference: text }, { requiredKeys: [] }) }),
      fc.record({ cmd: fc.constant("auth" as const), reasonCode: fc.constantFrom(0, 0x18, 0x19), properties: fc.record({ authenticationMethod: text, authenticationData: bytesArb }, { requiredKeys: [] }) }),
    );
  }
  return fc.oneof(
    connect as fc.Arbitrary<mqtt.Packet>,
    publish as fc.Arbitrary<mqtt.Packet>,
    subscribe as fc.Arbitrary<mqtt.Packet>,
    unsubscribe as fc.Arbitrary<mqtt.Packet>,
    ack as fc.Arbitrary<mqtt.Packet>,
    ...simple,
  );
}

const caseArb = fc
  .constantFrom(3, 4, 5, 5)
  .chain((level) =>
    fc.record({
      level: fc.constant(level as ProtocolLevel),
      packet: packetArb(level as ProtocolLevel),
      mutations: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
      truncate: fc.option(fc.nat(), { nil: undefined }),
      chunk: fc.integer({ min: 1, max: 64 }),
      second: fc.boolean(), // also pipeline a known-good PINGREQ after it
    }),
  );

// --- the pipeline --------------------------------------------------------------------------------
const CONNECT: Record<ProtocolLevel, Buffer> = {
  3: mqtt.generate({ cmd: "connect", protocolId: "MQIsdp", protocolVersion: 3, clientId: "fuzz", clean: true, keepalive: 0 }),
  4: mqtt.generate({ cmd: "connect", protocolId: "MQTT", protocolVersion: 4, clientId: "fuzz", clean: true, keepalive: 0 }),
  5: mqtt.generate({ cmd: "connect", protocolId: "MQTT", protocolVersion: 5, clientId: "fuzz", clean: true, keepalive: 0 }),
};
const PROBE = Buffer.from("3004000161 00".replace(/\s/g, ""), "hex"); // v4 PUBLISH "a", payload 00

const stats = { generated: 0, encodeFailed: 0, frames: 0, frameErrors: 0, rawRejects: 0, wireRejects: 0, parseFaults: 0, verdicts: 0, rejected: 0 };

t.test(`gate never throws and stays bounded (${RUNS} cases, seed ${SEED})`, async (t) => {
  const parser = createPacketParser(); // deliberately shared by every case: must survive them all
  const failures: number[] = [];
  fc.assert(
    fc.property(caseArb, ({ level, packet, mutations, truncate, chunk, second }) => {
      let buf: Buffer;
      try {
        buf = Buffer.from(mqtt.generate(packet, { protocolVersion: level }));
      } catch {
        stats.encodeFailed++;
        return; // mqtt-packet refused to encode it: not an input
      }
      stats.generated++;
      for (const [pos, byte] of mutations) if (buf.length > 0) buf[pos % buf.length] = byte;
      if (truncate !== undefined) buf = buf.subarray(0, truncate % (buf.length + 1));

      const framer = createFramer({ maxPacketSize: MAX_PACKET });
      // A CONNECT case starts a fresh connection; anything else follows an accepted CONNECT.
      let stream = buf;
      if (packet.cmd !== "connect") stream = Buffer.concat([CONNECT[level], buf]);
      if (second) stream = Buffer.concat([stream, Buffer.from([0xc0, 0x00])]);
      let cur = level;
      let stopped = false;
      for (let i = 0; i < stream.length && !stopped; i += chunk) {
        framer.push(stream.subarray(i, i + chunk));
        for (let f = framer.next(); f !== undefined && !stopped; f = framer.next()) {
          if (isFrameError(f)) {
            stats.frameErrors++;
            stopped = true;
            break;
          }
          stats.frames++;
          if (f.length > MAX_PACKET) throw new Error(`framer yielded ${f.length} bytes`);
          if (f[0]! >> 4 === 1) {
            const raw = checkConnectRaw(f);
            if (!raw.ok) {
              stats.rawRejects++;
              stopped = true;
              break;
            }
          }
          const w = checkWireStrings(f, cur, 16);
          if (w) {
            stats.wireRejects++;
            stopped = true;
            break;
          }
          const p = parser.parse(f, cur);
          if (isParseFault(p)) {
            stats.parseFaults++;
            stopped = true;
            break;
          }
          if (p.cmd === "publish" && p.topic.length > 0) {
            // Lossless: the topic that passed the gate is exactly the raw bytes.
            const h = fixedHeaderLength(f);
            const rawTopic = f.subarray(h + 2, h + 2 + f.readUInt16BE(h));
            if (!Buffer.from(p.topic, "utf8").equals(rawTopic)) throw new Error("topic changed in decoding");
          }
          const v = checkPacket(p, cur, RULES, LIMITS, failures);
          stats.verdicts++;
          if (!v.ok) {
            stats.rejected++;
            stopped = true;
            break;
          }
          if (p.cmd === "connect") {
            cur = (p.protocolVersion ?? 4) as ProtocolLevel;
            framer.setProtocol(cur);
            framer.setConnected();
          }
        }
        // After draining, at most one incomplete packet (under the cap) is held.
        if (framer.buffered >= MAX_PACKET) throw new Error(`framer holds ${framer.buffered} bytes`);
      }
      // The shared parser is still clean.
      const probe = parser.parse(PROBE, 4);
      if (isParseFault(probe) || probe.cmd !== "publish" || probe.topic !== "a") throw new Error("parser left dirty");
    }),
    { seed: SEED, numRuns: RUNS, endOnFailure: true },
  );
  t.comment(`stats: ${JSON.stringify(stats)}`);
  t.ok(stats.generated > RUNS * 0.9, "most cases encoded");
  // Every stage saw work, so the property exercised the whole gate rather than one early exit.
  t.ok(stats.frameErrors > 0 && stats.rawRejects > 0 && stats.wireRejects > 0 && stats.parseFaults > 0 && stats.rejected > 0, "every stage rejected something");
  t.ok(stats.verdicts - stats.rejected > RUNS / 4, "many packets pass the whole gate");
});

// --- the fast path changes no verdict ------------------------------------------------------------
// The same mutated streams through the gate twice: with parse.ts's fast decoders (PUBLISH, acks,
// PINGREQ, CONNECT, SUBSCRIBE, UNSUBSCRIBE) and with mqtt-packet alone. Every stage's outcome, the
// reason codes, and the decoded packets themselves must be identical.
function gateOutcomes(stream: Buffer, level: ProtocolLevel, parser: ReturnType<typeof createPacketParser>): string[] {
  const out: string[] = [];
  const failures: number[] = [];
  const framer = createFramer({ maxPacketSize: MAX_PACKET });
  framer.push(stream);
  let cur = level;
  for (let f = framer.next(); f !== undefined; f = framer.next()) {
    if (isFrameError(f)) return [...out, `frame ${f.reason}`];
    if (f[0]! >> 4 === 1) {
      const raw = checkConnectRaw(f);
      if (!raw.ok) return [...out, `raw ${raw.action} ${raw.reason}`];
    }
    const w = checkWireStrings(f, cur, 16);
    if (w) return [...out, `strings ${w.reason}`];
    const p = parser.parse(f, cur);
    if (isParseFault(p)) return [...out, `parse ${p.reason}`];
    const v = checkPacket(p, cur, RULES, LIMITS, failures);
    out.push(`${JSON.stringify(canonical(p))} ${v.ok ? "ok" : `${v.action} ${v.reason}`} ${failures.slice(0, packetFilters(p)).join(",")}`);
    if (!v.ok) return out;
    if (p.cmd === "connect") {
      cur = (p.protocolVersion ?? 4) as ProtocolLevel;
      framer.setProtocol(cur);
      framer.setConnected();
    }
  }
  return out;
}

function packetFilters(p: mqtt.Packet): number {
  if (p.cmd === "subscribe") return p.subscriptions.length;
  if (p.cmd === "unsubscribe") return p.unsubscriptions.length;
  return 0;
}

t.test("the fast path changes no verdict of the gate (mutated packets, seed 20260513)", async (t) => {
  const withFast = createPacketParser();
  const without = createPacketParser({ fastPath: false });
  let compared = 0;
  fc.assert(
    fc.property(caseArb, ({ level, packet, mutations, truncate, second }) => {
      let buf: Buffer;
      try {
        buf = Buffer.from(mqtt.generate(packet, { protocolVersion: level }));
      } catch {
        return true;
      }
      for (const [pos, byte] of mutations) if (buf.length > 0) buf[pos % buf.length] = byte;
      if (truncate !== undefined) buf = buf.subarray(0, truncate % (buf.length + 1));
      let stream = packet.cmd === "connect" ? buf : Buffer.concat([CONNECT[level], buf]);
      if (second) stream = Buffer.concat([stream, Buffer.from([0xc0, 0x00])]);
      const a = gateOutcomes(stream, level, withFast);
      const b = gateOutcomes(stream, level, without);
      compared += a.length;
      if (JSON.stringify(a) === JSON.stringify(b)) return true;
      t.same(a, b); // shows the difference
      return false;
    }),
    { seed: 20_260_513, numRuns: 8000, endOnFailure: true },
  );
  t.ok(compared > 8000, `packets compared (${compared})`);
});

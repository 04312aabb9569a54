// The fast PUBLISH encoder must produce exactly what mqtt-packet's generator produces.
import fc from "fast-check";
import mqtt from "mqtt-packet";
import t from "tap";
import { encodePublish, type RoutedMessage } from "../../hub/broker/publish-encode.js";

t.test("encodePublish matches mqtt-packet for every QoS, flag and size", async (t) => {
  fc.assert(
    fc.property(
      fc.string({ minLength: 1, maxLength: 40, unit: "grapheme" }),
      fc.uint8Array({ maxLength: 300 }),
      fc.constantFrom(0, 1, 2),
      fc.boolean(),
      fc.boolean(),
      fc.integer({ min: 1, max: 65535 }),
      fc.constantFrom(3, 4, 5),
      (topic, payload, qos, retain, dup, messageId, protocolVersion) => {
        const m: RoutedMessage = { topic, payload: Buffer.from(payload), qos: qos as 0 | 1 | 2, retain };
        const opts = { qos: qos as 0 | 1 | 2, retain, dup: qos > 0 && dup, messageId, protocolVersion: protocolVersion as 3 | 4 | 5, now: 0 };
        // Encode twice: the second call takes the cached template path.
        encodePublish(m, opts);
        const ours = encodePublish(m, opts);
        const ref = mqtt.generate(
          { cmd: "publish", topic, payload: m.payload, qos: opts.qos, retain, dup: opts.dup, messageId: qos > 0 ? messageId : undefined },
          { protocolVersion: opts.protocolVersion },
        );
        return ours.equals(ref);
      },
    ),
    { seed: 42, numRuns: 2000 },
  );
  t.pass("2000 cases agree");
});

t.test("a QoS 1 delivery does not modify the shared QoS 0 encoding", async (t) => {
  const m: RoutedMessage = { topic: "a/b", payload: Buffer.from("x"), qos: 1, retain: false };
  const base = { retain: false, dup: false, protocolVersion: 4 as const, now: 0 };
  const q0 = Buffer.from(encodePublish(m, { ...base, qos: 0, messageId: 0 }));
  const a = encodePublish(m, { ...base, qos: 1, messageId: 7 });
  const b = encodePublish(m, { ...base, qos: 1, messageId: 8 });
  t.not(a, b, "separate buffers per delivery");
  t.equal(a.readUInt16BE(a.length - 3), 7);
  t.equal(b.readUInt16BE(b.length - 3), 8);
  t.same(encodePublish(m, { ...base, qos: 0, messageId: 0 }), q0);
});

t.test("v5 properties, subscription ids and aliases go through the generator", async (t) => {
  const m: RoutedMessage = { topic: "t", payload: Buffer.from("p"), qos: 1, retain: false, properties: { contentType: "text/plain" } };
  const buf = encodePublish(m, { qos: 1, retain: false, dup: false, messageId: 3, protocolVersion: 5, now: 0, subscriptionIds: [4, 5], topicAlias: 2 });
  const parser = mqtt.parser({ protocolVersion: 5 });
  let got: mqtt.IPublishPacket | undefined;
  parser.on("packet", (p) => {
    got = p as mqtt.IPublishPacket;
  });
  parser.parse(buf);
  t.equal(got?.properties?.contentType, "text/plain");
  t.same(got?.properties?.subscriptionIdentifier, [4, 5]);
  t.equal(got?.properties?.topicAlias, 2);
});

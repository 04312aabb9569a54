// MQTT 5 features end to end with the real `mqtt` client: properties forwarded, Message Expiry,
// topic aliases both ways, Retain Handling / Retain As Published / No Local, shared subscriptions,
// subscription identifiers, Receive Maximum, Maximum Packet Size, Will Delay, Session Expiry.
import mqtt from "mqtt";
import t from "tap";
import { startBroker } from "../support/broker.js";
import { fakeClock } from "../support/fake-clock.js";
import { closed, collect, connect, end } from "../support/mqtt.js";

const v5 = { protocolVersion: 5 as const };

t.test("v5 properties are forwarded unchanged", async (t) => {
  const b = await startBroker();
  t.teardown(b.stop);
  const sub = await connect(b.url, v5);
  const pub = await connect(b.url, v5);
  const rx = collect(sub);
  await sub.subscribeAsync("p", { qos: 1 });
  await pub.publishAsync("p", "{}", {
    qos: 1,
    properties: {
      userProperties: { room: "kitchen", tags: ["a", "b"] },
      responseTopic: "reply/here",
      correlationData: Buffer.from([1, 2, 3]),
      contentType: "application/json",
      payloadFormatIndicator: true,
    },
  });
  const [m] = await rx.count(1);
  t.same(m!.packet.properties?.userProperties, { room: "kitchen", tags: ["a", "b"] });
  t.equal(m!.packet.properties?.responseTopic, "reply/here");
  t.same([...(m!.packet.properties?.correlationData ?? [])], [1, 2, 3]);
  t.equal(m!.packet.properties?.contentType, "application/json");
  t.equal(m!.packet.properties?.payloadFormatIndicator, true);
  await end(sub, pub);
});

t.test("Message Expiry: decremented when forwarded, expired messages not delivered", async (t) => {
  const clock = fakeClock();
  const b = await startBroker({ clock });
  t.teardown(b.stop);
  const pub = await connect(b.url, v5);
  const offline = { ...v5, clientId: "sleeper", clean: false, properties: { sessionExpiryInterval: 3600 } };
  const s1 = await connect(b.url, offline);
  await s1.subscribeAsync("e/#", { qos: 1 });
  await s1.endAsync();
  await pub.publishAsync("e/short", "x", { qos: 1, properties: { messageExpiryInterval: 5 } });
  await pub.publishAsync("e/long", "y", { qos: 1, properties: { messageExpiryInterval: 60 } });
  await pub.publishAsync("e/r", "z", { qos: 1, retain: true, properties: { messageExpiryInterval: 5 } });
  clock.advance(10_000);
  const s2 = mqtt.connect(b.url, { ...offline, reconnectPeriod: 0 });
  const rx = collect(s2);
  const [m] = await rx.count(1);
  t.equal(m!.topic, "e/long", "the expired queued message was dropped");
  t.equal(m!.packet.properties?.messageExpiryInterval, 50, "60 s minus the 10 s it waited");
  const late = await connect(b.url, v5);
  const lrx = collect(late);
  await late.subscribeAsync("e/#", { qos: 1 });
  await pub.publishAsync("e/marker", "m", { qos: 1 });
  const got = await lrx.count(1);
  t.same(got.map((g) => g.topic), ["e/marker"], "the expired retained message is not delivered");
  await end(pub, s2, late);
});

t.test("topic aliases: inbound up to the maximum we announce, outbound when the client allows", async (t) => {
  const b = await startBroker({ limits: { topicAliasMaximum: 4 } });
  t.teardown(b.stop);
  const sub = await connect(b.url, { ...v5, properties: { topicAliasMaximum: 2 } });
  const rx = collect(sub);
  await sub.subscribeAsync("alias/#", { qos: 0 });
  // Raw-ish: the mqtt client lets us set the alias ourselves.
  const pub = await connect(b.url, v5);
  await pub.publishAsync("alias/long/topic/name", "1", { properties: { topicAlias: 1 } });
  await pub.publishAsync("", "2", { properties: { topicAlias: 1 } });
  await pub.publishAsync("alias/other", "3");
  await pub.publishAsync("alias/third", "4");
  const got = await rx.count(4);
  t.same(got.map((m) => [m.topic, m.payload]), [
    ["alias/long/topic/name", "1"],
    ["alias/long/topic/name", "2"],
    ["alias/other", "3"],
    ["alias/third", "4"],
  ]);
  const aliases = got.map((m) => m.packet.properties?.topicAlias);
  t.same(aliases, [1, 1, 2, undefined], "broker assigned aliases 1 and 2, then ran out");
  // An alias above the maximum (DISCONNECT 0x94) is checked with raw bytes in checklist.test.ts (D3):
  // MQTT.js refuses to send one.
  await end(sub, pub);
});

t.test("Retain Handling 0/1/2 and Retain As Published", async (t) => {
  const b = await startBroker();
  t.teardown(b.stop);
  const pub = await connect(b.url, v5);
  await pub.publishAsync("rh/a", "kept", { qos: 1, retain: true });
  const sub = await connect(b.url, v5);
  const rx = collect(sub);
  await sub.subscribeAsync("rh/#", { qos: 1, rh: 2 });
  await sub.subscribeAsync("rh/+", { qos: 1, rh: 1 });
  await sub.subscribeAsync("rh/+", { qos: 1, rh: 1 }); // existing subscription: no resend
  await sub.subscribeAsync("rh/a", { qos: 1, rh: 0, rap: true });
  await pub.publishAsync("rh/a", "live", { qos: 1, retain: true });
  const got = await rx.count(3);
  t.same(got.map((m) => [m.payload, m.packet.retain]), [
    ["kept", true], // rh 1, new subscription
    ["kept", true], // rh 0
    ["live", true], // live message, rap on rh/a keeps RETAIN
  ]);
  await end(sub, pub);
});

t.test("No Local: a client does not get its own messages back on such a subscription", async (t) => {
  const b = await startBroker();
  t.teardown(b.stop);
  const c = await connect(b.url, v5);
  const other = await connect(b.url, v5);
  const rx = collect(c);
  await c.subscribeAsync("nl", { qos: 1, nl: true });
  await c.publishAsync("nl", "mine", { qos: 1 });
  await other.publishAsync("nl", "theirs", { qos: 1 });
  const got = await rx.count(1);
  t.same(got.map((m) => m.payload), ["theirs"]);
  await end(c, other);
});

t.test("shared subscriptions: round-robin within the group, every group gets one", async (t) => {
  const b = await startBroker();
  t.teardown(b.stop);
  const a1 = await connect(b.url, v5);
  const a2 = await connect(b.url, v5);
  const g2 = await connect(b.url, v5);
  const r1 = collect(a1);
  const r2 = collect(a2);
  const rg = collect(g2);
  await a1.subscribeAsync("$share/workers/jobs/#", { qos: 1 });
  await a2.subscribeAsync("$share/workers/jobs/#", { qos: 1 });
  await g2.subscribeAsync("$share/audit/jobs/#", { qos: 1 });
  const pub = await connect(b.url, v5);
  for (let i = 0; i < 6; i++) await pub.publishAsync(`jobs/${i}`, String(i), { qos: 1 });
  await rg.count(6);
  await r1.count(3);
  await r2.count(3);
  t.equal(r1.got.length + r2.got.length, 6, "each job once within the group");
  t.same(r1.got.map((m) => m.payload), ["0", "2", "4"]);
  await end(a1, a2, g2, pub);
});

t.test("overlapping subscriptions: one copy, highest QoS, every subscription identifier", async (t) => {
  const b = await startBroker();
  t.teardown(b.stop);
  const sub = await connect(b.url, v5);
  const rx = collect(sub);
  await sub.subscribeAsync("o/+", { qos: 0, properties: { subscriptionIdentifier: 7 } });
  await sub.subscribeAsync("o/#", { qos: 1, properties: { subscriptionIdentifier: 9 } });
  const pub = await connect(b.url, v5);
  await pub.publishAsync("o/x", "1", { qos: 2 });
  await pub.publishAsync("o/y/z", "2", { qos: 2 });
  const got = await rx.count(2);
  t.equal(got[0]!.packet.qos, 1);
  const ids = got[0]!.packet.properties?.subscriptionIdentifier;
  t.same([ids].flat().sort(), [7, 9]);
  t.same([got[1]!.packet.properties?.subscriptionIdentifier].flat(), [9]);
  t.equal(got.length, 2, "no duplicate copy");
  await end(sub, pub);
});

t.test("Receive Maximum: the broker keeps at most the client's limit in flight", async (t) => {
  const b = await startBroker();
  t.teardown(b.stop);
  const sub = await connect(b.url, { ...v5, clientId: "slow", properties: { receiveMaximum: 2 } });
  await sub.subscribeAsync("rm", { qos: 1 });
  const session = b.broker.core.sessions.get("slow")!;
  // Stop acknowledging: MQTT.js acks from handleMessage; hold them all.
  const held: Array<() => void> = [];
  sub.handleMessage = (_p, cb) => {
    held.push(() => cb());
  };
  const pub = await connect(b.url, v5);
  for (let i = 0; i < 5; i++) await pub.publishAsync("rm", String(i), { qos: 1 });
  // Routing is done by the time the publisher has its PUBACKs: the broker state is settled.
  t.equal(session.inflight.size, 2, "two in flight");
  t.equal(session.queue.length - session.queueHead, 3, "three waiting");
  await end(sub, pub);
});

t.test("Maximum Packet Size of the client: larger messages are dropped as if sent", async (t) => {
  const b = await startBroker();
  t.teardown(b.stop);
  const sub = await connect(b.url, { ...v5, properties: { maximumPacketSize: 100 } });
  const rx = collect(sub);
  await sub.subscribeAsync("mp", { qos: 1 });
  const pub = await connect(b.url, v5);
  await pub.publishAsync("mp", Buffer.alloc(500), { qos: 1 });
  await pub.publishAsync("mp", "small", { qos: 1 });
  const got = await rx.count(1);
  t.same(got.map((m) => m.payload), ["small"]);
  await end(sub, pub);
});

t.test("Will Delay: published when the delay ends, not if the client returns first", async (t) => {
  const clock = fakeClock();
  const b = await startBroker({ clock });
  t.teardown(b.stop);
  const watcher = await connect(b.url, v5);
  const rx = collect(watcher);
  await watcher.subscribeAsync("wd/#", { qos: 1 });
  const opts = (id: string) => ({
    ...v5,
    clientId: id,
    clean: false,
    properties: { sessionExpiryInterval: 600 },
    will: { topic: `wd/${id}`, payload: Buffer.from("gone"), qos: 1 as const, retain: false, properties: { willDelayInterval: 30 } },
  });
  const back = await connect(b.url, opts("back"));
  const gone = await connect(b.url, opts("gone"));
  (back.stream as unknown as { destroy(): void }).destroy();
  (gone.stream as unknown as { destroy(): void }).destroy();
  await Promise.all([closed(back), closed(gone)]);
  const again = await connect(b.url, opts("back"));
  clock.advance(31_000);
  const got = await rx.count(1);
  t.same(got.map((m) => m.topic), ["wd/gone"]);
  await end(watcher, again, back, gone);
});

t.test("DISCONNECT 0x04 publishes the will; 0x00 does not", async (t) => {
  const b = await startBroker();
  t.teardown(b.stop);
  const watcher = await connect(b.url, v5);
  const rx = collect(watcher);
  await watcher.subscribeAsync("dw/#", { qos: 1 });
  const mk = (id: string) =>
    connect(b.url, { ...v5, clientId: id, will: { topic: `dw/${id}`, payload: Buffer.from("x"), qos: 1, retain: false } });
  const normal = await mk("normal");
  const withWill = await mk("withwill");
  await normal.endAsync(false, { reasonCode: 0 });
  await withWill.endAsync(false, { reasonCode: 0x04 });
  const got = await rx.count(1);
  t.same(got.map((m) => m.topic), ["dw/withwill"]);
  await end(watcher);
});

t.test("Session Expiry: the session ends after the interval; zero ends it with the connection", async (t) => {
  const clock = fakeClock();
  const b = await startBroker({ clock });
  t.teardown(b.stop);
  const c = await connect(b.url, { ...v5, clientId: "exp", clean: false, properties: { sessionExpiryInterval: 60 } });
  await c.subscribeAsync("x", { qos: 1 });
  await c.endAsync();
  t.ok(b.broker.core.sessions.has("exp"), "kept while within the interval");
  clock.advance(60_000);
  t.notOk(b.broker.core.sessions.has("exp"), "gone after it");
  t.equal(b.broker.core.tree.size, 0, "its subscriptions too");
  const z = await connect(b.url, { ...v5, clientId: "zero", clean: false });
  await z.endAsync();
  t.notOk(b.broker.core.sessions.has("zero"));
});

t.test("keep-alive: a silent client is closed after 1.5x and its will published", async (t) => {
  const clock = fakeClock();
  const b = await startBroker({ clock });
  t.teardown(b.stop);
  const watcher = await connect(b.url, { ...v5, keepalive: 0 });
  const rx = collect(watcher);
  await watcher.subscribeAsync("ka", { qos: 0 });
  const quiet = await connect(b.url, {
    ...v5,
    keepalive: 10,
    will: { topic: "ka", payload: Buffer.from("dead"), qos: 0, retain: false },
  });
  // Stop the client's own pings so only the broker's timer is observed.
  (quiet as unknown as { _shiftPingInterval?: () => void; pingTimer?: { clear(): void } }).pingTimer?.clear();
  const reason = new Promise<number | undefined>((resolve) => quiet.once("disconnect", (p) => resolve(p.reasonCode)));
  const session = b.broker.core.sessions.get(quiet.options.clientId!)!;
  clock.advance(14_000);
  t.ok(session.link, "still connected before 1.5 x keep-alive");
  clock.advance(2_000);
  t.equal(session.link, undefined, "closed after it");
  t.equal(await reason, 0x8d, "DISCONNECT 0x8D keep alive timeout");
  const got = await rx.count(1);
  t.equal(got[0]!.payload, "dead");
  await end(watcher, quiet);
});

t.test("Server Keep Alive: a v5 client asking for more than the maximum is told the maximum", async (t) => {
  const b = await startBroker({ limits: { maxKeepalive: 60 } });
  t.teardown(b.stop);
  const c = mqtt.connect(b.url, { ...v5, keepalive: 600, reconnectPeriod: 0 });
  const ack = await new Promise<mqtt.IConnackPacket>((resolve) => c.once("connect", resolve));
  t.equal(ack.properties?.serverKeepAlive, 60);
  await end(c);
});

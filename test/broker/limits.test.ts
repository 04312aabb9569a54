// The broker's configurable resource caps (BrokerLimits in hub/broker/core.ts) that the checklist
// rows and the other broker tests do not already exercise: max_connections (H3), the offline queue
// caps (max_queued_messages, max_queued_bytes, and the "oldest QoS 0 first" eviction rule), the
// retained caps through the broker (H4), max_topic_length, the limits CONNACK announces to v5
// clients, and max_session_expiry. Covered elsewhere: maxPacketSize header check (A4),
// connectTimeoutMs (A9), maxClientIdLength (C6), maxKeepalive (C11), maxTopicLevels (D6),
// maxUserProperties (D12), maxSubscriptionsPerClient (E5), receiveMaximum (F1),
// maxInflightOutbound and drainTimeoutMs (F2, flow-control), topicAliasMaximum (D3, v5).
// Brokers run on a fake clock; sockets are real loopback TCP (raw clients) unless stated.
import type { IConnackPacket } from "mqtt-packet";
import t, { type Test } from "tap";
import { type BrokerLimits, createBrokerCore } from "../../hub/broker/core.js";
import { RC } from "../../hub/broker/reason-codes.js";
import { createSession, type Delivery, enqueue, queueLength } from "../../hub/broker/session.js";
import type { QoS } from "../../hub/contracts.js";
import { memoryLogger } from "../../hub/log.js";
import { defaultLimits, startBroker, type TestBroker } from "../support/broker.js";
import { duplexPair } from "../support/duplex-pair.js";
import { type FakeClock, fakeClock } from "../support/fake-clock.js";
import {
  type ConnectOptions,
  connectClient,
  connectFrame,
  type Level,
  publish,
  publishFrame,
  type RawClient,
  rawClient,
  subscribe,
  subscribeFrame,
} from "../support/raw-client.js";
import { gone } from "./checklist/ctx.js";



interface Env {
  b: TestBroker;
  clock: FakeClock;
  /** A connected raw client, destroyed when the test ends (keep-alive 0: the fake clock may run far). */
  connect(v: Level, o?: ConnectOptions): Promise<RawClient>;
  open(v?: Level): Promise<RawClient>;
}

async function env(t: Test, limits: Partial<BrokerLimits> = {}): Promise<Env> {
  const clock = fakeClock();
  const b = await startBroker({ clock, limits });
  const clients: RawClient[] = [];
  t.teardown(async () => {
    await Promise.all(clients.map((c) => c.destroy()));
    await b.stop();
  });
  return {
    b,
    clock,
    async connect(v, o = {}) {
      const { c } = await connectClient(b.port, v, { keepalive: 0, ...o });
      clients.push(c);
      return c;
    },
    async open(v = 4) {
      const c = await rawClient(b.port, { version: v });
      clients.push(c);
      return c;
    },
  };
}

/** Connect options for a session that outlives its connection. */
const durable = (v: Level, clientId: string): ConnectOptions =>
  v === 5 ? { clientId, clean: false, properties: { sessionExpiryInterval: 3600 } } : { clientId, clean: false };

async function disconnect(c: RawClient): Promise<void> {
  c.send({ cmd: "disconnect" });
  await c.expectClose();
}

async function ping(c: RawClient): Promise<void> {
  c.send({ cmd: "pingreq" });
  await c.expectPacket("pingresp");
}

const refusalLines = (b: TestBroker) => b.lines.filter((l) => l.includes("connection limit reached")).length;

t.test("max_connections (H3): the N+1th connection is refused at once; existing ones unaffected", async (t) => {
  const { b, connect, open } = await env(t, { maxConnections: 3 });
  const a = await connect(4, { clientId: "a" });
  const c2 = await connect(5, { clientId: "b" });
  const c3 = await connect(4, { clientId: "c" });
  await subscribe(a, "h3", 1);
  for (let i = 0; i < 3; i++) {
    const extra = await open(4);
    extra.write(connectFrame({ clientId: `extra-${i}` }));
    t.same(await extra.expectClose(), [], `extra connection ${i + 1}: closed without a CONNACK`);
  }
  t.equal(b.broker.core.stats.clientsConnected, 3, "still three clients");
  t.notOk(b.broker.core.sessions.has("extra-0"), "no session for a refused connection");
  for (const c of [a, c2, c3]) await ping(c);
  t.equal(await publish(c2, "h3", "still here", 1), 0, "an existing client publishes");
  t.equal(String((await a.expectPacket("publish")).payload), "still here", "and another receives");
  // A normal DISCONNECT frees its slot as soon as it is handled.
  await disconnect(c3);
  const next = await connect(4, { clientId: "d" });
  await ping(next);
  t.pass("a freed slot is used by the next connection");

  // Streams given to accept() count too (WebSocket will come through there).
  const [mine, theirs] = duplexPair();
  t.equal(b.broker.accept(theirs), undefined, "accept() refuses a stream when full");
  t.ok(theirs.destroyed, "and destroys it");
  mine.destroy();
});

t.test("max_connections: refusals are logged once a minute, not once per connection", async (t) => {
  const { b, clock, connect, open } = await env(t, { maxConnections: 1 });
  await connect(4, { clientId: "only" });
  clock.advance(120_000); // away from monotonic 0 (see the next test)
  for (let i = 0; i < 3; i++) await (await open()).expectClose();
  t.equal(refusalLines(b), 1, "three refusals, one warning");
  t.match(b.lines.find((l) => l.includes("connection limit reached")), /WARN .*max=1/, "a warning naming the cap");
  clock.advance(61_000);
  for (let i = 0; i < 2; i++) await (await open()).expectClose();
  t.equal(refusalLines(b), 2, "logged again a minute later, once");
});

t.test(
  "max_connections: the first refusal is logged even in the process's first minute",
  async (t) => {
    const { b, connect, open } = await env(t, { maxConnections: 1 });
    await connect(4, { clientId: "only" });
    await (await open()).expectClose();
    t.equal(refusalLines(b), 1, "the refusal at monotonic time 0 is logged");
  },
);

t.test("max_queued_messages: an offline session keeps QoS 1 up to the cap, drops and counts the rest", async (t) => {
  const { b, connect } = await env(t, { maxQueuedMessages: 5 });
  const core = b.broker.core;
  const pub = await connect(4, { clientId: "pub" });
  for (const v of [4, 5] as const) {
    const id = `sleeper-v${v}`;
    const sub = await connect(v, durable(v, id));
    await subscribe(sub, `q${v}/#`, 1);
    await disconnect(sub);
    const s = core.sessions.get(id)!;
    t.equal(s.link, undefined, `v${v}: offline`);
    const dropped = core.stats.publishDropped;
    for (let i = 0; i < 8; i++) t.equal(await publish(pub, `q${v}/${i}`, String(i), 1), 0, `v${v}: PUBACK ${i} to the publisher`);
    for (let i = 0; i < 3; i++) await publish(pub, `q${v}/zero`, "0", 0);
    t.equal(queueLength(s), 5, `v${v}: five queued`);
    t.equal(s.dropped, 3, `v${v}: three dropped, counted on the session`);
    t.equal(core.stats.publishDropped - dropped, 3, `v${v}: and in the broker stats`);
    const warned = b.lines.filter((l) => l.includes("messages for it are being dropped") && l.includes(`client=${id} `));
    t.equal(warned.length, 1, `v${v}: one warning naming the client, not one per message`);
    const back = await connect(v, durable(v, id));
    t.equal((back.received[0] as IConnackPacket).sessionPresent, true, `v${v}: session present`);
    await ping(back);
    const delivered = back.received.filter((p) => p.cmd === "publish").map((p) => String((p as { payload: Buffer }).payload));
    t.same(delivered, ["0", "1", "2", "3", "4"], `v${v}: the oldest five, in order; QoS 0 was not kept offline`);
    await disconnect(back);
  }
});

t.test("max_queued_bytes: an offline session's queue is capped in bytes", async (t) => {
  // 1,000-byte payloads: four fit under 4,500 bytes, five do not, whatever small per-message
  // overhead the accounting adds.
  const { b, connect } = await env(t, { maxQueuedBytes: 4_500 });
  const core = b.broker.core;
  const sub = await connect(5, durable(5, "bytes"));
  await subscribe(sub, "qb/#", 1);
  await disconnect(sub);
  const s = core.sessions.get("bytes")!;
  const pub = await connect(4, { clientId: "pub" });
  const big = (n: number) => Buffer.alloc(1_000, 0x30 + n);
  for (let i = 0; i < 6; i++) await publish(pub, `qb/${i}`, big(i), 1);
  t.equal(queueLength(s), 4, "four 1,000-byte messages queued");
  t.equal(s.dropped, 2, "the fifth and sixth dropped");
  await publish(pub, "qb/small", "s".repeat(100), 1);
  t.equal(queueLength(s), 5, "a small message still fits in the bytes left");
  await publish(pub, "qb/huge", Buffer.alloc(10_000), 1);
  t.equal(s.dropped, 3, "a message larger than the whole cap is dropped");
  t.equal(core.stats.publishDropped, 3, "every drop counted in the stats");
  t.ok(s.queuedBytes <= 4_500, `accounted bytes within the cap (${s.queuedBytes})`);
  const back = await connect(5, durable(5, "bytes"));
  await ping(back);
  const got = back.received.filter((p) => p.cmd === "publish").map((p) => (p as { topic: string }).topic);
  t.same(got, ["qb/0", "qb/1", "qb/2", "qb/3", "qb/small"], "what was kept is delivered on reconnect, in order");
});

// QoS 0 never reaches an offline queue (deliver() skips it), and online queues only fill while the
// socket is blocked, so the eviction rule is tested on the session functions themselves.
const delivery = (topic: string, qos: QoS, size = 10): Delivery => ({
  msg: { topic, payload: Buffer.alloc(size), qos, retain: false },
  qos,
  retain: false,
});
const topics = (s: ReturnType<typeof createSession>) => s.queue.slice(s.queueHead).map((d) => d.msg.topic);

t.test("a full queue drops its oldest QoS 0 message first, then the new message", async (t) => {
  const s = createSession("evict");
  const limits = { maxMessages: 3, maxBytes: 1_000_000 };
  t.ok(enqueue(s, delivery("a0", 0), limits));
  t.ok(enqueue(s, delivery("b1", 1), limits));
  t.ok(enqueue(s, delivery("c0", 0), limits));
  t.ok(enqueue(s, delivery("d1", 1), limits), "full: queued after an eviction");
  t.equal(s.dropped, 1, "the eviction is counted");
  t.same(topics(s), ["b1", "c0", "d1"], "the oldest QoS 0 (a0) made room");
  t.ok(enqueue(s, delivery("e2", 2), limits));
  t.same(topics(s), ["b1", "d1", "e2"], "then the next QoS 0 (c0)");
  t.notOk(enqueue(s, delivery("f1", 1), limits));
  t.same(topics(s), ["b1", "d1", "e2"], "no QoS 0 left: the new message is the one dropped");
  t.notOk(enqueue(s, delivery("g0", 0), limits));
  t.same(topics(s), ["b1", "d1", "e2"], "a new QoS 0 into a queue full of QoS 1/2 is dropped");
  t.same([s.dropped, queueLength(s), s.queuedQos0], [4, 3, 0], "four drops counted; counters consistent");

  // Bytes: several QoS 0 messages go to make room for one larger message. The sizes hold for any
  // per-message overhead the accounting adds: 205 bytes fit only once both 100-byte ones are gone.
  const bytes = createSession("evict-bytes");
  const roomy = { maxMessages: 100, maxBytes: 1_000_000 };
  for (const d of [delivery("x0", 0, 100), delivery("y0", 0, 100), delivery("z1", 1, 100)]) t.ok(enqueue(bytes, d, roomy));
  t.ok(enqueue(bytes, delivery("big1", 1, 205), { maxMessages: 100, maxBytes: bytes.queuedBytes + 10 }), "queued once eviction made room");
  t.same(topics(bytes), ["z1", "big1"], "both QoS 0 messages made room for the larger one");
  t.equal(bytes.dropped, 2);
  t.equal(bytes.queuedQos0, 0);
});

t.test(
  "a message that can never fit does not evict queued QoS 0 messages",
  async (t) => {
    const s = createSession("never-fits");
    const limits = { maxMessages: 100, maxBytes: 1_000 };
    t.ok(enqueue(s, delivery("a0", 0), limits));
    t.ok(enqueue(s, delivery("b0", 0), limits));
    t.notOk(enqueue(s, delivery("huge", 1, 5_000), limits), "the huge message is dropped");
    t.same(topics(s), ["a0", "b0"], "the queued QoS 0 messages are kept");
    t.equal(s.dropped, 1, "one drop");
  },
);

t.test(
  "every message an online queue drops is counted in stats.publishDropped",
  async (t) => {
    // An online session whose socket is blocked: deliveries wait in its queue, QoS 0 included.
    const core = createBrokerCore({ ...defaultLimits(), maxQueuedBytes: 300 }, fakeClock(), memoryLogger("warn"));
    const { session } = core.openSession("blocked", true);
    session.link = { receiveMaximum: 10, blocked: () => true, sendPublish: () => true, sendPubrel() {}, pump() {}, fail() {} };
    core.subscribe(session, "t/#", { qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 }, false);
    core.route({ topic: "t/a", payload: Buffer.alloc(100), qos: 0, retain: false });
    core.route({ topic: "t/b", payload: Buffer.alloc(100), qos: 0, retain: false });
    // Fits only once both 100-byte QoS 0 messages are gone (for any overhead up to 47 bytes each).
    core.route({ topic: "t/c", payload: Buffer.alloc(205), qos: 1, retain: false });
    t.same(topics(session), ["t/c"], "both QoS 0 messages evicted");
    t.equal(session.dropped, 2, "two drops on the session");
    t.equal(core.stats.publishDropped, 2, "two drops in the stats");
    core.close();
  },
);

t.test("max_retained_messages (H4): beyond the cap not stored, warned, still delivered live", async (t) => {
  const { b, connect } = await env(t, { maxRetainedMessages: 2 });
  const core = b.broker.core;
  const live = await connect(4, { clientId: "live" });
  await subscribe(live, "r/#", 1);
  const pub = await connect(5, { clientId: "pub" });
  for (const n of [1, 2, 3]) t.equal(await publish(pub, `r/${n}`, `v${n}`, 1, { retain: true }), 0, `r/${n}: PUBACK success`);
  t.same((await live.expectMany("publish", 3)).map((p) => p.topic), ["r/1", "r/2", "r/3"], "all three delivered live");
  t.equal(core.retained.count, 2, "two retained");
  t.notOk(core.retained.get("r/3"), "r/3 not retained");
  t.equal(b.lines.filter((l) => /WARN .*retained store full.*topic=r\/3/.test(l)).length, 1, "one warning naming the topic");
  const late = await connect(4, { clientId: "late" });
  await subscribe(late, "r/#", 1);
  await ping(late);
  t.same(late.untaken().map((p) => (p as { topic?: string }).topic), ["r/1", "r/2"], "a new subscriber gets the two retained");
  // At the cap, replacing a stored topic works and deleting one makes room.
  await publish(pub, "r/1", "v1b", 1, { retain: true });
  t.equal(String(core.retained.get("r/1")?.payload), "v1b", "replacement at the cap stored");
  await publish(pub, "r/2", "", 1, { retain: true });
  await publish(pub, "r/3", "v3", 1, { retain: true });
  t.same([...core.retained.entries()].map((m) => m.topic).sort(), ["r/1", "r/3"], "room again after a delete");
});

t.test("max_retained_bytes (H4): beyond the cap not stored, warned, still delivered live", async (t) => {
  // Accounted: topic bytes + payload (+ properties). "rb/a" + 46 bytes = 50: two fill 100.
  const { b, connect } = await env(t, { maxRetainedBytes: 100 });
  const core = b.broker.core;
  const live = await connect(4, { clientId: "live" });
  await subscribe(live, "rb/#", 0);
  const pub = await connect(4, { clientId: "pub" });
  for (const n of ["a", "b", "c"]) await publish(pub, `rb/${n}`, "x".repeat(46), 1, { retain: true });
  t.same((await live.expectMany("publish", 3)).map((p) => p.topic), ["rb/a", "rb/b", "rb/c"], "all three delivered live");
  t.same([core.retained.count, core.retained.bytes], [2, 100], "two stored, at the byte cap");
  t.equal(b.lines.filter((l) => /WARN .*retained store full.*topic=rb\/c/.test(l)).length, 1, "one warning naming the topic");
  await publish(pub, "rb/a", "y".repeat(47), 1, { retain: true });
  t.equal(String(core.retained.get("rb/a")?.payload), "x".repeat(46), "a larger replacement over the cap keeps the old message");
  const late = await connect(5, { clientId: "late" });
  await subscribe(late, "rb/#", 1);
  await ping(late);
  t.same(late.untaken().map((p) => (p as { topic?: string }).topic), ["rb/a", "rb/b"], "a new subscriber gets what was stored");
});

t.test("max_topic_length: topic names, filters and will topics, counted in UTF-8 bytes", async (t) => {
  const { b, connect, open } = await env(t, { maxTopicLength: 16 });
  const watcher = await connect(4, { clientId: "watcher" });
  await subscribe(watcher, "#", 0);
  const over = ["x".repeat(17), "é".repeat(9)]; // 17 and 18 bytes; the second is only 9 characters
  const at = ["y".repeat(16), "é".repeat(8)];
  for (const v of [4, 5] as const) {
    for (const topic of over) {
      const c = await connect(v);
      c.write(publishFrame({ v, topic, qos: 1, id: 1, payload: "x" }));
      await gone(t, c, { v5: RC.TOPIC_NAME_INVALID, what: `v${v} PUBLISH to ${Buffer.byteLength(topic)} bytes` });
      const s = await connect(v);
      s.write(subscribeFrame({ v, filters: [[topic, 0]] }));
      if (v === 5) t.same((await s.expectPacket("suback")).granted, [RC.TOPIC_FILTER_INVALID], `v5 SUBSCRIBE ${Buffer.byteLength(topic)} bytes: 0x8F`);
      else await gone(t, s, { what: `v4 SUBSCRIBE ${Buffer.byteLength(topic)} bytes` });
      const w = await open(v);
      w.write(connectFrame({ v, clientId: `will-${v}`, will: { topic, payload: "w" } }));
      await gone(t, w, { v5: RC.TOPIC_NAME_INVALID, atConnect: true, what: `v${v} will topic of ${Buffer.byteLength(topic)} bytes` });
    }
  }
  const ok = await connect(5);
  t.same(await subscribe(ok, at.map((f) => [f, 0] as [string, number])), [0, 0], "16-byte filters granted");
  for (const topic of at) await publish(ok, topic, "ok", 1);
  await ping(watcher);
  t.same(watcher.untaken().map((p) => (p as { topic?: string }).topic), at, "only the 16-byte topics were routed");
  t.equal(b.broker.core.retained.count, 0);
});

t.test("v5 CONNACK announces Receive Maximum, Maximum Packet Size and Topic Alias Maximum; the packet size is enforced", async (t) => {
  const { connect } = await env(t, { receiveMaximum: 7, maxPacketSize: 2_048, topicAliasMaximum: 3 });
  const c = await connect(5, { clientId: "announce" });
  const ack = c.received[0] as IConnackPacket;
  t.same(
    [ack.properties?.receiveMaximum, ack.properties?.maximumPacketSize, ack.properties?.topicAliasMaximum],
    [7, 2_048, 3],
    "the configured limits, as CONNACK properties",
  );
  const v4 = await connect(4, { clientId: "plain" });
  t.equal((v4.received[0] as IConnackPacket).properties, undefined, "3.1.1 CONNACK has no properties");
  // A whole PUBLISH of exactly the announced size is fine; one byte more is 0x95 (MQTT-3.1.2-24 for us as receiver).
  const sized = (total: number) => {
    const fixed = publishFrame({ v: 5, topic: "mp", payload: "" });
    return publishFrame({ v: 5, topic: "mp", payload: Buffer.alloc(total - fixed.length - 1) });
  };
  t.equal(sized(2_048).length, 2_048, "(a 2,048-byte packet)");
  await subscribe(v4, "mp", 0);
  c.write(sized(2_048));
  t.equal((await v4.expectPacket("publish")).topic, "mp", "a packet of the announced size is delivered");
  c.write(sized(2_049));
  await gone(t, c, { v5: RC.PACKET_TOO_LARGE, what: "2,049 bytes" });
});

t.test("max_session_expiry: a longer request is lowered, announced in CONNACK, and the session ends then", async (t) => {
  const { b, clock, connect } = await env(t, { maxSessionExpiry: 60 });
  const core = b.broker.core;
  const ask = async (id: string, interval: number) => {
    const c = await connect(5, { clientId: id, clean: false, properties: { sessionExpiryInterval: interval } });
    return { c, granted: (c.received[0] as IConnackPacket).properties?.sessionExpiryInterval };
  };
  const long = await ask("long", 3600);
  t.equal(long.granted, 60, "3600 asked: CONNACK Session Expiry Interval 60 (MQTT 5 §3.2.2.3.2)");
  t.equal((await ask("forever", 0xffffffff)).granted, 60, "0xFFFFFFFF asked: 60");
  const short = await ask("short", 30);
  t.equal(short.granted, undefined, "30 asked: no property, the client's value applies");
  const v4 = await connect(4, { clientId: "v4", clean: false });
  await subscribe(long.c, "se/#", 1);
  // DISCONNECT may set a new interval (MQTT-3.14.2-2): it is capped too.
  short.c.send({ cmd: "disconnect", properties: { sessionExpiryInterval: 3600 } });
  await short.c.expectClose();
  for (const c of [long.c, v4]) await disconnect(c);
  clock.advance(59_000);
  t.same(["long", "short", "v4"].map((id) => core.sessions.has(id)), [true, true, true], "all kept at 59 s");
  clock.advance(2_000);
  t.same(["long", "short", "v4"].map((id) => core.sessions.has(id)), [false, false, false], "all ended after 60 s (3.1.1 clean=0 too)");
  t.equal(core.tree.size, 0, "the subscriptions went with them");
});

t.test(
  "max_session_expiry 0xFFFFFFFF: a session asking 0xFFFFFFFF never expires (MQTT 5 §3.1.2.11.2)",
  async (t) => {
    // Node really does clamp: the premise of this test, checked without waiting.
    const probe = setTimeout(() => {}, 2 ** 32);
    t.equal((probe as unknown as { _idleTimeout: number })._idleTimeout, 1, "setTimeout(2^32) is armed for 1 ms");
    clearTimeout(probe);
    // A fake clock with Node's timer range, so the test stays deterministic.
    const clock = fakeClock();
    const nodeLike = { ...clock, after: (ms: number, fn: () => void) => clock.after(ms > 2 ** 31 - 1 ? 1 : ms, fn) };
    const b = await startBroker({ clock: nodeLike, limits: { maxSessionExpiry: 0xffffffff } });
    t.teardown(b.stop);
    const { c } = await connectClient(b.port, 5, { clientId: "forever", clean: false, keepalive: 0, properties: { sessionExpiryInterval: 0xffffffff } });
    await disconnect(c);
    clock.advance(1_000);
    t.ok(b.broker.core.sessions.has("forever"), "still there a second later");
    clock.advance(30 * 24 * 3600 * 1000);
    t.ok(b.broker.core.sessions.has("forever"), "and 30 days later");
  },
);

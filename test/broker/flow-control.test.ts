// Flow control instead of loss: when a subscriber's queue passes half its cap, the publishers
// feeding it stop being read until it drains, so QoS 1 messages acknowledged to a publisher are
// not dropped. A consumer that stays stuck past drain_timeout is disconnected and publishers resume.
import mqtt from "mqtt";
import t from "tap";
import { startBroker } from "../support/broker.js";
import { fakeClock } from "../support/fake-clock.js";
import { closed, collect, connect, end } from "../support/mqtt.js";

t.test("a slow subscriber gets every acknowledged QoS 1 message (no drops)", async (t) => {
  const b = await startBroker({ limits: { maxQueuedMessages: 20 } });
  t.teardown(b.stop);
  const sub = await connect(b.url, { protocolVersion: 5, clientId: "slow", properties: { receiveMaximum: 1 } });
  await sub.subscribeAsync("fc/#", { qos: 1 });
  // Hold the subscriber's acknowledgements until the publisher has been throttled.
  const hold: Array<() => void> = [];
  let holding = true;
  const original = sub.handleMessage.bind(sub);
  sub.handleMessage = (p, cb) => (holding ? hold.push(() => original(p, cb)) : original(p, cb));
  const rx = collect(sub);
  const pub = await connect(b.url, { protocolVersion: 5 });
  const N = 200;
  const sent = Promise.all(Array.from({ length: N }, (_, i) => pub.publishAsync(`fc/${i}`, String(i), { qos: 1 })));
  const session = b.broker.core.sessions.get("slow")!;
  // Wait until the broker has stopped reading the publisher (queue at its high-water mark).
  await new Promise<void>((resolve) => {
    const check = () => (session.congestedSince >= 0 ? resolve() : setImmediate(check));
    check();
  });
  t.ok(session.queue.length - session.queueHead <= 20, "queue within its cap");
  holding = false;
  for (const f of hold.splice(0)) f();
  await sent;
  const got = await rx.count(N);
  t.equal(new Set(got.map((m) => m.payload)).size, N, "all delivered");
  t.same(got.map((m) => Number(m.payload)), Array.from({ length: N }, (_, i) => i), "in order");
  t.equal(session.dropped, 0, "nothing dropped");
  t.equal(b.broker.core.stats.publishDropped, 0);
  await end(sub, pub);
});

t.test("a consumer stuck past drain_timeout is disconnected and publishers resume", async (t) => {
  const clock = fakeClock();
  const b = await startBroker({ clock, limits: { maxQueuedMessages: 10, drainTimeoutMs: 30_000 } });
  t.teardown(b.stop);
  const stuck = mqtt.connect(b.url, { protocolVersion: 5, clientId: "stuck", reconnectPeriod: 0, properties: { receiveMaximum: 1 } });
  await new Promise((r) => stuck.once("connect", r));
  await stuck.subscribeAsync("s/#", { qos: 1 });
  stuck.handleMessage = () => {}; // never acknowledges
  const gone = closed(stuck); // its DISCONNECT sits unread behind the publish it never finished
  const healthy = await connect(b.url, { protocolVersion: 5 });
  const rx = collect(healthy);
  await healthy.subscribeAsync("s/#", { qos: 1 });
  const pub = await connect(b.url, { protocolVersion: 5 });
  const N = 50;
  const sent = Promise.all(Array.from({ length: N }, (_, i) => pub.publishAsync(`s/${i}`, String(i), { qos: 1 })));
  const session = b.broker.core.sessions.get("stuck")!;
  await new Promise<void>((resolve) => {
    const check = () => (session.congestedSince >= 0 ? resolve() : setImmediate(check));
    check();
  });
  clock.advance(29_000);
  t.ok(session.link, "still connected within the drain timeout");
  clock.advance(2_000);
  t.equal(session.link, undefined, "disconnected after it");
  t.match(b.lines.join("\n"), /disconnecting slow consumer client=stuck/);
  await gone;
  await sent;
  const got = await rx.count(N);
  t.equal(got.length, N, "the healthy subscriber got everything");
  await end(stuck, healthy, pub);
});

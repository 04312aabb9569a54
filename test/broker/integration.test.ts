// The broker over real TCP with the real `mqtt` client at protocol 4 and 5: the behaviours users
// rely on first (pub/sub at each QoS, retained, wills, persistent sessions, v5 extras).
import t from "tap";
import { closed, collect, connect, end } from "../support/mqtt.js";
import { startBroker } from "../support/broker.js";

t.test("QoS 0/1/2 publish reaches a subscriber, v4 and v5", async (t) => {
  const b = await startBroker();
  t.teardown(b.stop);
  for (const protocolVersion of [4, 5] as const) {
    const sub = await connect(b.url, { protocolVersion });
    const pub = await connect(b.url, { protocolVersion });
    const rx = collect(sub);
    await sub.subscribeAsync("t/#", { qos: 2 });
    for (const qos of [0, 1, 2] as const) await pub.publishAsync(`t/q${qos}`, `m${qos}`, { qos });
    const got = await rx.count(3);
    t.same(
      got.map((m) => [m.topic, m.payload, m.packet.qos]),
      [
        ["t/q0", "m0", 0],
        ["t/q1", "m1", 1],
        ["t/q2", "m2", 2],
      ],
      `v${protocolVersion}`,
    );
    await end(sub, pub);
  }
});

t.test("granted QoS downgrades delivery", async (t) => {
  const b = await startBroker();
  t.teardown(b.stop);
  const sub = await connect(b.url);
  const pub = await connect(b.url);
  const rx = collect(sub);
  await sub.subscribeAsync("d", { qos: 1 });
  await pub.publishAsync("d", "x", { qos: 2 });
  const [m] = await rx.count(1);
  t.equal(m!.packet.qos, 1);
  await end(sub, pub);
});

t.test("retained: store, replace, delete, deliver on subscribe with RETAIN=1", async (t) => {
  const b = await startBroker();
  t.teardown(b.stop);
  const pub = await connect(b.url, { protocolVersion: 5 });
  await pub.publishAsync("r/a", "1", { retain: true, qos: 1 });
  await pub.publishAsync("r/a", "2", { retain: true, qos: 1 });
  await pub.publishAsync("r/b", "3", { retain: true, qos: 1 });
  await pub.publishAsync("r/b", "", { retain: true, qos: 1 });
  const sub = await connect(b.url, { protocolVersion: 5 });
  const rx = collect(sub);
  await sub.subscribeAsync("r/+", { qos: 1 });
  await pub.publishAsync("r/c", "live", { qos: 1 });
  const got = await rx.count(2);
  t.same(
    got.map((m) => [m.topic, m.payload, m.packet.retain]),
    [
      ["r/a", "2", true],
      ["r/c", "live", false],
    ],
  );
  await end(sub, pub);
});

t.test("will: published on abnormal close, not after DISCONNECT", async (t) => {
  const b = await startBroker();
  t.teardown(b.stop);
  const watcher = await connect(b.url);
  const rx = collect(watcher);
  await watcher.subscribeAsync("will/#", { qos: 1 });
  const polite = await connect(b.url, { will: { topic: "will/polite", payload: Buffer.from("gone"), qos: 1, retain: false } });
  await polite.endAsync();
  const rude = await connect(b.url, { will: { topic: "will/rude", payload: Buffer.from("gone"), qos: 1, retain: false } });
  (rude.stream as unknown as { destroy(): void }).destroy();
  const got = await rx.count(1);
  t.same(got.map((m) => m.topic), ["will/rude"]);
  await end(watcher, rude);
});

t.test("persistent session: queued QoS 1 delivered after reconnect; clean session discards", async (t) => {
  const b = await startBroker();
  t.teardown(b.stop);
  const opts = { clientId: "keeper", clean: false, protocolVersion: 4 as const };
  let sub = await connect(b.url, opts);
  await sub.subscribeAsync("p/#", { qos: 1 });
  await sub.endAsync();
  const pub = await connect(b.url);
  await pub.publishAsync("p/1", "a", { qos: 1 });
  await pub.publishAsync("p/2", "b", { qos: 0 });
  await pub.publishAsync("p/3", "c", { qos: 1 });
  sub = mqttWithHandler(b.url, opts);
  const rx = collect(sub);
  const got = await rx.count(2);
  t.same(got.map((m) => m.payload), ["a", "c"], "QoS 1 kept in order, QoS 0 not queued offline");
  t.equal(sub.connected, true);
  await end(sub, pub);
});

t.test("v5: assigned client id, session expiry, takeover with 0x8E", async (t) => {
  const b = await startBroker();
  t.teardown(b.stop);
  const anon = await connect(b.url, { protocolVersion: 5, clientId: "", clean: true });
  const assigned = (anon as unknown as { options: { properties?: unknown } }).options;
  t.ok(assigned, "connected with an empty client id");
  t.match([...b.broker.core.sessions.keys()].join(","), /auto-/);
  const first = await connect(b.url, { protocolVersion: 5, clientId: "same" });
  const reason = new Promise<number | undefined>((resolve) => first.once("disconnect", (p) => resolve(p.reasonCode)));
  const second = await connect(b.url, { protocolVersion: 5, clientId: "same" });
  t.equal(await reason, 0x8e);
  await closed(first);
  t.equal(second.connected, true);
  await end(anon, first, second);
});

import mqtt from "mqtt";
/** A client whose message handler is attached before CONNACK: queued messages follow CONNACK at once. */
function mqttWithHandler(url: string, opts: mqtt.IClientOptions): mqtt.MqttClient {
  return mqtt.connect(url, { reconnectPeriod: 0, ...opts });
}

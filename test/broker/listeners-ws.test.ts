// MQTT over WebSocket (ws and wss listeners) with the `mqtt` client, as browser dashboards use it:
// subprotocol mqtt on the configured path, a 64 KiB payload both ways, other paths refused, a closed
// WebSocket noticed (the will is published), and a subscriber that stops reading: its stream
// reports backpressure (bounded buffering) and it is dropped after drain_timeout, as over TCP.
import { readFileSync } from "node:fs";
import http from "node:http";
import t from "tap";
import mqttPacket from "mqtt-packet";
import WebSocket from "ws";
import { certDir } from "../support/certs.js";
import { fakeClock } from "../support/fake-clock.js";
import { startListeners, tlsSpec } from "../support/listeners.js";
import { collect, connect, end } from "../support/mqtt.js";

const d = certDir();
t.teardown(() => d.remove());
const ca = d.ca("ca");
const server = d.issue(ca, "server", "localhost", "server");

t.test("ws: publish and subscribe with the mqtt client, 64 KiB payload, wrong path refused", async (t) => {
  const b = await startListeners([{ host: "127.0.0.1", port: 0, protocol: "ws", path: "/mqtt" }]);
  t.teardown(() => b.stop());
  const url = `ws://127.0.0.1:${b.port()}/mqtt`;
  const sub = await connect(url, { protocolVersion: 5 });
  const pub = await connect(url);
  const got = collect(sub);
  await sub.subscribeAsync("ws/#", { qos: 1 });
  const big = Buffer.alloc(64 * 1024, 7);
  big.write("start");
  await pub.publishAsync("ws/big", big, { qos: 1 });
  await pub.publishAsync("ws/small", "hi", { qos: 0 });
  const [m1, m2] = await got.count(2);
  t.equal(m1!.packet.payload.length, 64 * 1024, "64 KiB arrived whole");
  t.ok(Buffer.compare(m1!.packet.payload as Buffer, big) === 0, "byte for byte");
  t.equal(m2!.payload, "hi");
  t.ok(b.lines.some((l) => /listening protocol=ws host=127\.0\.0\.1 port=\d+ path=\/mqtt anonymous=yes tls=no/.test(l)), "one log line for the listener");

  await t.rejects(connect(`ws://127.0.0.1:${b.port()}/other`), "another path is refused");
  const status = await new Promise<number | undefined>((resolve) => {
    http.get(`http://127.0.0.1:${b.port()}/mqtt`, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
  });
  t.equal(status, 426, "a plain HTTP request is told to upgrade");
  await end(sub, pub);
});

t.test("ws: the server picks subprotocol mqtt; a text frame closes; a closed WebSocket is noticed (will published)", async (t) => {
  const b = await startListeners([{ host: "127.0.0.1", port: 0, protocol: "ws" }]);
  t.teardown(() => b.stop());
  const ws = new WebSocket(`ws://127.0.0.1:${b.port()}/mqtt`, ["mqtt"]);
  await new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  t.equal(ws.protocol, "mqtt");
  ws.close();

  // MQTT-6.0.0-1: packets travel in binary frames; a text frame (here a valid CONNECT) closes.
  const text = new WebSocket(`ws://127.0.0.1:${b.port()}/mqtt`, ["mqtt"]);
  await new Promise((resolve, reject) => {
    text.once("open", resolve);
    text.once("error", reject);
  });
  const answers: Buffer[] = [];
  text.on("message", (m: Buffer) => answers.push(m));
  const connect4 = mqttPacket.generate({ cmd: "connect", clientId: "text", protocolVersion: 4, protocolId: "MQTT", clean: true, keepalive: 0 });
  text.send(connect4.toString("latin1"));
  await new Promise((resolve) => text.once("close", resolve));
  t.same(answers, [], "closed without a CONNACK");
  t.equal(b.broker.core.sessions.has("text"), false);

  const watcher = await connect(`ws://127.0.0.1:${b.port()}/mqtt`);
  const got = collect(watcher);
  await watcher.subscribeAsync("will/#", { qos: 1 });
  const dying = await connect(`ws://127.0.0.1:${b.port()}/mqtt`, { will: { topic: "will/x", payload: Buffer.from("gone"), qos: 1, retain: false } });
  // Drop the WebSocket without DISCONNECT: the broker must see the stream end and publish the will.
  (dying.stream as unknown as { destroy(): void }).destroy();
  const [w] = await got.count(1);
  t.equal(w!.payload, "gone");
  await end(watcher);
});

t.test("wss: the mqtt client trusting the CA connects to wss://", async (t) => {
  const b = await startListeners([{ host: "127.0.0.1", port: 0, protocol: "wss", tls: tlsSpec({ cert: server.cert, key: server.key }) }]);
  t.teardown(() => b.stop());
  const url = `wss://127.0.0.1:${b.port()}/mqtt`;
  const c = await connect(url, { ca: readFileSync(ca.cert) });
  const got = collect(c);
  await c.subscribeAsync("s/#", { qos: 1 });
  await c.publishAsync("s/1", Buffer.alloc(64 * 1024, 1), { qos: 1 });
  const [m] = await got.count(1);
  t.equal(m!.packet.payload.length, 64 * 1024);
  await end(c);
  await t.rejects(connect(url, { ca: readFileSync(d.ca("other").cert) }), "a client trusting another CA refuses it");
  t.ok(b.lines.some((l) => /listening protocol=wss .* tls=yes/.test(l)));
});

t.test("ws: a subscriber that stops reading backs up into flow control and is dropped after drain_timeout", async (t) => {
  const clock = fakeClock();
  clock.advance(1_000); // monotonic time 0 means "not blocked" to a connection
  const b = await startListeners([{ host: "127.0.0.1", port: 0, protocol: "ws" }], { clock });
  t.teardown(() => b.stop());
  const url = `ws://127.0.0.1:${b.port()}/mqtt`;
  // A raw WebSocket client (CONNECT, SUBSCRIBE), so the test can stop it reading.
  const slow = new WebSocket(url, ["mqtt"]);
  const frames: Buffer[] = [];
  let onFrame = () => {};
  slow.on("message", (m: Buffer) => {
    frames.push(m);
    onFrame();
  });
  await new Promise((resolve, reject) => {
    slow.once("open", resolve);
    slow.once("error", reject);
  });
  // Bytes, not messages: packets written in one turn travel in one WebSocket message.
  const untilBytes = (n: number) =>
    new Promise<void>((resolve) => {
      onFrame = () => Buffer.concat(frames).length >= n && resolve();
      onFrame();
    });
  slow.send(mqttPacket.generate({ cmd: "connect", clientId: "slow", protocolVersion: 4, protocolId: "MQTT", clean: true, keepalive: 0 }));
  slow.send(mqttPacket.generate({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: "flood", qos: 0 }] }));
  await untilBytes(4 + 5); // CONNACK, SUBACK
  slow.pause(); // stops reading its TCP socket
  const pub = await connect(url);
  const payload = Buffer.alloc(32 * 1024, 3);
  const link = b.broker.core.sessions.get("slow")?.link as { blocked(): boolean; socket: { writableLength: number } } | undefined;
  for (let i = 0; i < 400; i++) pub.publish("flood", payload, { qos: 0 });
  const marker = pub.publishAsync("flood", payload, { qos: 1 });
  // The WebSocket stream's writableLength must grow past the broker's high-water mark: that is
  // what makes a stalled WebSocket visible to the broker. Bounded wait on the broker's progress.
  for (let i = 0; i < 5_000 && !link?.blocked(); i++) await new Promise((r) => setTimeout(r, 2));
  t.ok(link?.blocked(), "the broker sees the WebSocket stream as blocked (12.8 MB published, nothing read)");
  t.ok((link?.socket.writableLength ?? 0) < 4 * 1024 * 1024, `bounded buffering on the stream: ${link?.socket.writableLength} bytes`);
  const closed = new Promise((resolve) => slow.once("close", resolve));
  clock.advance(b.broker.core.limits.drainTimeoutMs + 2_000); // the sweep drops it
  await marker;
  t.pass("the publisher goes on once the slow consumer is dropped");
  t.ok(b.lines.some((l) => /slow consumer/.test(l)), "logged");
  slow.resume();
  await closed;
  await end(pub);
});

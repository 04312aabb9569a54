// The in-process Bus: a part's message reaches TCP subscribers and vice versa, through the same
// subscription tree and retained store; $SYS statistics are published and not matched by '#'.
import t from "tap";
import type { Message } from "../../hub/contracts.js";
import { publishSysTopics } from "../../hub/broker/sys-topics.js";
import { startBroker } from "../support/broker.js";
import { collect, connect, end } from "../support/mqtt.js";

t.test("a driver's reading reaches a TCP subscriber, and a TCP command reaches the part", async (t) => {
  const b = await startBroker();
  t.teardown(b.stop);
  const driver = b.broker.bus("devices");
  const commands: Message[] = [];
  const gotCommand = new Promise<void>((resolve) => {
    void driver.subscribe("hub/+/set", (m) => {
      commands.push(m);
      resolve();
    });
  });
  const phone = await connect(b.url, { protocolVersion: 5 });
  const rx = collect(phone);
  await phone.subscribeAsync("hub/#", { qos: 1 });
  await driver.publish({ topic: "hub/lamp", payload: Buffer.from("OFF"), qos: 1, retain: true });
  const [m] = await rx.count(1);
  t.same([m!.topic, m!.payload], ["hub/lamp", "OFF"]);
  await phone.publishAsync("hub/lamp/set", "ON", { qos: 1 });
  await gotCommand;
  t.same(commands.map((c) => [c.topic, c.payload.toString()]), [["hub/lamp/set", "ON"]]);
  await end(phone);
});

t.test("a part subscribing late gets retained messages; unsubscribing stops delivery", async (t) => {
  const b = await startBroker();
  t.teardown(b.stop);
  const bus = b.broker.bus("rules");
  await bus.publish({ topic: "hub/porch/lux", payload: Buffer.from("12"), qos: 0, retain: true });
  const seen: string[] = [];
  let first!: () => void;
  const firstSeen = new Promise<void>((r) => {
    first = r;
  });
  const cancel = await bus.subscribe("hub/+/lux", (m) => {
    seen.push(`${m.topic}=${m.payload}${m.retain ? " (retained)" : ""}`);
    first();
  });
  await firstSeen;
  cancel();
  await bus.publish({ topic: "hub/porch/lux", payload: Buffer.from("13"), qos: 0, retain: false });
  await new Promise((r) => setImmediate(r));
  t.same(seen, ["hub/porch/lux=12 (retained)"]);
  t.equal(b.broker.core.tree.size, 0);
});

t.test("a part that throws in its handler is logged and does not disturb others", async (t) => {
  const b = await startBroker();
  t.teardown(b.stop);
  const bus = b.broker.bus("flaky");
  await bus.subscribe("x", () => {
    throw new Error("bug in a rule");
  });
  const ok = new Promise<string>((resolve) => void bus.subscribe("x", (m) => resolve(m.payload.toString())));
  await bus.publish({ topic: "x", payload: Buffer.from("still here"), qos: 0, retain: false });
  t.equal(await ok, "still here");
  t.match(b.lines.join("\n"), /in-process subscriber failed part=flaky topic=x error="bug in a rule"/);
});

t.test("invalid topics from a part are refused", async (t) => {
  const b = await startBroker();
  t.teardown(b.stop);
  const bus = b.broker.bus("x");
  await t.rejects(bus.publish({ topic: "a/#", payload: Buffer.alloc(0), qos: 0, retain: false }));
  await t.rejects(bus.subscribe("a/#/b", () => {}));
});

t.test("$SYS statistics: published retained, seen by $SYS/#, never by #", async (t) => {
  const b = await startBroker();
  t.teardown(b.stop);
  const all = await connect(b.url);
  const sys = await connect(b.url);
  const rxAll = collect(all);
  const rxSys = collect(sys);
  await all.subscribeAsync("#", { qos: 0 });
  await sys.subscribeAsync("$SYS/broker/#", { qos: 0 });
  publishSysTopics(b.broker.core, "9.9.9");
  // Delivery is in order: had `#` matched $SYS, those would arrive at `all` before the marker.
  await sys.publishAsync("marker", "m");
  const got = await rxSys.count(11);
  const byTopic = new Map(got.map((m) => [m.topic, m.payload]));
  t.equal(byTopic.get("$SYS/broker/version"), "hub 9.9.9");
  t.equal(byTopic.get("$SYS/broker/clients/connected"), "2");
  t.match(byTopic.get("$SYS/broker/uptime") ?? "", /^\d+ seconds$/);
  t.ok(byTopic.has("$SYS/broker/messages/received"));
  await rxAll.count(1);
  t.same(rxAll.got.map((m) => m.topic), ["marker"], "# does not match $SYS");
  await end(all, sys);
});

// The hub side of Arduino devices over the in-process simulated board (fake clock, memory bus):
// banner channels published on hub/<device>/<channel>, /set commands reach the board and are
// published when it confirms, invalid commands are refused, unplug → offline → replug → online
// with the output re-sent, and Home Assistant is told about channels learnt from the banner.
import t from "tap";
import { createSimArduino } from "../drivers/io/sim/arduino-board.js";
import { createSimSerial } from "../drivers/io/sim/serial.js";
import { type ArduinoConfig, createArduinoHost } from "../hub/arduino.js";
import type { DiscoveryDevice } from "../hub/discovery.js";
import { memoryLogger } from "../hub/log.js";
import { hubTopics } from "../hub/topics.js";
import { settle } from "./drivers/helpers.js";
import { fakeClock } from "./support/fake-clock.js";
import { memoryBus } from "./support/memory-bus.js";

const PATH = "/dev/serial/by-id/usb-sim";

t.test("readings, commands, unplug and replug through the device's topics", async (t) => {
  const clock = fakeClock();
  const bus = memoryBus();
  const sim = createSimSerial({ clock });
  const board = createSimArduino({ clock, random: () => 0.5, noise: 0 });
  sim.attach(PATH, board, "greenhouse");
  const announced: DiscoveryDevice[] = [];
  const cfg = { name: "greenhouse", type: "arduino", path: PATH, protocol: "hubproto", banner_timeout: 4000, ping_interval: 5000, ping_timeout: 2000, sampling_interval: 1000 } as ArduinoConfig;
  const host = createArduinoHost([cfg], { bus, clock, log: memoryLogger(), topics: hubTopics("hub"), serial: sim, discover: (d) => announced.push(d) });
  await host.start();
  t.teardown(() => host.stop());
  const until = (cond: () => boolean) => settle(clock, (async () => { while (!cond()) await new Promise((r) => setImmediate(r)); })(), 20_000);
  await until(() => bus.last("hub/greenhouse/availability") === "online");
  await until(() => bus.last("hub/greenhouse/soil_moisture") !== undefined);
  t.equal(bus.last("hub/greenhouse/soil_moisture"), "45");
  t.equal(bus.last("hub/greenhouse/pump"), "OFF");
  t.same(announced.at(-1)?.entities.find((e) => e.quantity === "pump"), { quantity: "pump", component: "switch" });
  t.same(announced.at(-1)?.entities.find((e) => e.quantity === "temperature"), { quantity: "temperature", component: "sensor", unit: "°C" });

  const cmd = (ch: string, payload: string, retain = false) => bus.publish({ topic: `hub/greenhouse/${ch}/set`, payload: Buffer.from(payload), qos: 1, retain });
  await cmd("pump", "ON");
  await until(() => bus.last("hub/greenhouse/pump") === "ON");
  t.equal(board.outputs.get("pump"), 1, "the board switched its output");
  await cmd("pump", "TOGGLE");
  await until(() => bus.last("hub/greenhouse/pump") === "OFF");
  await cmd("fan", "200");
  await until(() => bus.last("hub/greenhouse/fan") === "200");
  const sent = board.received.length;
  await cmd("fan", "300");
  await cmd("soil_moisture", "1");
  await cmd("pump", "maybe");
  await cmd("pump", "ON", true);
  await settle(clock, new Promise((r) => setImmediate(r)));
  t.equal(board.received.filter((l) => l.startsWith("SET")).length, board.received.slice(0, sent).filter((l) => l.startsWith("SET")).length, "invalid, read-only and retained commands never reach the board");

  await cmd("pump", "ON");
  await until(() => bus.last("hub/greenhouse/pump") === "ON");
  sim.unplug(PATH);
  await until(() => bus.last("hub/greenhouse/availability") === "offline");
  // Diagnostics are published at most once a second: the latest counts arrive soon after.
  await until(() => JSON.parse(bus.last("hub/greenhouse/diagnostics") ?? "{}").disconnects === 1);
  t.match(JSON.parse(bus.last("hub/greenhouse/diagnostics") ?? "{}"), { online: false, disconnects: 1 });
  sim.plug(PATH);
  await until(() => bus.last("hub/greenhouse/availability") === "online");
  await until(() => board.outputs.get("pump") === 1);
  t.pass("after the replug the board has its output back on");
});

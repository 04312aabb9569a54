// The hub side of Arduino devices over the in-process simulated board (fake clock, memory bus):
// banner channels published on hub/<device>/<channel>, /set commands reach the board and are
// published when it confirms, invalid commands are refused, unplug → offline → replug → online
// with the output re-sent, and Home Assistant is told about channels learnt from the banner, which
// are remembered across restarts so its entities are not withdrawn while the board is away.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { createSimArduino, DEFAULT_SIM_CHANNELS } from "../drivers/io/sim/arduino-board.js";
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

t.test("channels learnt from a banner are remembered: Home Assistant keeps them across a restart", async (t) => {
  const stateDir = mkdtempSync(join(tmpdir(), "arduino-host-"));
  t.teardown(() => rmSync(stateDir, { recursive: true, force: true }));
  const cfg = { name: "greenhouse", type: "arduino", path: PATH, protocol: "hubproto", ping_interval: 5000, ping_timeout: 2000, sampling_interval: 1000 } as ArduinoConfig;
  /** One hub run: a fresh clock, bus and simulated port, the same state dir. */
  const run = async (channels = DEFAULT_SIM_CHANNELS, plugged = true) => {
    const clock = fakeClock();
    const bus = memoryBus();
    const sim = createSimSerial({ clock });
    sim.attach(PATH, createSimArduino({ clock, random: () => 0.5, noise: 0, channels }), "greenhouse");
    if (!plugged) sim.unplug(PATH);
    const announced: DiscoveryDevice[] = [];
    const host = createArduinoHost([cfg], { bus, clock, log: memoryLogger(), topics: hubTopics("hub"), serial: sim, discover: (d) => announced.push(d), stateDir });
    await host.start();
    const until = (cond: () => boolean) => settle(clock, (async () => { while (!cond()) await new Promise((r) => setImmediate(r)); })(), 20_000);
    return { host, sim, announced, bus, until };
  };
  const quantities = (d: DiscoveryDevice | undefined) => d?.entities.map((e) => e.quantity);

  const first = await run();
  t.same(first.announced, [], "first start: nothing known beyond the config");
  await first.until(() => first.bus.last("hub/greenhouse/availability") === "online");
  await first.until(() => first.announced.length === 1);
  t.same(quantities(first.announced[0]), ["soil_moisture", "temperature", "light", "door", "pump", "fan"]);
  await first.host.stop();
  const saved = JSON.parse(readFileSync(join(stateDir, "arduino-channels.json"), "utf8"));
  t.same(saved.greenhouse.channels[1], { name: "temperature", kind: "sensor", unit: "°C" });

  // Restarted with the board unplugged: the entities are announced at start, as before.
  const second = await run(DEFAULT_SIM_CHANNELS, false);
  t.equal(second.announced.length, 1, "announced at start, before the board is seen");
  t.same(second.announced[0], first.announced[0], "the same device and entities as last time");
  second.sim.plug(PATH);
  await second.until(() => second.bus.last("hub/greenhouse/availability") === "online");
  await second.until(() => second.bus.last("hub/greenhouse/fan") !== undefined);
  t.equal(second.announced.length, 1, "the same banner: not announced again");
  await second.host.stop();

  // The sketch was changed: the new banner is announced and remembered.
  const third = await run(DEFAULT_SIM_CHANNELS.filter((c) => c.name !== "light"));
  await third.until(() => third.announced.length === 2);
  t.same(quantities(third.announced[1]), ["soil_moisture", "temperature", "door", "pump", "fan"]);
  await third.host.stop();
  t.notOk(readFileSync(join(stateDir, "arduino-channels.json"), "utf8").includes("light"), "the removed channel is forgotten");
});

t.test("a board that does not reset when the port opens (native USB) is asked for its banner", async (t) => {
  const clock = fakeClock();
  const bus = memoryBus();
  const sim = createSimSerial({ clock });
  const board = createSimArduino({ clock, random: () => 0.5, noise: 0, nativeUsb: true });
  sim.attach(PATH, board, "leonardo");
  const cfg = { name: "leonardo", type: "arduino", path: PATH, protocol: "hubproto", ping_interval: 5000, ping_timeout: 2000, sampling_interval: 1000 } as ArduinoConfig;
  const host = createArduinoHost([cfg], { bus, clock, log: memoryLogger(), topics: hubTopics("hub"), serial: sim });
  await host.start();
  t.teardown(() => host.stop());
  const start = clock.monotonic();
  await settle(clock, (async () => { while (bus.last("hub/leonardo/availability") !== "online") await new Promise((r) => setImmediate(r)); })(), 20_000);
  t.ok(clock.monotonic() - start < 4000, "online within the banner timeout, without reopening the port");
  t.ok(board.received.some((l) => l.startsWith("HELLO*")), "the hub sent HELLO");
});

// Home Assistant discovery: config payloads checked field by field, the per-quantity defaults, and the
// service: retained announcements, hub id and announced ids kept in <state_dir>/discovery.json,
// withdrawal of removed devices, re-announcement on homeassistant/status online, enabled: false.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { createDiscovery, discoveryMessages, entitiesFor, type DiscoveryDevice, type DiscoveryMessage } from "../hub/discovery.js";
import { memoryLogger } from "../hub/log.js";
import { hubTopics } from "../hub/topics.js";
import { memoryBus } from "./support/memory-bus.js";

const topics = hubTopics("hub");
const identity = { hubId: "a1b2c3d4", hubName: "hub kitchen-pi", prefix: "homeassistant", topics, version: "1.2.3" };

const house: DiscoveryDevice[] = [
  {
    name: "living_room",
    model: "bme280",
    entities: entitiesFor("bme280", { temperature: { unit: "°C", precision: 2 }, humidity: { unit: "%", precision: 1 }, pressure: { unit: "hPa", precision: 1 } }, {}),
  },
  { name: "garden", model: "simulated_sensor", entities: entitiesFor("simulated_sensor", { lux: { unit: "lx", precision: 0 }, rain: {} }, {}) },
  { name: "button", model: "gpio_input", entities: entitiesFor("gpio_input", { state: {} }, {}) },
  { name: "hall-pir", model: "gpio_input", entities: entitiesFor("gpio_input", { state: {} }, { device_class: "motion" }) },
  { name: "relay", model: "gpio_output", entities: entitiesFor("gpio_output", { state: {} }, {}) },
];

const byId = (msgs: DiscoveryMessage[], id: string) => {
  const m = msgs.find((x) => x.id === id);
  if (!m) throw new Error(`no message ${id}: ${msgs.map((x) => x.id).join(", ")}`);
  return m;
};

const availability = (device: string) => [
  { topic: "hub/status", payload_available: "online", payload_not_available: "offline" },
  { topic: `hub/${device}/availability`, payload_available: "online", payload_not_available: "offline" },
];
const origin = { name: "hub", sw_version: "1.2.3" };

t.test("a temperature sensor, field by field", async (t) => {
  const m = byId(discoveryMessages(identity, house), "hub_a1b2c3d4_living_room_temperature");
  t.equal(m.topic, "homeassistant/sensor/hub_a1b2c3d4/living_room_temperature/config");
  t.strictSame(m.payload, {
    name: "Temperature",
    unique_id: "hub_a1b2c3d4_living_room_temperature",
    default_entity_id: "sensor.living_room_temperature",
    state_topic: "hub/living_room/temperature",
    availability: availability("living_room"),
    availability_mode: "all",
    device_class: "temperature",
    unit_of_measurement: "°C",
    state_class: "measurement",
    suggested_display_precision: 2,
    device: {
      identifiers: ["hub_a1b2c3d4_living_room"],
      name: "Living room",
      manufacturer: "hub",
      model: "bme280",
      via_device: "hub_a1b2c3d4",
    },
    origin,
  });
  t.notOk("object_id" in m.payload, "not the deprecated object_id");
});

t.test("defaults per quantity: device_class, unit and state_class", async (t) => {
  const msgs = discoveryMessages(identity, house);
  const pick = (id: string) => {
    const p = byId(msgs, id).payload;
    return [p.device_class, p.unit_of_measurement, p.state_class];
  };
  t.same(pick("hub_a1b2c3d4_living_room_humidity"), ["humidity", "%", "measurement"]);
  t.same(pick("hub_a1b2c3d4_living_room_pressure"), ["pressure", "hPa", "measurement"]);
  t.same(pick("hub_a1b2c3d4_garden_lux"), ["illuminance", "lx", "measurement"]);
  t.same(pick("hub_a1b2c3d4_garden_rain"), [undefined, undefined, undefined], "unknown quantity, no unit: a plain text sensor");
  const more = discoveryMessages(identity, [
    {
      name: "x",
      model: "m",
      entities: entitiesFor("m", { temperature: {}, ch0: { unit: "V" }, humidity: { unit: "g/m³" }, pressure: { unit: "Pa" }, energy: { unit: "Wh" } }, {}),
    },
  ]);
  const p = (id: string) => {
    const q = byId(more, id).payload;
    return [q.device_class, q.unit_of_measurement, q.state_class];
  };
  t.same(p("hub_a1b2c3d4_x_temperature"), ["temperature", "°C", "measurement"], "the default unit when the driver gives none");
  t.same(p("hub_a1b2c3d4_x_ch0"), ["voltage", "V", "measurement"], "class from the unit for an unknown name");
  t.same(p("hub_a1b2c3d4_x_humidity"), [undefined, "g/m³", "measurement"], "a unit HA does not accept for the class drops the class");
  t.same(p("hub_a1b2c3d4_x_pressure"), ["pressure", "Pa", "measurement"]);
  t.same(p("hub_a1b2c3d4_x_energy"), ["energy", "Wh", "total_increasing"]);
});

t.test("binary sensors: the device's state, ON/OFF, optional device_class", async (t) => {
  const msgs = discoveryMessages(identity, house);
  const button = byId(msgs, "hub_a1b2c3d4_button");
  t.equal(button.topic, "homeassistant/binary_sensor/hub_a1b2c3d4/button/config");
  t.strictSame(button.payload, {
    name: null,
    unique_id: "hub_a1b2c3d4_button",
    default_entity_id: "binary_sensor.button",
    state_topic: "hub/button",
    availability: availability("button"),
    availability_mode: "all",
    payload_on: "ON",
    payload_off: "OFF",
    device: { identifiers: ["hub_a1b2c3d4_button"], name: "Button", manufacturer: "hub", model: "gpio_input", via_device: "hub_a1b2c3d4" },
    origin,
  });
  const pir = byId(msgs, "hub_a1b2c3d4_hall-pir");
  t.equal(pir.payload.device_class, "motion");
  t.equal(pir.payload.default_entity_id, "binary_sensor.hall_pir", "entity ids have no '-'");
  t.equal(pir.topic, "homeassistant/binary_sensor/hub_a1b2c3d4/hall-pir/config");
});

t.test("a switch has its command topic", async (t) => {
  const relay = byId(discoveryMessages(identity, house), "hub_a1b2c3d4_relay");
  t.equal(relay.topic, "homeassistant/switch/hub_a1b2c3d4/relay/config");
  t.strictSame(relay.payload, {
    name: null,
    unique_id: "hub_a1b2c3d4_relay",
    default_entity_id: "switch.relay",
    state_topic: "hub/relay",
    availability: availability("relay"),
    availability_mode: "all",
    payload_on: "ON",
    payload_off: "OFF",
    command_topic: "hub/relay/set",
    state_on: "ON",
    state_off: "OFF",
    device: { identifiers: ["hub_a1b2c3d4_relay"], name: "Relay", manufacturer: "hub", model: "gpio_output", via_device: "hub_a1b2c3d4" },
    origin,
  });
});

t.test("the hub itself: a device with a connectivity entity on hub/status", async (t) => {
  const status = byId(discoveryMessages(identity, house), "hub_a1b2c3d4_status");
  t.equal(status.topic, "homeassistant/binary_sensor/hub_a1b2c3d4/status/config");
  t.strictSame(status.payload, {
    name: "Status",
    unique_id: "hub_a1b2c3d4_status",
    default_entity_id: "binary_sensor.hub_status",
    state_topic: "hub/status",
    payload_on: "online",
    payload_off: "offline",
    device_class: "connectivity",
    entity_category: "diagnostic",
    device: { identifiers: ["hub_a1b2c3d4"], name: "hub kitchen-pi", manufacturer: "hub", model: "hub", sw_version: "1.2.3" },
    origin,
  });
});

t.test("unique ids are unique per hub and per device; base topic and prefix are followed", async (t) => {
  const a = discoveryMessages(identity, house);
  const b = discoveryMessages({ ...identity, hubId: "ffff0000" }, house);
  t.equal(new Set(a.map((m) => m.id)).size, a.length, "unique within a hub");
  t.equal(new Set([...a, ...b].map((m) => m.id)).size, a.length + b.length, "and across hubs");
  t.equal(new Set([...a, ...b].map((m) => m.topic)).size, a.length + b.length, "config topics too");
  const other = discoveryMessages({ ...identity, prefix: "ha", topics: hubTopics("home/hub") }, house);
  const relay = byId(other, "hub_a1b2c3d4_relay");
  t.equal(relay.topic, "ha/switch/hub_a1b2c3d4/relay/config");
  t.equal(relay.payload.command_topic, "home/hub/relay/set");
  t.equal(byId(other, "hub_a1b2c3d4_status").payload.default_entity_id, "binary_sensor.home_hub_status");
});

function service(dir: string, bus = memoryBus(), o: { devices?: DiscoveryDevice[]; enabled?: boolean; prefix?: string } = {}) {
  const log = memoryLogger();
  let ids = 0;
  const svc = createDiscovery({
    bus,
    log,
    topics,
    enabled: o.enabled ?? true,
    prefix: o.prefix ?? "homeassistant",
    stateDir: dir,
    version: "1.2.3",
    hubName: "hub test",
    devices: o.devices ?? house,
    newHubId: () => `beef000${ids++}`,
  });
  return { svc, bus, log };
}

t.test("the service announces retained, keeps hub id and ids in discovery.json, withdraws removed devices", async (t) => {
  const dir = t.testdir();
  const first = service(dir);
  await first.svc.start();
  const configs = first.bus.published.filter((m) => m.topic.startsWith("homeassistant/"));
  t.equal(configs.length, discoveryMessages(identity, house).length);
  t.ok(configs.every((m) => m.retain && m.qos === 1));
  const relay = JSON.parse(first.bus.last("homeassistant/switch/hub_beef0000/relay/config")!);
  t.equal(relay.unique_id, "hub_beef0000_relay");
  const saved = JSON.parse(readFileSync(join(dir, "discovery.json"), "utf8"));
  t.equal(saved.hub_id, "beef0000");
  t.equal(saved.announced.hub_beef0000_relay, "homeassistant/switch/hub_beef0000/relay/config");
  await first.svc.stop();

  // Restart without the relay and the garden: same hub id; their config topics get an empty retained payload.
  const second = service(dir, memoryBus(), { devices: house.filter((d) => d.name !== "relay" && d.name !== "garden") });
  await second.svc.start();
  const empties = second.bus.published.filter((m) => m.payload.length === 0);
  t.same(
    empties.map((m) => m.topic).sort(),
    [
      "homeassistant/sensor/hub_beef0000/garden_lux/config",
      "homeassistant/sensor/hub_beef0000/garden_rain/config",
      "homeassistant/switch/hub_beef0000/relay/config",
    ],
  );
  t.ok(empties.every((m) => m.retain), "retained, so the broker forgets the config too");
  t.equal(JSON.parse(second.bus.last("homeassistant/binary_sensor/hub_beef0000/button/config")!).unique_id, "hub_beef0000_button", "hub id kept");
  const saved2 = JSON.parse(readFileSync(join(dir, "discovery.json"), "utf8"));
  t.notOk("hub_beef0000_relay" in saved2.announced);
  await second.svc.stop();

  // A third start with the same devices withdraws nothing.
  const third = service(dir, memoryBus(), { devices: house.filter((d) => d.name !== "relay" && d.name !== "garden") });
  await third.svc.start();
  t.equal(third.bus.published.filter((m) => m.payload.length === 0).length, 0);
  await third.svc.stop();
});

t.test("re-announces when Home Assistant says homeassistant/status online", async (t) => {
  const { svc, bus } = service(t.testdir());
  await svc.start();
  const n = bus.published.length;
  await bus.publish({ topic: "homeassistant/status", payload: Buffer.from("offline"), qos: 1, retain: false });
  t.equal(bus.published.length, n + 1, "offline: nothing");
  await bus.publish({ topic: "homeassistant/status", payload: Buffer.from("online"), qos: 1, retain: false });
  await new Promise((r) => setImmediate(r));
  const again = bus.published.slice(n + 2);
  t.equal(again.length, discoveryMessages(identity, house).length, "every config again");
  t.ok(again.every((m) => m.topic.endsWith("/config") && m.retain));
  await svc.stop();
  const m = bus.published.length;
  await bus.publish({ topic: "homeassistant/status", payload: Buffer.from("online"), qos: 1, retain: false });
  t.equal(bus.published.length, m + 1, "not after stop");
});

t.test("enabled: false withdraws what was announced and announces nothing", async (t) => {
  const dir = t.testdir();
  const on = service(dir);
  await on.svc.start();
  await on.svc.stop();
  const off = service(dir, memoryBus(), { enabled: false });
  await off.svc.start();
  const all = [...off.bus.published];
  t.equal(all.length, discoveryMessages(identity, house).length);
  t.ok(all.every((m) => m.payload.length === 0 && m.retain));
  await off.bus.publish({ topic: "homeassistant/status", payload: Buffer.from("online"), qos: 1, retain: false });
  t.equal(off.bus.published.length, all.length + 1, "not listening for Home Assistant");
  await off.svc.stop();
});

t.test("a changed prefix clears the old topics and announces under the new one", async (t) => {
  const dir = t.testdir();
  const a = service(dir);
  await a.svc.start();
  await a.svc.stop();
  const b = service(dir, memoryBus(), { prefix: "ha" });
  await b.svc.start();
  const empties = b.bus.published.filter((m) => m.payload.length === 0);
  t.ok(empties.length > 0 && empties.every((m) => m.topic.startsWith("homeassistant/")));
  t.ok(b.bus.last("ha/switch/hub_beef0000/relay/config"));
  await b.svc.stop();
});

t.test("a corrupt discovery.json: warning, fresh hub id", async (t) => {
  const dir = t.testdir();
  writeFileSync(join(dir, "discovery.json"), "{ not json");
  const { svc, log, bus } = service(dir);
  await svc.start();
  t.match(log.lines.join("\n"), /WARN .*not valid JSON/);
  t.ok(bus.last("homeassistant/switch/hub_beef0000/relay/config"));
  await svc.stop();
});

t.test("boards that come online together: their updates all land in one valid discovery.json", async (t) => {
  const dir = t.testdir();
  const { svc, log } = service(dir);
  await svc.start();
  const board = (name: string): DiscoveryDevice => ({ name, model: "arduino", entities: [{ quantity: "soil", component: "sensor" }] });
  // Three at once: each writes discovery.json.tmp and renames it; unordered, one rename finds no file.
  await Promise.all([svc.update(board("bed_a")), svc.update(board("bed_b")), svc.update(board("bed_c"))]);
  const saved = JSON.parse(readFileSync(join(dir, "discovery.json"), "utf8"));
  t.same(
    ["bed_a", "bed_b", "bed_c"].map((n) => saved.announced[`hub_beef0000_${n}_soil`]),
    ["bed_a", "bed_b", "bed_c"].map((n) => `homeassistant/sensor/hub_beef0000/${n}_soil/config`),
    "every board's entity is in the state file",
  );
  t.notMatch(log.lines.join("\n"), /ENOENT/, "no write failed");
  await svc.stop();
});

t.test("a board that drops a channel while running: its entity is withdrawn at once, not at the next restart", async (t) => {
  const dir = t.testdir();
  const { svc, bus, log } = service(dir);
  await svc.start();
  const board = (...quantities: string[]): DiscoveryDevice => ({ name: "bed", model: "arduino", entities: quantities.map((quantity) => ({ quantity, component: "sensor" })) });
  await svc.update(board("soil", "light"));
  const light = "homeassistant/sensor/hub_beef0000/bed_light/config";
  t.ok(bus.last(light), "announced");
  await svc.update(board("soil"));
  t.equal(bus.last(light), "", "an empty retained config withdraws it");
  t.ok(bus.last("homeassistant/sensor/hub_beef0000/bed_soil/config"), "the kept channel stays announced");
  const saved = JSON.parse(readFileSync(join(dir, "discovery.json"), "utf8"));
  t.equal(saved.announced.hub_beef0000_bed_light, undefined, "and it is gone from discovery.json");
  t.equal(saved.announced.hub_beef0000_bed_soil, "homeassistant/sensor/hub_beef0000/bed_soil/config");
  t.match(log.lines.join("\n"), /withdrew from Home Assistant id=hub_beef0000_bed_light/);
  await svc.stop();
});

// Home Assistant MQTT discovery (DESIGN.md §5): one retained config message per entity under
// <prefix>/<component>/hub_<id>/<object>/config, so every configured device shows up in Home Assistant
// with no YAML there. Identity: a random hub id kept in <state_dir>/discovery.json, unique ids per hub
// and device; availability is the hub's status AND the device's (mode all). Re-announces when Home
// Assistant says <prefix>/status = online; withdraws (empty retained payload) the entities of devices
// taken out of the config, using the list of announced ids in discovery.json.
import { readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Bus, Cancel, Logger, Message, Service, Topics } from "./contracts.js";
import type { QuantityInfo } from "../drivers/types.js";
import { STATE_QUANTITY, stateTopic } from "./devices.js";

export type Component = "sensor" | "binary_sensor" | "switch" | "number";

export interface DiscoveryEntity {
  /** The quantity it shows; `state` is the device's own state (hub/<device>). */
  quantity: string;
  component: Component;
  unit?: string;
  precision?: number;
  deviceClass?: string;
}

export interface DiscoveryDevice {
  /** The configured device name (a slug). */
  name: string;
  /** Its type in the config, shown as the model. */
  model: string;
  entities: DiscoveryEntity[];
}

/** What the `state` of a device type is in Home Assistant; other types' quantities are sensors. */
const STATE_COMPONENT: Record<string, Component> = { gpio_input: "binary_sensor", gpio_output: "switch" };

interface SensorDefaults {
  deviceClass: string;
  unit: string;
  /** Units Home Assistant accepts for this device class; another unit drops the class. */
  units: readonly string[];
  stateClass?: "measurement" | "total_increasing";
}

const TEMPERATURE: SensorDefaults = { deviceClass: "temperature", unit: "°C", units: ["°C", "°F", "K"] };
const PRESSURE: SensorDefaults = { deviceClass: "pressure", unit: "hPa", units: ["Pa", "hPa", "kPa", "bar", "cbar", "mbar", "mmHg", "inHg", "psi"] };
const ILLUMINANCE: SensorDefaults = { deviceClass: "illuminance", unit: "lx", units: ["lx"] };
const VOLTAGE: SensorDefaults = { deviceClass: "voltage", unit: "V", units: ["V", "mV", "µV", "kV", "MV"] };
const CURRENT: SensorDefaults = { deviceClass: "current", unit: "A", units: ["A", "mA"] };

/** Defaults per quantity name (Home Assistant sensor device classes). */
const QUANTITY_DEFAULTS: Record<string, SensorDefaults> = {
  temperature: TEMPERATURE,
  humidity: { deviceClass: "humidity", unit: "%", units: ["%"] },
  pressure: PRESSURE,
  lux: ILLUMINANCE,
  illuminance: ILLUMINANCE,
  voltage: VOLTAGE,
  current: CURRENT,
  power: { deviceClass: "power", unit: "W", units: ["W", "kW", "mW"] },
  energy: { deviceClass: "energy", unit: "kWh", units: ["Wh", "kWh", "MWh"], stateClass: "total_increasing" },
  co2: { deviceClass: "carbon_dioxide", unit: "ppm", units: ["ppm"] },
  battery: { deviceClass: "battery", unit: "%", units: ["%"] },
  moisture: { deviceClass: "moisture", unit: "%", units: ["%"] },
};

/** For quantities with an unknown name: the class their unit implies. */
const UNIT_DEFAULTS: Record<string, SensorDefaults> = {
  "°C": TEMPERATURE,
  "°F": TEMPERATURE,
  hPa: PRESSURE,
  Pa: PRESSURE,
  kPa: PRESSURE,
  lx: ILLUMINANCE,
  V: VOLTAGE,
  mV: VOLTAGE,
  A: CURRENT,
  mA: CURRENT,
};

/** The entities of one configured device, from its type, its driver's quantities and its options. */
export function entitiesFor(type: string, quantities: Record<string, QuantityInfo>, options: { device_class?: unknown }): DiscoveryEntity[] {
  return Object.entries(quantities).map(([quantity, q]) => {
    const stateComponent = quantity === STATE_QUANTITY ? STATE_COMPONENT[type] : undefined;
    if (stateComponent) {
      const e: DiscoveryEntity = { quantity, component: stateComponent };
      if (typeof options.device_class === "string") e.deviceClass = options.device_class;
      return e;
    }
    const e: DiscoveryEntity = { quantity, component: "sensor" };
    if (q.unit !== undefined) e.unit = q.unit;
    if (q.precision !== undefined) e.precision = q.precision;
    return e;
  });
}

export interface DiscoveryIdentity {
  hubId: string;
  hubName: string;
  prefix: string;
  topics: Topics;
  version: string;
}

export interface DiscoveryMessage {
  /** unique_id of the entity. */
  id: string;
  topic: string;
  payload: Record<string, unknown>;
}

const humanize = (s: string) => {
  const words = s.replace(/[_-]+/g, " ").trim();
  return words.charAt(0).toUpperCase() + words.slice(1);
};
/** Entity ids are [a-z0-9_]: device names may also hold `-`, base topics anything. */
const entitySlug = (s: string) => s.toLowerCase().replace(/[^a-z0-9_]+/g, "_");

/** Every config message for the hub itself and the given devices. Pure: tests check it field by field. */
export function discoveryMessages(id: DiscoveryIdentity, devices: readonly DiscoveryDevice[]): DiscoveryMessage[] {
  const { topics } = id;
  const node = `hub_${id.hubId}`;
  const origin = { name: "hub", sw_version: id.version };
  const hubDevice = { identifiers: [node], name: id.hubName, manufacturer: "hub", model: "hub", sw_version: id.version };
  const out: DiscoveryMessage[] = [
    {
      id: `${node}_status`,
      topic: `${id.prefix}/binary_sensor/${node}/status/config`,
      // No availability: this entity IS the hub's availability, and should read "disconnected", not "unavailable".
      payload: {
        name: "Status",
        unique_id: `${node}_status`,
        default_entity_id: `binary_sensor.${entitySlug(topics.base)}_status`,
        state_topic: topics.status(),
        payload_on: "online",
        payload_off: "offline",
        device_class: "connectivity",
        entity_category: "diagnostic",
        device: hubDevice,
        origin,
      },
    },
  ];
  for (const d of devices) {
    const device = { identifiers: [`${node}_${d.name}`], name: humanize(d.name), manufacturer: "hub", model: d.model, via_device: node };
    const availability = [
      { topic: topics.status(), payload_available: "online", payload_not_available: "offline" },
      { topic: topics.availability(d.name), payload_available: "online", payload_not_available: "offline" },
    ];
    for (const e of d.entities) {
      const isState = e.quantity === STATE_QUANTITY;
      const object = isState ? d.name : `${d.name}_${e.quantity}`;
      const uniqueId = `${node}_${object}`;
      const payload: Record<string, unknown> = {
        // null: the device's main feature, named after the device (HA entity naming rules).
        name: isState ? null : humanize(e.quantity),
        unique_id: uniqueId,
        default_entity_id: `${e.component}.${entitySlug(object)}`,
        state_topic: stateTopic(topics, d.name, e.quantity),
        availability,
        availability_mode: "all",
      };
      if (e.component === "number") {
        // An Arduino PWM output: 0..255 on its .../set topic.
        Object.assign(payload, { command_topic: `${stateTopic(topics, d.name, e.quantity)}/set`, min: 0, max: 255, step: 1, mode: "slider" });
      } else if (e.component === "sensor") {
        const byName = Object.hasOwn(QUANTITY_DEFAULTS, e.quantity) ? QUANTITY_DEFAULTS[e.quantity] : undefined;
        const unit = e.unit ?? byName?.unit;
        const defaults = byName ?? (unit !== undefined && Object.hasOwn(UNIT_DEFAULTS, unit) ? UNIT_DEFAULTS[unit] : undefined);
        if (defaults && (unit === undefined || defaults.units.includes(unit))) payload.device_class = defaults.deviceClass;
        if (unit !== undefined) payload.unit_of_measurement = unit;
        // A state class makes HA keep long-term statistics; only for numbers (a unit or a known class).
        if (defaults || unit !== undefined) payload.state_class = defaults?.stateClass ?? "measurement";
        if (e.precision !== undefined) payload.suggested_display_precision = e.precision;
      } else {
        payload.payload_on = "ON";
        payload.payload_off = "OFF";
        if (e.deviceClass !== undefined) payload.device_class = e.deviceClass;
        if (e.component === "switch") {
          // A device's own state is commanded on <base>/<device>/set, any other quantity on its own .../set.
          payload.command_topic = isState ? topics.set(d.name) : `${stateTopic(topics, d.name, e.quantity)}/set`;
          payload.state_on = "ON";
          payload.state_off = "OFF";
        }
      }
      payload.device = device;
      payload.origin = origin;
      out.push({ id: uniqueId, topic: `${id.prefix}/${e.component}/${node}/${object}/config`, payload });
    }
  }
  return out;
}

interface DiscoveryState {
  hub_id?: string;
  /** unique_id → config topic last announced. */
  announced?: Record<string, string>;
}

export interface DiscoveryDeps {
  bus: Bus;
  log: Logger;
  topics: Topics;
  enabled: boolean;
  prefix: string;
  stateDir: string;
  version: string;
  hubName: string;
  devices: readonly DiscoveryDevice[];
  /** A new hub id (8 hex digits by default); injected by tests. */
  newHubId?: () => string;
}

const STATE_FILE = "discovery.json";

async function loadState(file: string, log: Logger): Promise<{ state: DiscoveryState; text: string }> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    if ((err as { code?: string }).code !== "ENOENT") log.warn("cannot read discovery state; starting afresh", { file, error: err });
    return { state: {}, text: "" };
  }
  try {
    const v = JSON.parse(text) as unknown;
    if (typeof v === "object" && v !== null && !Array.isArray(v)) return { state: v as DiscoveryState, text };
  } catch {}
  log.warn("discovery state is not valid JSON; starting afresh (Home Assistant may show duplicates)", { file });
  return { state: {}, text };
}

/**
 * A new hub's id (8 hex digits, kept in discovery.json): it only keeps Home Assistant's unique_ids of
 * two hubs apart, it is no secret, so Math.random serves (node:crypto would load OpenSSL for it).
 */
function newHubId(): string {
  return Math.floor(Math.random() * 0x1_0000_0000)
    .toString(16)
    .padStart(8, "0");
}

export function createDiscovery(deps: DiscoveryDeps): Service & { update(d: DiscoveryDevice): Promise<void> } {
  const { bus, log } = deps;
  const file = join(deps.stateDir, STATE_FILE);
  let messages: DiscoveryMessage[] = [];
  let birth: Cancel | undefined;
  // Devices whose entities are learnt at run time (an Arduino's banner) are replaced by update().
  let devices = [...deps.devices];
  let started: { hubId: string; text: string } | undefined;
  // Boards can come online together: their updates' writes of the state file (one .tmp) take turns.
  let saving: Promise<unknown> = Promise.resolve();

  // Via a rename, so a power cut leaves the old file or the new one, never half of one.
  const writeState = async (text: string) => {
    await writeFile(`${file}.tmp`, text);
    await rename(`${file}.tmp`, file);
  };
  const publish = (topic: string, payload: string) => bus.publish({ topic, payload: Buffer.from(payload), qos: 1, retain: true });
  const announce = async () => {
    await Promise.all(messages.map((m) => publish(m.topic, JSON.stringify(m.payload))));
    log.info("announced to Home Assistant", { entities: messages.length, prefix: deps.prefix });
  };

  return {
    name: "discovery",
    async start() {
      const { state, text } = await loadState(file, log);
      const hubId = typeof state.hub_id === "string" && /^[a-z0-9]+$/.test(state.hub_id) ? state.hub_id : (deps.newHubId ?? newHubId)();
      const before = new Map(Object.entries(state.announced ?? {}));
      messages = deps.enabled
        ? discoveryMessages({ hubId, hubName: deps.hubName, prefix: deps.prefix, topics: deps.topics, version: deps.version }, devices)
        : [];
      const now = new Map(messages.map((m) => [m.id, m.topic]));
      // Withdraw what is no longer announced at the same topic (device removed, prefix changed, disabled).
      for (const [id, topic] of before) {
        if (now.get(id) === topic) continue;
        await publish(topic, "");
        log.info("withdrew from Home Assistant", { id });
      }
      const next = `${JSON.stringify({ hub_id: hubId, announced: Object.fromEntries(now) } satisfies DiscoveryState, null, 2)}\n`;
      // Written only when it changed (SD cards wear).
      if (next !== text) await writeState(next);
      started = { hubId, text: next };
      if (!deps.enabled) return;
      await announce();
      // Home Assistant's birth message: it (re)started, so announce again. (A retained "online" seen at
      // subscribe time repeats the announcement once: harmless, and a retained birth still works.)
      birth = await bus.subscribe(`${deps.prefix}/status`, (m: Message) => {
        if (m.payload.toString() !== "online") return;
        void announce().catch((err) => log.warn("could not re-announce", { error: err }));
      });
    },
    async stop() {
      birth?.();
      birth = undefined;
    },
    /**
     * Announces a device's entities anew (its entity list changed while running), and withdraws those
     * it no longer has (a channel dropped from an Arduino sketch): as a restart would, so Home
     * Assistant does not keep an entity that can never have a value again.
     */
    async update(d) {
      const before = devices.find((x) => x.name === d.name);
      devices = [...devices.filter((x) => x.name !== d.name), d];
      if (!started || !deps.enabled) return;
      const id = { hubId: started.hubId, hubName: deps.hubName, prefix: deps.prefix, topics: deps.topics, version: deps.version };
      const fresh = discoveryMessages(id, [d]).slice(1); // [0] is the hub's own status entity
      const kept = new Set(fresh.map((f) => f.id));
      const gone = before === undefined ? [] : discoveryMessages(id, [before]).slice(1).filter((m) => !kept.has(m.id));
      const dropped = new Set(gone.map((m) => m.id));
      messages = [...messages.filter((m) => !kept.has(m.id) && !dropped.has(m.id)), ...fresh];
      await Promise.all([...gone.map((m) => publish(m.topic, "")), ...fresh.map((m) => publish(m.topic, JSON.stringify(m.payload)))]);
      for (const m of gone) log.info("withdrew from Home Assistant", { id: m.id });
      log.info("announced to Home Assistant", { device: d.name, entities: fresh.length });
      const s = started;
      const save = saving.then(async () => {
        // Built when its turn comes, so the last write holds every update made so far.
        const next = `${JSON.stringify({ hub_id: s.hubId, announced: Object.fromEntries(messages.map((m) => [m.id, m.topic])) } satisfies DiscoveryState, null, 2)}\n`;
        if (next === s.text) return;
        await writeState(next);
        s.text = next;
      });
      saving = save.catch(() => {});
      await save;
    },
  };
}

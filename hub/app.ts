// The composition root: builds every part from the config and passes clock, logger and I/O down.
// No module-level singletons: everything the hub holds is reachable from what buildApp returns.
// Each part's module is imported where the config asks for it (`await import(...)`, typed through
// `typeof import`): a hub without ws listeners, storage, bridges, Arduinos, sensors or GPIO never
// loads ws, better-sqlite3, the bridge, the Arduino link, the simulators or those drivers. Module
// loading is most of a start's CPU (10x slower on a Pi Zero) and every module loaded stays in RSS;
// the bench's idlerss row measures it.
import * as fs from "node:fs";
import { mkdir } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import type { Bus, Clock, Logger, Service } from "./contracts.js";
import type { Config } from "./config/schema.js";
import type { EmbeddedBroker } from "./broker/broker.js";
import type { BrokerLimits } from "./broker/core.js";
import { createDeviceHost, type DeviceHostDeps, type DeviceSpec } from "./devices.js";
import { createDiscovery, type DiscoveryDevice, entitiesFor } from "./discovery.js";
import type { ArduinoConfig } from "./arduino.js";
import { loadDrivers } from "./driver-registry.js";
import { createLifecycle, type Lifecycle } from "./lifecycle.js";
import { hubTopics } from "./topics.js";
import { createRulesEngine } from "../rules/engine.js";
import type { RulesLoad } from "../rules/problems.js";
import type { Rule } from "../rules/schema.js";
import { watchRulesDir } from "../rules/watch.js";
import { jsonTimerStore } from "../rules/timers.js";
import type { BrokerStore } from "./broker/store/journal.js";
import { sqliteTimerStore } from "./broker/store/rule-timers.js";
import type { GpioProvider } from "../drivers/io/gpio.js";
import type { SimGpioChip } from "../drivers/io/sim/gpio.js";
import type { I2cBus } from "../drivers/io/i2c.js";
import type { OneWire } from "../drivers/io/one-wire.js";

export interface AppDeps {
  config: Config;
  clock: Clock;
  log: Logger;
  version: string;
  random?: () => number;
  /** GPIO backend; default: from config.hardware (simulate: a simulated chip; linux: sysfs). */
  gpio?: GpioProvider;
  /** Reads the config file again on SIGHUP: its `rules:` are reloaded (a bad file keeps the old rules). */
  rereadConfig?: () => ConfigReread | Promise<ConfigReread>;
  /**
   * Reads and checks the rules files of `rules_dir` (ids unique with `others`, the config's rules).
   * hub run passes one that works in a child process (hub/config/isolated.ts); default: in this process.
   */
  readRulesDir?: (dir: string, others: readonly Rule[], hasLocation: boolean) => Promise<RulesLoad>;
}

type ConfigReread = { ok: true; config: Config } | { ok: false; problems: string };

export interface App {
  lifecycle: Lifecycle;
  /** The embedded broker, unless broker.external is configured. */
  broker: EmbeddedBroker | undefined;
  /** A Bus for callers outside the parts (tests, status). */
  bus: Bus;
}

/** Maps config limits (snake_case, durations in ms) to the broker's own names. */
export function brokerLimits(l: Config["broker"]["limits"]): BrokerLimits {
  return {
    maxPacketSize: l.max_packet_size,
    connectTimeoutMs: l.connect_timeout,
    maxKeepalive: l.max_keepalive,
    maxClientIdLength: l.max_client_id_length,
    maxTopicLength: l.max_topic_length,
    maxTopicLevels: l.max_topic_levels,
    receiveMaximum: l.receive_maximum,
    maxInflightOutbound: l.max_inflight_outbound,
    maxQueuedMessages: l.max_queued_messages,
    maxQueuedBytes: l.max_queued_bytes,
    maxSubscriptionsPerClient: l.max_subscriptions_per_client,
    maxConnections: l.max_connections,
    drainTimeoutMs: l.drain_timeout,
    topicAliasMaximum: l.topic_alias_maximum,
    maxSessionExpiry: l.max_session_expiry,
    maxRetainedMessages: l.max_retained_messages,
    maxRetainedBytes: l.max_retained_bytes,
    maxUserProperties: l.max_user_properties,
    flapping: l.flapping.enabled ? { maxConnects: l.flapping.max_connects, windowMs: l.flapping.window, banMs: l.flapping.ban } : undefined,
  };
}

/**
 * I2C buses and 1-Wire for the sensor drivers. simulate: a register-level twin of every configured
 * sensor at its bus and address, in a scripted house; linux: /dev/i2c-N through i2c-bus (opened on
 * first use, so a hub without I2C sensors never needs it) and the kernel's w1 sysfs.
 */
async function sensorHardware(config: Config, clock: Clock, gpio?: SimGpioChip): Promise<{ i2c: (bus: number) => Promise<I2cBus>; oneWire: OneWire; service: Service }> {
  if (config.hardware === "simulate") {
    // GPIO expanders are simulated chips on their bus too, their INTA wired to the simulated GPIO.
    const { createSimulatedHardware } = await import("../drivers/io/sim/hardware.js");
    const sim = createSimulatedHardware([...config.devices, ...config.gpio.expanders], { clock, gpio });
    return { i2c: sim.i2c, oneWire: sim.oneWire, service: { name: "sensor-sim", start: () => sim.start(), stop: () => sim.stop() } };
  }
  const [{ i2cProvider }, { linuxI2c }, { createOneWire, W1_SYSFS }] = await Promise.all([
    import("../drivers/io/i2c.js"),
    import("../drivers/io/linux-i2c.js"),
    import("../drivers/io/one-wire.js"),
  ]);
  const buses = i2cProvider(linuxI2c());
  return {
    i2c: (n) => buses.bus(n),
    oneWire: createOneWire(W1_SYSFS),
    service: { name: "i2c", async start() {}, stop: () => buses.closeAll() },
  };
}

/** Arduinos have their own host (hub/arduino.ts): their link, not a poll loop, decides availability. */
const isArduino = (d: Config["devices"][number]): d is ArduinoConfig => d.type === "arduino";

async function deviceSpecs(config: Config): Promise<DeviceSpec[]> {
  const polled = config.devices.filter((d) => !isArduino(d));
  const drivers = await loadDrivers(polled.map((d) => d.type));
  return polled.map((d) => {
    // Common fields go to the host; the rest are the driver's options.
    const { name, type, deadband, heartbeat, ...rest } = d;
    const { interval, ...options } = rest as typeof rest & { interval?: number };
    return { name, interval, deadband, heartbeat, driver: drivers.get(type)!, options };
  });
}

/**
 * The hardware seams handed to drivers: GPIO (simulate: a chip whose buttons get pressed now and
 * then; linux: sysfs, resolved when the first GPIO device opens), I2C buses and 1-Wire, and the
 * MCP23017 expanders. Pushes the services that run the simulators, before the device host's.
 */
async function localIo(deps: AppDeps, random: () => number, services: Service[]): Promise<NonNullable<DeviceHostDeps["io"]>> {
  const { config, clock, log } = deps;
  let gpio = deps.gpio;
  let simChip: SimGpioChip | undefined;
  if (!gpio && config.hardware === "simulate") {
    // The simulated house: buttons get pressed now and then, relays log their level.
    const { autoPress, createSimGpioChip } = await import("../drivers/io/sim/gpio.js");
    const chip = createSimGpioChip({ clock, log: log.child("gpio-sim") });
    simChip = chip;
    gpio = chip.provider;
    let cancel: (() => void) | undefined;
    services.push({
      name: "gpio-sim",
      async start() {
        cancel = autoPress(chip, { clock, random, everyMs: 20_000, holdMs: 500 });
      },
      async stop() {
        cancel?.();
      },
    });
  }
  // Resolves the GPIO chip lazily, when the first GPIO device opens: no GPIO device, no sysfs needed.
  gpio ??= (await import("../drivers/io/linux-gpio.js")).linuxGpio({ clock, log: log.child("gpio"), labels: config.gpio.chip_labels });
  // Before the device host: the simulated sensors exist before the first reading (and stop after the last).
  const sensors = await sensorHardware(config, clock, simChip);
  services.push(sensors.service);
  // MCP23017 expanders: GPIO backends on an I2C bus, opened when their first pin is.
  const expanders = new Map<string, GpioProvider>();
  if (config.gpio.expanders.length > 0) {
    const { mcp23017Gpio } = await import("../drivers/mcp23017.js");
    for (const e of config.gpio.expanders) {
      const cfg = { name: e.name, bus: e.bus, address: e.address, pollMs: e.poll_interval, interruptPin: e.interrupt_pin };
      expanders.set(e.name, mcp23017Gpio(cfg, { clock, log: log.child(`gpio/${e.name}`), i2c: sensors.i2c, gpio }));
    }
  }
  return { gpio, i2c: sensors.i2c, oneWire: sensors.oneWire, expanders: (name) => expanders.get(name) };
}

/** Where the rules engine keeps its pending timers: the broker's SQLite file if there is one, else a JSON file. */
function ruleTimers(config: Config, store: BrokerStore | undefined, clock: Clock, log: Logger) {
  const jsonFile = join(config.state_dir, "rules-timers.json");
  const json = jsonTimerStore(jsonFile, fs, log, () => clock.now());
  if (store === undefined) return json;
  return sqliteTimerStore({ db: () => store.db, json, jsonFile, exists: fs.existsSync, remove: (f) => fs.unlinkSync(f), log });
}

export async function buildApp(deps: AppDeps): Promise<App> {
  const { config, clock, log } = deps;
  const topics = hubTopics(config.base_topic);
  const services: Service[] = [];
  // hardware: linux on a machine without the GPIO/I2C/1-Wire the devices need: fail before anything starts.
  if (config.hardware === "linux") services.push((await import("./hardware-check.js")).hardwareCheck(config, { gpio: deps.gpio === undefined }));

  services.push({
    name: "state-dir",
    async start() {
      await mkdir(config.state_dir, { recursive: true });
    },
    async stop() {},
  });

  let broker: EmbeddedBroker | undefined;
  /** The embedded broker's durable store (broker.db), which the rule timers share. */
  let brokerStore: BrokerStore | undefined;
  let busFor: (name: string) => Bus;
  const external = config.broker.external;
  if (external) {
    const { createExternalBus } = await import("./bus/external.js");
    const ext = createExternalBus(external, { clock, log: log.child("bus"), statusTopic: topics.status() });
    services.push(ext);
    busFor = () => ext.bus;
  } else {
    const { createBroker } = await import("./broker/broker.js");
    // better-sqlite3 only when the broker keeps state on disk.
    const journal = config.broker.storage.enabled ? await import("./broker/store/journal.js") : undefined;
    // <state_dir>/broker.db, opened by the broker's start() (after the state-dir service made the directory).
    brokerStore = journal?.createBrokerStore(
      {
        path: join(config.state_dir, "broker.db"),
        sync: config.broker.storage.sync,
        commitIntervalMs: config.broker.storage.commit_interval,
      },
      { clock, log: log.child("broker/store") },
    );
    broker = createBroker({
      limits: brokerLimits(config.broker.limits),
      // Each listener as configured (protocol, TLS files read again on SIGHUP: broker.reload()).
      listeners: config.broker.listeners,
      readFile: (p) => fs.readFileSync(p),
      sysIntervalMs: config.broker.sys_interval,
      version: deps.version,
      clock,
      log: log.child("broker"),
      store: brokerStore,
    });
    // Users and ACLs load before the broker listens (and before it restores wills and sessions).
    const auth = config.broker.auth;
    if (auth) services.push((await import("./broker/auth/load.js")).createAuthService(auth, { core: broker.core, clock, log: log.child("broker/auth"), readFile: (f) => fs.readFileSync(f, "utf8") }));
    services.push(broker);
    const b = broker;
    busFor = (name) => b.bus(name);
  }
  // Uplinks start after the broker and stop before it (the lifecycle stops in reverse order).
  if (config.bridges.length > 0) {
    const { createBridge } = await import("./bridge/bridge.js"); // its durable queue: better-sqlite3
    for (const bc of config.bridges) {
      const bridgeLog = log.child(`bridge/${bc.name}`);
      services.push(createBridge(bc, { bus: busFor(`bridge/${bc.name}`), clock, log: bridgeLog, stateDir: config.state_dir, baseTopic: config.base_topic }));
    }
  }
  const bus = busFor("hub");

  services.push({
    name: "status",
    async start() {
      await bus.publish({ topic: topics.status(), payload: Buffer.from("online"), qos: 1, retain: true });
    },
    async stop() {
      await bus.publish({ topic: topics.status(), payload: Buffer.from("offline"), qos: 1, retain: true });
    },
  });

  const random = deps.random ?? Math.random;
  const specs = await deviceSpecs(config);
  // GPIO, I2C and 1-Wire (real or simulated) only when a device or an expander can use them.
  const io = specs.length > 0 || config.gpio.expanders.length > 0 ? await localIo(deps, random, services) : undefined;
  services.push(
    createDeviceHost(specs, {
      bus: busFor("devices"),
      clock,
      log: log.child("devices"),
      topics,
      random,
      io,
      logReadings: config.hardware === "simulate",
    }),
  );

  // Arduino boards on serial ports: simulate: in-process boards at their configured paths, unplugged
  // and replugged by touching / removing <state_dir>/simulated-serial/<device>.unplugged.
  const arduinos = config.devices.filter(isArduino);
  let discovery: ReturnType<typeof createDiscovery> | undefined;
  const arduinoDiscovery: DiscoveryDevice[] = [];
  if (arduinos.length > 0) {
    const [{ arduinoEntities, configuredChannels, createArduinoHost }, { nodeSerial }] = await Promise.all([
      import("./arduino.js"),
      import("../drivers/io/serial-node.js"),
    ]);
    let serial: ReturnType<typeof nodeSerial> = nodeSerial();
    if (config.hardware === "simulate") {
      const [{ createSimSerial }, { attachSimArduinos }] = await Promise.all([import("../drivers/io/sim/serial.js"), import("../drivers/io/sim/arduino-board.js")]);
      const sim = createSimSerial({ clock, control: { dir: join(config.state_dir, "simulated-serial"), exists: (f) => fs.existsSync(f) } });
      attachSimArduinos(sim, arduinos, { clock, random });
      serial = sim;
      services.push({
        name: "serial-sim",
        async start() {
          await mkdir(join(config.state_dir, "simulated-serial"), { recursive: true });
          sim.start();
        },
        async stop() {
          sim.stop();
        },
      });
    }
    services.push(
      createArduinoHost(arduinos, {
        bus: busFor("arduino"),
        clock,
        log: log.child("devices"),
        topics,
        serial,
        discover: (d) => void discovery?.update(d).catch((err) => log.warn("could not announce to Home Assistant", { error: err })),
        stateDir: config.state_dir,
        logReadings: config.hardware === "simulate",
      }),
    );
    for (const d of arduinos) arduinoDiscovery.push({ name: d.name, model: "arduino", entities: arduinoEntities(configuredChannels(d)) });
  }

  const ha = config.homeassistant;
  discovery = createDiscovery({
    bus: busFor("discovery"),
    log: log.child("discovery"),
    topics,
    enabled: ha.enabled,
    prefix: ha.prefix,
    stateDir: config.state_dir,
    version: deps.version,
    hubName: `hub ${hostname()}`,
    devices: [
      ...config.devices.filter((d) => !isArduino(d)).map((d, i) => ({
        name: d.name,
        model: d.type,
        entities: entitiesFor(d.type, specs[i]!.driver.quantities(specs[i]!.options), d as { device_class?: unknown }),
      })),
      ...arduinoDiscovery,
    ],
  });
  services.push(discovery);

  // After the devices, so their first readings are retained (and known to the rules) when it starts.
  const rulesDir = config.rules_dir;
  services.push(
    createRulesEngine({
      rules: config.rules,
      bus: busFor("rules"),
      clock,
      log: log.child("rules"),
      topicsBase: config.base_topic,
      location: config.location,
      timeZone: config.location?.time_zone,
      // Read at start and again on SIGHUP; relative to the working directory, like state_dir.
      loadRules:
        rulesDir === undefined
          ? undefined
          : async (configRules) => {
              const hasLocation = config.location !== undefined;
              if (deps.readRulesDir !== undefined) return deps.readRulesDir(rulesDir, configRules, hasLocation);
              const { answer } = await import("./config/isolated.js");
              return answer({ kind: "rules", dir: rulesDir, others: configRules, hasLocation });
            },
      // SIGHUP re-reads the config file for its rules; rules_dir and location stay as at start.
      reloadConfigRules: deps.rereadConfig && (async () => {
        const r = await deps.rereadConfig!();
        return r.ok ? { ok: true, rules: r.config.rules } : r;
      }),
      // A change to a rules file reloads like SIGHUP does (debounced by the engine).
      watchRules: rulesDir === undefined ? undefined : (changed) => watchRulesDir(rulesDir, changed, log.child("rules"), fs.watch),
      // Pending `for`/delay/wait timers and queued runs survive a restart (state_dir exists: created
      // above): in broker.db when the embedded broker keeps state there (it opens before the rules
      // start), else in <state_dir>/rules-timers.json.
      timers: ruleTimers(config, brokerStore, clock, log.child("rules")),
    }),
  );

  return { lifecycle: createLifecycle(services, log, clock), broker, bus };
}

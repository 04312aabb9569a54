// THE configuration schema. The TypeScript types (`Config`), the defaults and the editors' JSON Schema
// (config.schema.json, via json-schema.ts) all come from here; nothing else holds a default. Every
// object is strict, so a misspelt key is an error rather than silently ignored.
import { z } from "zod";
import { int, nonEmpty, slug } from "./schema-kit.js";
import { duration } from "./duration.js";
import { bridgesSchema } from "../bridge/schema.js";
import { listenerSchema } from "../broker/listener-schema.js";
import { authSchema, flappingSchema } from "../broker/auth/schema.js";
import { storageSchema } from "../broker/store/schema.js";
import { locationSchema, rulesSchema } from "../../rules/schema.js";
import { arduinoShape, checkArduino } from "../../drivers/arduino/schema.js";
import { expanderField, gpioSchema, HTU21D_DESCRIPTION, htu21dResolution, pullUpField } from "./hardware-schema.js";

/** Re-exported for the parts that build on this schema (drivers, rules). */
export { int, slug };

/**
 * Fields that hold secrets. Each may instead be given as `<field>_file: /path` (the loader reads the
 * file), and their values never appear in problem messages or logs.
 */
export const SECRET_FIELDS: readonly string[] = ["password"];

/** A topic prefix: no wildcards (MQTT-3.3.2-2), no NUL (MQTT-1.5.4-2), not `$...` (MQTT-4.7.2-1), no leading/trailing `/`. */
const baseTopic = z
  .string({ error: "an MQTT topic" })
  .regex(/^[^$+#/\u0000]([^+#\u0000]*[^+#/\u0000])?$/, {
    error: "an MQTT topic without wildcards (+ #), without a leading $ and without a leading or trailing /",
  });

const tlsSchema = z
  .strictObject({
    ca_file: nonEmpty("a file path").optional().describe("PEM file of CA certificates to trust instead of the system's."),
    cert_file: nonEmpty("a file path").optional().describe("PEM client certificate (with key_file) for brokers that require one."),
    key_file: nonEmpty("a file path").optional().describe("PEM private key of cert_file."),
    insecure: z
      .boolean({ error: "true or false" })
      .default(false)
      .describe("Skip verifying the broker's certificate. Only for testing: it allows man-in-the-middle attacks."),
  })
  .describe("TLS options for mqtts:// and wss:// URLs.");

const externalSchema = z
  .strictObject({
    url: z
      .string({ error: "a URL" })
      .regex(/^(mqtt|mqtts|ws|wss):\/\/[^\s/]+/, { error: "a URL like mqtt://host:1883, mqtts://, ws:// or wss://", abort: true })
      .refine((u) => URL.canParse(u), { error: "a valid URL" })
      .describe("Broker to connect to: mqtt://host:1883, mqtts://host:8883, ws://host/mqtt or wss://host/mqtt."),
    client_id: nonEmpty("a client id").optional().describe("MQTT client identifier; default: generated from the host name."),
    username: z.string({ error: "a string" }).optional().describe("User name for the external broker."),
    password: z
      .string({ error: "a string" })
      .optional()
      // biome-ignore lint/suspicious/noTemplateCurlyInString: the ${ENV} syntax, shown to the user
      .describe("Password for the external broker. Prefer password_file or ${ENV} so it is not in this file."),
    password_file: nonEmpty("a file path")
      .optional()
      .describe("File whose contents (trailing newline trimmed) are the password, e.g. /run/secrets/mqtt. Relative to this file."),
    tls: tlsSchema.optional(),
  })
  // The loader has already replaced password_file by password; keep it out of the Config type.
  .transform(({ password_file: _file, ...rest }) => rest)
  .describe("Use an existing MQTT broker instead of the embedded one. When present no broker is started: the hub is an MQTT 5 client of this one.");

const limitsSchema = z
  .strictObject({
    max_packet_size: int(128, 268_435_455)
      .default(1_048_576)
      .describe("Largest MQTT packet accepted or sent, in bytes (MQTT 5 Maximum Packet Size). Default 1 MiB."),
    connect_timeout: duration().prefault("10s").describe("Time a new connection has to send CONNECT before it is closed."),
    max_keepalive: int(1, 65535)
      .default(65535)
      .describe(
        "Largest keep-alive in seconds a client may ask for. MQTT 5 clients asking for more (or for 0, none) are told this value (Server Keep Alive); MQTT 3.1.1 clients are refused (CONNACK 0x02), as mosquitto does. Default 65535: no limit.",
      ),
    max_client_id_length: int(23, 65535).default(256).describe("Longest client identifier accepted, in UTF-8 bytes (MQTT requires at least 23)."),
    max_topic_length: int(1, 65535).default(1024).describe("Longest topic name or filter accepted, in bytes."),
    max_topic_levels: int(1, 65535).default(32).describe("Most '/'-separated levels in a topic name or filter."),
    receive_maximum: int(1, 65535)
      .default(64)
      .describe("QoS 1/2 messages a client may have in flight towards the hub (the MQTT 5 Receive Maximum we announce)."),
    max_inflight_outbound: int(1, 65535).default(64).describe("QoS 1/2 messages the hub keeps in flight towards one client."),
    max_queued_messages: int(1).default(1000).describe("Messages queued for one client (offline or slow) before further ones are dropped."),
    max_queued_bytes: int(1).default(8_388_608).describe("Bytes queued for one client before further messages are dropped. Default 8 MiB."),
    max_subscriptions_per_client: int(1).default(1000).describe("Subscriptions one client may hold."),
    max_connections: int(1).default(1024).describe("Simultaneous client connections; further ones are refused."),
    drain_timeout: duration()
      .prefault("30s")
      .describe("A client whose socket buffer stays full this long (a slow consumer) is disconnected."),
    topic_alias_maximum: int(0, 65535).default(32).describe("Topic aliases a client may use towards the hub (MQTT 5); 0 disables them."),
    max_session_expiry: int(0, 4_294_967_295)
      .default(604_800)
      .describe("Longest session expiry interval granted, in seconds (default 7 days); longer requests are lowered."),
    max_retained_messages: int(0).default(100_000).describe("Retained messages kept in total; further ones are refused."),
    max_retained_bytes: int(0).default(67_108_864).describe("Payload bytes of retained messages kept in total. Default 64 MiB."),
    max_user_properties: int(0, 65535).default(64).describe("MQTT 5 user properties accepted on one packet."),
    flapping: flappingSchema.prefault({}),
  })
  .describe("Limits that protect the hub from misbehaving or hostile clients.");

const brokerSchema = z
  .strictObject({
    listeners: z
      .array(listenerSchema, { error: "a list of listeners" })
      .prefault([
        { host: "127.0.0.1", port: 1883, protocol: "mqtt" },
        { host: "::1", port: 1883, protocol: "mqtt" },
      ])
      .describe("Where the embedded broker listens. Default: MQTT on loopback only (127.0.0.1 and ::1, port 1883)."),
    external: externalSchema.optional(),
    sys_interval: duration().prefault("10s").describe("How often $SYS/ statistics are published; 0s disables them."),
    limits: limitsSchema.prefault({}),
    auth: authSchema.optional(),
    storage: storageSchema.prefault({}),
  })
  .describe("The MQTT broker the hub's parts talk through.");

const quantitySchema = z
  .strictObject({
    start: z.number({ error: "a number" }).describe("First value."),
    min: z.number({ error: "a number" }).describe("Lowest value the walk reaches."),
    max: z.number({ error: "a number" }).describe("Highest value the walk reaches."),
    step: z.number({ error: "a number > 0" }).positive({ error: "a number > 0" }).describe("Largest random change per tick."),
    unit: z.string({ error: "a string" }).optional().describe("Unit shown to users, e.g. °C, %, lx."),
    precision: int(0, 10).default(1).describe("Decimal places published."),
  })
  .describe("A simulated quantity: a random walk between min and max.");

const DEADBAND_MSG = "a number >= 0, or a mapping of quantity names to numbers >= 0";
const deadbandValue = z.number({ error: DEADBAND_MSG }).min(0, { error: DEADBAND_MSG });

/** Report-on-change fields every device has (hub/devices.ts `changeFilter`). */
const reportOnChangeShape = {
  deadband: z
    .union([deadbandValue, z.record(slug("a quantity name"), deadbandValue, { error: DEADBAND_MSG })], { error: DEADBAND_MSG })
    .optional()
    .describe(
      "Report on change: publish a reading only when it moved at least this much from the last published value (one number for all quantities, or per quantity, e.g. { temperature: 0.2, pressure: 50 }). 0 = on any change. Default: publish every reading.",
    ),
  heartbeat: duration()
    .refine((ms) => ms > 0, { error: "a duration > 0" })
    .optional()
    .describe(
      "Report on change: publish anyway when a quantity has not been published for this long (the maximum silence). Devices without an interval are re-read this often. Default: none.",
    ),
};

/**
 * The fields every device has, plus its own. Each device type is one member of the `devices` union,
 * told apart by `type`; a driver adds its type by appending to `deviceSchemas`.
 */
export function deviceType<T extends string, S extends z.ZodRawShape>(type: T, description: string, shape: S) {
  return z
    .strictObject({
      name: slug("a device name").describe("Unique device name; its topics are <base_topic>/<name>/..."),
      type: z.literal(type).describe("Device type."),
      ...shape,
      ...reportOnChangeShape,
    })
    .describe(description);
}

/** BCM numbers: GPIO17 is pin 11 of the 40-pin header; the header carries BCM 2..27. */
const bcmPin = int(0, 63).describe("BCM GPIO number (GPIO17 = header pin 11), not the header pin number.");
const onOff = z.enum(["ON", "OFF"], { error: "ON or OFF" });
const positiveDuration = () => duration().refine((ms) => ms > 0, { error: "a duration > 0" });

export const simulatedSensorSchema = deviceType(
  "simulated_sensor",
  "A sensor that makes up plausible readings; runs anywhere, needs no hardware.",
  {
    interval: duration().prefault("10s").describe("Time between readings."),
    quantities: z
      .record(slug("a quantity name"), quantitySchema, { error: "a mapping of quantity names" })
      .refine((q) => Object.keys(q).length > 0, { error: "at least one quantity" })
      .describe("Quantities measured, by name; each is published on <base_topic>/<device>/<quantity>."),
  },
);

export const gpioInputSchema = deviceType(
  "gpio_input",
  "A binary sensor on a GPIO input: push button, PIR motion sensor, door/window contact. Publishes ON (active) / OFF on <base_topic>/<name> on every change.",
  {
    pin: bcmPin,
    active_low: z
      .boolean({ error: "true or false" })
      .default(false)
      .describe("ON when the pin is low: a button or contact to ground with a pull-up. Default: false (ON when high)."),
    debounce: duration()
      .prefault("50ms")
      .describe("A new level must hold this long before it counts (contact bounce). 0ms reports every edge. Default: 50ms."),
    device_class: z
      .enum(
        ["battery", "carbon_monoxide", "cold", "connectivity", "door", "garage_door", "gas", "heat", "light", "lock", "moisture", "motion", "moving", "occupancy", "opening", "plug", "power", "presence", "problem", "running", "safety", "smoke", "sound", "tamper", "vibration", "window"],
        { error: "a Home Assistant binary sensor class such as motion, door, window, occupancy" },
      )
      .optional()
      .describe("What is wired, for Home Assistant (motion, door, window, occupancy, ...). Omit for a plain button."),
    expander: expanderField,
    pull_up: pullUpField,
  },
);

export const gpioOutputSchema = deviceType(
  "gpio_output",
  "A relay, LED or other on/off load on a GPIO output. State on <base_topic>/<name> (ON/OFF), commands on <base_topic>/<name>/set.",
  {
    pin: bcmPin,
    active_low: z
      .boolean({ error: "true or false" })
      .default(false)
      .describe("ON drives the pin low (most relay boards switch on a low input). Default: false."),
    safe_state: onOff
      .default("OFF")
      .describe("State the output is given at start (before initial) and at stop. Hardware pull resistors decide it while the hub is not running. Default: OFF."),
    initial: onOff.optional().describe("State set once the hub has started. Default: safe_state."),
    max_on: positiveDuration()
      .optional()
      .describe("Safety cap: the hub turns the output off this long after it was switched on, whatever commands arrive. Default: none."),
    pulse: positiveDuration()
      .optional()
      .describe("Each switch-on is a pulse of this length (a door opener, a bell). Default: none (stays on)."),
    device_class: z
      .enum(["switch", "outlet"], { error: "switch or outlet" })
      .optional()
      .describe("How Home Assistant shows it: switch or outlet. Default: switch."),
    expander: expanderField,
  },
);

// I2C and 1-Wire sensors (drivers/bme280.ts, sht3x.ts, sht4x.ts, aht20.ts, bh1750.ts, ads1115.ts, ds18b20.ts).

const sensorInterval = () => duration().prefault("30s").describe("Time between readings. Default: 30s.");
const i2cBus = () =>
  int(0, 255).default(1).describe("I2C bus number: /dev/i2c-<bus>. The Pi's header pins 3 (SDA) and 5 (SCL) are bus 1. Default: 1.");
const hexByte = (a: number) => `0x${a.toString(16).padStart(2, "0")}`;

/** The addresses a chip can be strapped to; YAML reads 0x76 as a number. */
function i2cAddress(allowed: readonly [number, ...number[]], how: string) {
  const names = allowed.map(hexByte);
  const msg = names.length === 1 ? `${names[0]} (the chip's only address)` : `one of ${names.join(", ")}`;
  return z
    .literal(allowed, { error: msg })
    .default(allowed[0])
    .describe(`I2C address, written in hex: ${names.join(", ")}. ${how} Default: ${names[0]}.`);
}

const bme280Shape = (chip: string) => ({
  interval: sensorInterval(),
  bus: i2cBus(),
  address: i2cAddress([0x76, 0x77], `0x76 with SDO to GND (most ${chip} boards), 0x77 with SDO to VCC.`),
});

export const bme280Schema = deviceType(
  "bme280",
  "Bosch BME280 on I2C: temperature (°C), humidity (%) and pressure (hPa). The chip id is checked (0x60).",
  bme280Shape("BME280"),
);

export const bmp280Schema = deviceType(
  "bmp280",
  "Bosch BMP280 on I2C: temperature (°C) and pressure (hPa), no humidity. The chip id is checked (0x58).",
  bme280Shape("BMP280"),
);

export const sht3xSchema = deviceType("sht3x", "Sensirion SHT30/SHT31/SHT35 on I2C: temperature (°C) and humidity (%), CRC-checked.", {
  interval: sensorInterval(),
  bus: i2cBus(),
  address: i2cAddress([0x44, 0x45], "0x44 with ADDR to GND, 0x45 with ADDR to VCC."),
  repeatability: z
    .enum(["high", "medium", "low"], { error: "high, medium or low" })
    .default("high")
    .describe("Measurement repeatability: high (15 ms, least noise), medium or low (fastest). Default: high."),
});

export const sht4xSchema = deviceType("sht4x", "Sensirion SHT40/SHT41/SHT45 on I2C: temperature (°C) and humidity (%), CRC-checked.", {
  interval: sensorInterval(),
  bus: i2cBus(),
  address: i2cAddress([0x44, 0x45, 0x46], "Fixed by the part number: SHT4x-A 0x44, -B 0x45, -C 0x46."),
  precision: z
    .enum(["high", "medium", "low"], { error: "high, medium or low" })
    .default("high")
    .describe("Measurement precision: high (8 ms, least noise), medium or low. Default: high."),
});

export const aht20Schema = deviceType("aht20", "Aosong AHT20 on I2C: temperature (°C) and humidity (%), CRC-checked.", {
  interval: sensorInterval(),
  bus: i2cBus(),
  address: i2cAddress([0x38], "Fixed."),
});

export const htu21dSchema = deviceType("htu21d", HTU21D_DESCRIPTION, {
  interval: sensorInterval(),
  bus: i2cBus(),
  address: i2cAddress([0x40], "Fixed."),
  resolution: htu21dResolution,
});

export const bh1750Schema = deviceType("bh1750", "ROHM BH1750 on I2C: illuminance, published as lux (lx).", {
  interval: sensorInterval(),
  bus: i2cBus(),
  address: i2cAddress([0x23, 0x5c], "0x23 with ADDR to GND (or open on most boards), 0x5c with ADDR to VCC."),
  mtreg: int(31, 254)
    .default(69)
    .describe("Measurement time register, 31..254: sensitivity and conversion time grow with it (254 for dark rooms, 31 for sunlight). Default: 69."),
  resolution: z
    .enum(["high", "high2"], { error: "high or high2" })
    .default("high")
    .describe("high: 1 lx steps (up to ~54600 lx); high2: 0.5 lx steps (up to ~27300 lx), for dim light. Default: high."),
});

const adsChannelSchema = z
  .strictObject({
    input: int(0, 3).describe("Analog input AIN0..AIN3, measured against GND."),
    range: z
      .literal([6.144, 4.096, 2.048, 1.024, 0.512, 0.256], { error: "one of 6.144, 4.096, 2.048, 1.024, 0.512, 0.256" })
      .default(4.096)
      .describe(
        "Full-scale range in volts (the amplifier's gain): 6.144, 4.096, 2.048, 1.024, 0.512 or 0.256. Smaller is finer; never apply more than VDD + 0.3 V. Default: 4.096.",
      ),
    scale: z
      .strictObject({
        volts: z.tuple([z.number(), z.number()], { error: "two numbers: [volts, volts]" }).describe("Two input voltages..."),
        values: z.tuple([z.number(), z.number()], { error: "two numbers: [value, value]" }).describe("...and the values they stand for."),
      })
      .optional()
      .describe("Map volts linearly to a value: e.g. { volts: [0.5, 4.5], values: [0, 10] } for a 0.5–4.5 V, 0–10 bar sensor. Default: publish volts."),
    unit: z.string({ error: "a string" }).optional().describe("Unit shown to users. Default: V (or none with scale)."),
    precision: int(0, 6).default(3).describe("Decimal places published. Default: 3."),
  })
  .describe("One analog channel, published on <base_topic>/<device>/<channel name>.");

export const ads1115Schema = deviceType("ads1115", "TI ADS1115 16-bit analog-to-digital converter on I2C: up to four voltages, optionally scaled.", {
  interval: sensorInterval(),
  bus: i2cBus(),
  address: i2cAddress([0x48, 0x49, 0x4a, 0x4b], "ADDR to GND 0x48, VDD 0x49, SDA 0x4a, SCL 0x4b."),
  channels: z
    .record(slug("a channel name"), adsChannelSchema, { error: "a mapping of channel names" })
    .refine((c) => Object.keys(c).length > 0, { error: "at least one channel" })
    .describe("Channels to read, by name; each is published on <base_topic>/<device>/<name>."),
});

export const ds18b20Schema = deviceType("ds18b20", "Maxim DS18B20 1-Wire thermometer (w1 sysfs): temperature (°C).", {
  interval: sensorInterval(),
  id: z
    .string({ error: "a 1-Wire id like 28-0316a2794aff" })
    .regex(/^28-[0-9a-f]{12}$/, { error: "a 1-Wire id like 28-0316a2794aff (ls /sys/bus/w1/devices)" })
    .optional()
    .describe("Sensor id, from ls /sys/bus/w1/devices. Required when several DS18B20 share the bus. Default: the only one present."),
  dir: nonEmpty("a directory path")
    .optional()
    .describe("Directory of 1-Wire devices. Default: /sys/bus/w1/devices (with hardware: simulate, the simulator's)."),
});

export const arduinoSchema = deviceType(
  "arduino",
  "An Arduino on a USB serial port, running a HubLink sketch (protocol: hubproto) or StandardFirmata (protocol: firmata). Its sensors are published on <base_topic>/<name>/<channel>, its outputs obey <base_topic>/<name>/<channel>/set; it survives unplugging.",
  arduinoShape(duration),
).superRefine(checkArduino);

/** Every device type the config accepts. */
export const deviceSchemas = [
  simulatedSensorSchema,
  gpioInputSchema,
  gpioOutputSchema,
  bme280Schema,
  bmp280Schema,
  sht3xSchema,
  sht4xSchema,
  aht20Schema,
  htu21dSchema,
  bh1750Schema,
  ads1115Schema,
  ds18b20Schema,
  arduinoSchema,
] as const;
export const deviceSchema = z.discriminatedUnion("type", deviceSchemas).describe("A device, by type.");

const homeAssistantSchema = z
  .strictObject({
    enabled: z
      .boolean({ error: "true or false" })
      .default(true)
      .describe("Announce devices to Home Assistant (MQTT discovery). When false, earlier announcements are withdrawn. Default: true."),
    prefix: baseTopic
      .default("homeassistant")
      .describe("Home Assistant's discovery prefix (its MQTT integration setting); it also listens on <prefix>/status. Default: homeassistant."),
  })
  .describe("Home Assistant MQTT discovery: every device appears in Home Assistant without YAML there.");

export const configSchema = z
  .strictObject({
    hardware: z
      .enum(["linux", "simulate"])
      .default("linux")
      .describe("linux: real GPIO/I2C/serial devices. simulate: simulated hardware everywhere (the --simulate flag sets this)."),
    base_topic: baseTopic.default("hub").describe("First topic level of everything the hub publishes."),
    state_dir: nonEmpty("a directory path")
      .default("/var/lib/hub")
      .describe("Directory for durable state (sessions, retained messages, queues); created if absent."),
    log: z
      .strictObject({
        level: z.enum(["debug", "info", "warn", "error"]).default("info").describe("Least severe level logged."),
        format: z.enum(["text", "json"]).default("text").describe("text: one readable line per event. json: one JSON object per line."),
      })
      .prefault({})
      .describe("Logging to stdout/stderr."),
    broker: brokerSchema.prefault({}),
    devices: z.array(deviceSchema, { error: "a list of devices" }).default([]).describe("Devices the hub reads and drives."),
    homeassistant: homeAssistantSchema.prefault({}),
    gpio: gpioSchema.prefault({}),
    bridges: bridgesSchema,
    location: locationSchema.optional(),
    rules: rulesSchema.default([]).describe("Automations: when a trigger fires and the conditions hold, run the actions (see rules/examples/)."),
    rules_dir: nonEmpty("a directory path")
      .optional()
      .describe("Directory whose *.yaml files each hold a list of rules, added to `rules` (e.g. /etc/hub/rules.d); re-read on SIGHUP and when a file there changes."),
  })
  .meta({
    title: "hub configuration",
    description: "Configuration of the hub: embedded MQTT broker, devices, logging. Durations are written with a unit (250ms, 10s, 5m, 1h30m, 1d).",
  });

export type Config = z.output<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
export type DeviceConfig = z.output<typeof deviceSchema>;
export type ListenerConfig = Config["broker"]["listeners"][number];
export type BrokerLimits = Config["broker"]["limits"];

// THE configuration schema. The TypeScript types (`Config`), the defaults and the editors' JSON Schema
// (config.schema.json, via json-schema.ts) all come from here; nothing else holds a default. Every
// object is strict, so a misspelt key is an error rather than silently ignored.
import { z } from "zod";
import { duration } from "./duration.js";

/**
 * Fields that hold secrets. Each may instead be given as `<field>_file: /path` (the loader reads the
 * file), and their values never appear in problem messages or logs.
 */
export const SECRET_FIELDS: readonly string[] = ["password"];

/** An integer in a range; one message for every way of getting it wrong (wrong type, fraction, range). */
export function int(min: number, max?: number) {
  const msg = max === undefined ? `an integer >= ${min}` : `an integer ${min}..${max}`;
  const s = z.int({ error: msg }).min(min, { error: msg });
  return max === undefined ? s : s.max(max, { error: msg });
}

/** A name used as one MQTT topic level and in rules: `living_room`, `temp-1`. */
export function slug(what: string) {
  const msg = `${what} of lowercase letters, digits, _ and - (e.g. living_room)`;
  return z.string({ error: msg }).regex(/^[a-z0-9_-]+$/, { error: msg });
}

function nonEmpty(what: string) {
  return z.string({ error: what }).min(1, { error: what });
}

/** A topic prefix: no wildcards (MQTT-3.3.2-2), no NUL (MQTT-1.5.4-2), not `$...` (MQTT-4.7.2-1), no leading/trailing `/`. */
const baseTopic = z
  .string({ error: "an MQTT topic" })
  .regex(/^[^$+#/\u0000]([^+#\u0000]*[^+#/\u0000])?$/, {
    error: "an MQTT topic without wildcards (+ #), without a leading $ and without a leading or trailing /",
  });

const listenerSchema = z
  .strictObject({
    host: nonEmpty("a host name or IP address").describe("Address to listen on, e.g. 127.0.0.1, ::1 or 0.0.0.0."),
    port: int(0, 65535).describe("TCP port; 1883 is MQTT's. 0 picks a free port (for tests)."),
    protocol: z.enum(["mqtt"]).default("mqtt").describe("Protocol spoken on this port: mqtt (MQTT 3.1.1 and 5.0 over TCP)."),
    allow_anonymous: z
      .boolean({ error: "true or false" })
      .optional()
      .describe(
        "Let clients connect without a user name and password. Default: true on loopback addresses, false elsewhere. User accounts are not built yet, so a listener on a network address must say allow_anonymous: true to start.",
      ),
  })
  .describe("One address the embedded broker listens on.");

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
  })
  .describe("Limits that protect the hub from misbehaving or hostile clients.");

const brokerSchema = z
  .strictObject({
    listeners: z
      .array(listenerSchema, { error: "a list of listeners" })
      .default([
        { host: "127.0.0.1", port: 1883, protocol: "mqtt" },
        { host: "::1", port: 1883, protocol: "mqtt" },
      ])
      .describe("Where the embedded broker listens. Default: MQTT on loopback only (127.0.0.1 and ::1, port 1883)."),
    external: externalSchema.optional(),
    sys_interval: duration().prefault("10s").describe("How often $SYS/ statistics are published; 0s disables them."),
    limits: limitsSchema.prefault({}),
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
    })
    .describe(description);
}

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

/** Every device type the config accepts. */
export const deviceSchemas = [simulatedSensorSchema] as const;
export const deviceSchema = z.discriminatedUnion("type", deviceSchemas).describe("A device, by type.");

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

// The composition root: builds every part from the config and passes clock, logger and I/O down.
// No module-level singletons: everything the hub holds is reachable from what buildApp returns.
import { mkdir } from "node:fs/promises";
import type { Bus, Clock, Logger, Service } from "./contracts.js";
import type { Config } from "./config/schema.js";
import { createBroker, type EmbeddedBroker } from "./broker/broker.js";
import type { BrokerLimits } from "./broker/core.js";
import { createExternalBus } from "./bus/external.js";
import { createDeviceHost, type DeviceSpec } from "./devices.js";
import { createLifecycle, type Lifecycle } from "./lifecycle.js";
import { hubTopics } from "./topics.js";
import { simulatedSensor } from "../drivers/simulated-sensor.js";
import type { DriverDefinition } from "../drivers/types.js";

export interface AppDeps {
  config: Config;
  clock: Clock;
  log: Logger;
  version: string;
  random?: () => number;
}

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
  };
}

const drivers: Record<string, DriverDefinition<never>> = {
  simulated_sensor: simulatedSensor as DriverDefinition<never>,
};

function deviceSpecs(config: Config): DeviceSpec[] {
  return config.devices.map((d) => {
    const { name, type, interval, ...options } = d;
    const driver = drivers[type];
    if (!driver) throw new Error(`no driver for device type ${type}`);
    return { name, interval, driver: driver as DriverDefinition<unknown>, options };
  });
}

export function buildApp(deps: AppDeps): App {
  const { config, clock, log } = deps;
  const topics = hubTopics(config.base_topic);
  const services: Service[] = [];

  services.push({
    name: "state-dir",
    async start() {
      await mkdir(config.state_dir, { recursive: true });
    },
    async stop() {},
  });

  let broker: EmbeddedBroker | undefined;
  let busFor: (name: string) => Bus;
  const external = config.broker.external;
  if (external) {
    const ext = createExternalBus(external, { clock, log: log.child("bus"), statusTopic: topics.status() });
    services.push(ext);
    busFor = () => ext.bus;
  } else {
    broker = createBroker({
      limits: brokerLimits(config.broker.limits),
      listeners: config.broker.listeners,
      sysIntervalMs: config.broker.sys_interval,
      version: deps.version,
      clock,
      log: log.child("broker"),
    });
    services.push(broker);
    const b = broker;
    busFor = (name) => b.bus(name);
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

  services.push(
    createDeviceHost(deviceSpecs(config), {
      bus: busFor("devices"),
      clock,
      log: log.child("devices"),
      topics,
      random: deps.random ?? Math.random,
      logReadings: config.hardware === "simulate",
    }),
  );

  return { lifecycle: createLifecycle(services, log, clock), broker, bus };
}

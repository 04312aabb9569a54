// External broker mode: the hub's Bus as an MQTT 5 client (MQTT.js) of a broker the house already
// runs (e.g. mosquitto). Drivers and rules see the same Bus as with the embedded broker.
// Each local subscription is one MQTT subscription; messages are dispatched to the callbacks whose
// filter matches. MQTT.js reconnects and re-subscribes by itself; we only log the transitions.
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
// MQTT.js is loaded only when external mode is configured: it costs ~20 MB of RSS on a Pi.
import type { IClientOptions, IPublishPacket, MqttClient } from "mqtt";
import type { Bus, Cancel, Clock, Logger, Message, Service } from "../contracts.js";
import type { Config } from "../config/schema.js";
import { matches } from "../broker/topics.js";

type ExternalConfig = NonNullable<Config["broker"]["external"]>;

export interface ExternalBusDeps {
  clock: Clock;
  log: Logger;
  /** Retained online/offline; the broker publishes "offline" (our will) if the hub vanishes. */
  statusTopic: string;
}

export function createExternalBus(cfg: ExternalConfig, deps: ExternalBusDeps): Service & { bus: Bus } {
  const { log } = deps;
  const handlers = new Map<string, Set<(m: Message) => void>>();
  let client: MqttClient | undefined;
  let connected = false;

  const dispatch = (topic: string, payload: Buffer, packet: IPublishPacket) => {
    const m: Message = { topic, payload, qos: packet.qos, retain: packet.retain };
    for (const [filter, set] of handlers) {
      if (!matches(filter, topic)) continue;
      for (const h of set) {
        try {
          h(m);
        } catch (err) {
          log.error("subscriber failed", { topic, error: err });
        }
      }
    }
  };

  const bus: Bus = {
    async publish(m) {
      if (!client) throw new Error("external broker client not started");
      await client.publishAsync(m.topic, m.payload, { qos: m.qos, retain: m.retain, properties: m.properties });
    },
    async subscribe(filter, onMessage, opts): Promise<Cancel> {
      let set = handlers.get(filter);
      if (!set) {
        set = new Set();
        handlers.set(filter, set);
        await client?.subscribeAsync(filter, { qos: opts?.qos ?? 1 });
      }
      set.add(onMessage);
      return () => {
        const s = handlers.get(filter);
        if (!s?.delete(onMessage) || s.size > 0) return;
        handlers.delete(filter);
        client?.unsubscribe(filter);
      };
    },
  };

  return {
    name: "external-broker",
    bus,
    async start() {
      const tls = cfg.tls;
      if (tls?.insecure) log.warn("TLS certificate verification is OFF for the external broker (tls.insecure: true)");
      const opts: IClientOptions = {
        protocolVersion: 5,
        clientId: cfg.client_id ?? `hub-${hostname()}`,
        username: cfg.username,
        password: cfg.password,
        reconnectPeriod: 2_000,
        connectTimeout: 10_000,
        rejectUnauthorized: !tls?.insecure,
        will: { topic: deps.statusTopic, payload: Buffer.from("offline"), qos: 1, retain: true },
      };
      if (tls?.ca_file) opts.ca = readFileSync(tls.ca_file);
      if (tls?.cert_file) opts.cert = readFileSync(tls.cert_file);
      if (tls?.key_file) opts.key = readFileSync(tls.key_file);
      // TLS below 1.2 is refused (passed through to tls.connect).
      Object.assign(opts, { minVersion: "TLSv1.2" });
      const url = new URL(cfg.url);
      log.info("connecting to external broker", { url: `${url.protocol}//${url.host}${url.pathname}` });
      const { default: mqtt } = await import("mqtt");
      const c = mqtt.connect(cfg.url, opts);
      client = c;
      c.on("message", dispatch);
      c.on("connect", () => {
        if (!connected) log.info("connected to external broker");
        connected = true;
      });
      c.on("close", () => {
        if (connected) log.warn("lost the external broker; reconnecting");
        connected = false;
      });
      c.on("error", (err) => log.warn("external broker error", { error: err.message }));
      // Wait for the first connection a little, so a typo in the URL shows at once; then go on
      // regardless (MQTT.js keeps retrying and queues publishes meanwhile).
      await new Promise<void>((resolve) => {
        const cancel = deps.clock.after(5_000, resolve);
        c.once("connect", () => {
          cancel();
          resolve();
        });
      });
    },
    async stop() {
      await client?.endAsync();
      client = undefined;
    },
  };
}

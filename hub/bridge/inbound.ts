// The bridge's inbound path, remote -> local bus: the remote subscriptions (with No Local), and each
// message from upstream published locally under its mapped topic, acknowledged upstream only once
// the local broker has it. A QoS 2 message reaches us on PUBREL (MQTT.js stores it at PUBLISH, in
// incoming-store.ts when the session is kept), so it is published locally once.
import type { IPublishPacket, ISubscriptionMap, MqttClient } from "mqtt";
import type { Bus, Logger, Message } from "../contracts.js";
import { type CompiledRule, mapInbound, mapOutbound, remoteSubscriptions } from "./mapping.js";
import { downstreamProps, type EchoMemory } from "./origin.js";

export interface Inbound {
  /** MQTT.js's handleMessage: publish locally, then `done` (which sends PUBACK / PUBCOMP). */
  onRemote(packet: IPublishPacket, done: (err?: Error) => void): void;
  /** Subscribes upstream to every in/both rule's filter. */
  subscribe(c: MqttClient): void;
  /** Messages from upstream published locally so far. */
  received(): number;
}

export function inbound(o: { name: string; rules: CompiledRule[]; v5: boolean; bus: Bus; log: Logger; echoes: EchoMemory }): Inbound {
  const { rules, bus, log, echoes } = o;
  let received = 0;
  return {
    received: () => received,
    onRemote(packet, done) {
      const r = mapInbound(rules, packet.topic);
      if (r === undefined) {
        done();
        return;
      }
      const payload = typeof packet.payload === "string" ? Buffer.from(packet.payload) : packet.payload;
      // Only a topic an out rule takes can come back to us through our own local subscription.
      if (mapOutbound(rules, r.topic) !== undefined) echoes.remember(r.topic, payload);
      const m: Message = { topic: r.topic, payload, qos: packet.qos, retain: packet.retain, properties: downstreamProps(packet.properties, o.name) };
      // Acknowledged upstream (done) only once published locally. A message we cannot publish (a topic
      // our broker refuses) is acknowledged anyway: refusing it would make the remote resend it forever.
      bus.publish(m).then(
        () => {
          received++;
          done();
        },
        (err) => {
          log.warn("cannot publish a message from upstream locally", { topic: r.topic, error: err });
          done();
        },
      );
    },
    subscribe(c) {
      const subs = remoteSubscriptions(rules);
      if (subs.size === 0) return;
      // No Local on every filter (MQTT-3.8.3-3): the bridge never wants its own messages back.
      const map: ISubscriptionMap = Object.fromEntries([...subs].map(([f, qos]) => [f, o.v5 ? { qos, nl: true, rap: true, rh: 0 } : { qos }]));
      c.subscribe(map, (err, granted) => {
        if (err) log.warn("the remote refused a subscription", { reason: err.message });
        const ok: string[] = [];
        for (const g of granted ?? []) {
          if ((g.qos & 0x80) !== 0) log.warn("the remote refused a subscription", { filter: g.topic, reason_code: g.qos });
          else ok.push(g.topic);
        }
        if (ok.length > 0) log.info("subscribed upstream", { filters: ok.join(" ") });
      });
    },
  };
}

// Where a message came from, so a `both` rule never sends back up what came down (loop prevention).
// Two independent marks: the MQTT 5 user property `hub-bridge: <name>` on every message a bridge
// publishes locally, and a short memory of those messages (topic + payload) that recognises their
// echo through the bridge's own local subscription even on a bus that drops properties (external
// broker mode). Each remembered message is consumed by its first echo.
import type { IPublishPacket } from "mqtt";
import type { Message, PublishProperties } from "../contracts.js";

/** User property on messages a bridge brought down from upstream: they are never sent back up. */
export const ORIGIN_PROPERTY = "hub-bridge";

/** A PUBACK/PUBREC/SUBACK reason code >= 0x80: the remote refused (MQTT 5 §2.4). */
export function isRefusal(err: Error): boolean {
  const code = (err as unknown as { code?: unknown }).code;
  return typeof code === "number" && (code & 0x80) !== 0;
}

export function markedBy(p: PublishProperties | undefined, name: string): boolean {
  const v = p?.userProperties?.[ORIGIN_PROPERTY];
  return v === name || (Array.isArray(v) && v.includes(name));
}

/** Properties sent upstream: as received, minus any origin marker. */
export function upstreamProps(p: PublishProperties | undefined): PublishProperties | undefined {
  if (p?.userProperties === undefined || !Object.hasOwn(p.userProperties, ORIGIN_PROPERTY)) return p;
  const { [ORIGIN_PROPERTY]: _mark, ...rest } = p.userProperties;
  const { userProperties: _u, ...out } = p;
  return Object.keys(rest).length > 0 ? { ...out, userProperties: rest } : out;
}

/** Properties for a message brought down: those MQTT 5 forwards end to end, plus our marker. */
export function downstreamProps(p: IPublishPacket["properties"], name: string): PublishProperties {
  const out: PublishProperties = { userProperties: { ...p?.userProperties, [ORIGIN_PROPERTY]: name } };
  if (p?.payloadFormatIndicator !== undefined) out.payloadFormatIndicator = p.payloadFormatIndicator;
  if (p?.messageExpiryInterval !== undefined) out.messageExpiryInterval = p.messageExpiryInterval;
  if (p?.contentType !== undefined) out.contentType = p.contentType;
  if (p?.responseTopic !== undefined) out.responseTopic = p.responseTopic;
  if (p?.correlationData !== undefined) out.correlationData = p.correlationData;
  return out;
}

export interface EchoMemory {
  /** We are about to publish this locally. */
  remember(topic: string, payload: Buffer): void;
  /** True (and forgotten) if `m` is the echo of something remembered or carries our marker. */
  isEcho(m: Message): boolean;
}

export function echoMemory(name: string, capacity = 1024): EchoMemory {
  const byTopic = new Map<string, Buffer[]>();
  let count = 0;
  return {
    remember(topic, payload) {
      if (count >= capacity) {
        // Forget the oldest topic's oldest entry (Map iterates in insertion order).
        const first = byTopic.entries().next().value as [string, Buffer[]];
        first[1].shift();
        if (first[1].length === 0) byTopic.delete(first[0]);
        count--;
      }
      const list = byTopic.get(topic);
      if (list) list.push(payload);
      else byTopic.set(topic, [payload]);
      count++;
    },
    isEcho(m) {
      const list = byTopic.get(m.topic);
      const i = list === undefined ? -1 : list.findIndex((p) => p.equals(m.payload));
      if (list !== undefined && i >= 0) {
        list.splice(i, 1);
        if (list.length === 0) byTopic.delete(m.topic);
        count--;
        return true;
      }
      return markedBy(m.properties, name);
    },
  };
}

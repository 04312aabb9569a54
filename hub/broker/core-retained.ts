// Retained messages as the broker core handles them: who published each one (so a message whose
// publisher lost write access is not replayed, G3) and their replay to a new subscription.
// The store itself (caps, trie, expiry) is retained.ts; route() in core.ts stores into it.
import type { QoS } from "../contracts.js";
import type { BrokerAuth, Identity } from "./auth/types.js";
import type { Subscriber } from "./core-types.js";
import type { RoutedMessage } from "./publish-encode.js";
import type { RetainedStore } from "./retained.js";
import type { SubOptions } from "./subscriptions.js";

/** Returns publisherOf: the identity of a message's origin (a client's session or a part of the hub). */
export function createPublisherOf(): (origin: unknown) => Identity | undefined {
  // One identity object per publishing session, shared by its retained messages (the ACL caches per object).
  const publishers = new WeakMap<object, Identity>();
  const publisherOf = (origin: unknown): Identity | undefined => {
    const o = origin as { kind?: string; clientId?: string; username?: string; identity?: Identity } | undefined;
    if (o === undefined) return undefined;
    if (o.identity !== undefined) return o.identity; // a part of the hub (local-bus.ts)
    if (o.kind !== "client") return undefined;
    let id = publishers.get(o);
    if (id === undefined || id.username !== o.username) {
      id = { clientId: o.clientId!, username: o.username };
      publishers.set(o, id);
    }
    return id;
  };
  return publisherOf;
}

/**
 * Sends the retained messages matching `filter` to the new subscription of `s` (the caller has
 * applied Retain Handling and left shared subscriptions out), through the core's deliverTo.
 */
export function deliverRetained(
  retained: RetainedStore,
  auth: BrokerAuth | undefined,
  s: Subscriber,
  filter: string,
  opts: SubOptions,
  now: number,
  deliverTo: (s: Subscriber, msg: RoutedMessage, qos: QoS, retain: boolean, subIds: number[] | undefined) => void,
): void {
  retained.forEachMatch(
    filter,
    (r) => {
      const acl = auth?.acl;
      if (acl !== undefined) {
        if (!acl.canReceive(s.kind === "local" ? s.identity : s, r.topic)) return;
        // G3: not replayed once its publisher may no longer write there.
        if (r.publisher !== undefined && !acl.canPublish(r.publisher, r.topic)) return;
      }
      const msg: RoutedMessage = {
        topic: r.topic,
        payload: r.payload,
        qos: r.qos,
        retain: true,
        properties: r.properties as RoutedMessage["properties"],
        expiresAt: r.expiresAt,
      };
      const qos = (r.qos < opts.qos ? r.qos : opts.qos) as QoS;
      // Retained messages sent for a new subscription carry RETAIN=1 (MQTT-3.3.1-9).
      deliverTo(s, msg, qos, true, opts.subscriptionId ? [opts.subscriptionId] : undefined);
    },
    now,
  );
}

// Delivery helpers of the broker core: the deferred queue that hands messages to in-process
// subscribers (parts of the hub), and the warning logged when a full session queue drops messages.
// core.ts creates one of each per broker; its deliverTo calls them for every delivery.
import type { Logger, Message, QoS } from "../contracts.js";
import type { BrokerLimits, LocalSubscriber } from "./core-types.js";
import type { RoutedMessage } from "./publish-encode.js";
import { type Session, queueLength } from "./session.js";

/** Returns deliverLocal: queues a message for an in-process subscriber, handed over in a microtask. */
export function createLocalDelivery(log: Logger): (sub: LocalSubscriber, msg: RoutedMessage, qos: QoS, retain: boolean) => void {
  // Local deliveries run after the current packet is handled, never re-entrantly inside route().
  let localQueue: Array<{ sub: LocalSubscriber; m: Message }> = [];
  const flushLocal = () => {
    const q = localQueue;
    localQueue = [];
    for (const { sub, m } of q) {
      try {
        sub.handler(m);
      } catch (err) {
        log.error("in-process subscriber failed", { part: sub.name, topic: m.topic, error: err });
      }
    }
  };
  const deliverLocal = (sub: LocalSubscriber, msg: RoutedMessage, qos: QoS, retain: boolean) => {
    if (localQueue.length === 0) queueMicrotask(flushLocal);
    const m: Message = { topic: msg.topic, payload: msg.payload, qos, retain };
    if (msg.properties) m.properties = msg.properties;
    localQueue.push({ sub, m });
  };
  return deliverLocal;
}

/** Returns noteDropped: logs that a session's full queue drops messages (rate-limited per session). */
export function createDropLog(limits: BrokerLimits, log: Logger): (s: Session, now: number) => void {
  // A full queue drops messages the publisher was acknowledged for (an offline persistent session
  // over limits.max_queued_*): said in the log, at most once a minute per session, like mosquitto's
  // "Outgoing messages are being dropped for client".
  const dropLogged = new WeakMap<Session, number>();
  const noteDropped = (s: Session, now: number) => {
    const last = dropLogged.get(s);
    if (last !== undefined && now - last < 60_000) return;
    dropLogged.set(s, now);
    log.warn("message queue of a client is full; messages for it are being dropped", {
      client: s.clientId,
      online: s.link !== undefined,
      queued: queueLength(s),
      dropped: s.dropped,
      max_queued_messages: limits.maxQueuedMessages,
      max_queued_bytes: limits.maxQueuedBytes,
    });
  };
  return noteDropped;
}

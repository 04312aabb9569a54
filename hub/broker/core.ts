// The broker's shared state and the operations every connection and in-process client uses:
// sessions by client id, the subscription tree, retained messages, routing, wills and expiry.
// Sockets and packets are connection.ts's business; this file never sees bytes.
// Its types are in core-types.ts (re-exported here), flow control in core-flow.ts, delivery helpers
// in core-delivery.ts, retained replay in core-retained.ts and the counters in core-stats.ts.
import type { Cancel, Clock, Logger, QoS } from "../contracts.js";
import { createFlappingDetector } from "./auth/flapping.js";
import { type BrokerAuth, internalIdentity } from "./auth/types.js";
import { createDropLog, createLocalDelivery } from "./core-delivery.js";
import { createFlowControl } from "./core-flow.js";
import { createPublisherOf, deliverRetained } from "./core-retained.js";
import { createBrokerStats, type BrokerStats } from "./core-stats.js";
import type { BrokerCore, BrokerLimits, Subscriber } from "./core-types.js";
import type { RoutedMessage } from "./publish-encode.js";
import { createRetainedStore } from "./retained.js";
import {
  type Delivery,
  type QueueLimits,
  type Session,
  clearSession,
  createSession,
  deliver,
  pump,
  queueLength,
  resend,
} from "./session.js";
import { journaledTree } from "./store/tree.js";
import type { CoreJournal } from "./store/types.js";
import { createSubscriptionTree, type Subscription } from "./subscriptions.js";

export type { BrokerStats } from "./core-stats.js";
export type { BrokerCore, BrokerLimits, LocalSubscriber, PausedPublisher, Subscriber } from "./core-types.js";

export function createBrokerCore(limits: BrokerLimits, clock: Clock, log: Logger, store?: CoreJournal): BrokerCore {
  const sessions = new Map<string, Session>();
  const tree = store ? journaledTree(createSubscriptionTree<Subscriber>(), store) : createSubscriptionTree<Subscriber>();
  const retained = createRetainedStore({ maxMessages: limits.maxRetainedMessages, maxBytes: limits.maxRetainedBytes });
  const stats: BrokerStats = createBrokerStats(clock.now());
  const queueLimits: QueueLimits = { maxMessages: limits.maxQueuedMessages, maxBytes: limits.maxQueuedBytes };
  const timers = new Set<Cancel>();
  // Flow control (core-flow.ts): its marks and set as locals, so deliverTo reads them directly.
  const { highCount, highBytes, lowCount, lowBytes, congested, relieve, pausePublisher, sweepCongestion } = createFlowControl(limits, log);
  let routeCongested = false;
  let auth: BrokerAuth | undefined;
  const flapping = limits.flapping ? createFlappingDetector(limits.flapping, clock, log) : undefined;
  const publisherOf = createPublisherOf();
  const deliverLocal = createLocalDelivery(log);
  const noteDropped = createDropLog(limits, log);

  const deliverTo = (s: Subscriber, msg: RoutedMessage, qos: QoS, retain: boolean, subIds: number[] | undefined) => {
    if (s.kind === "local") {
      deliverLocal(s, msg, qos, retain);
      return;
    }
    const d: Delivery = { msg, qos, retain };
    if (subIds) d.subscriptionIds = subIds;
    const now = clock.monotonic();
    const droppedBefore = s.dropped;
    deliver(s, d, queueLimits, now);
    if (s.dropped !== droppedBefore) {
      stats.publishDropped += s.dropped - droppedBefore; // eviction may drop several at once
      noteDropped(s, now);
    }
    if (s.link && (queueLength(s) >= highCount || s.queuedBytes >= highBytes)) {
      routeCongested = true;
      if (s.congestedSince < 0) {
        s.congestedSince = now;
        congested.add(s);
      }
    }
  };

  // Routing scratch state: one closure for the whole broker, no Map per message.
  let mark = 0;
  let current: RoutedMessage | undefined;
  const matched: Subscriber[] = [];
  const onMatch = (sub: Subscription<Subscriber>) => {
    const s = sub.subscriber;
    if (sub.noLocal && s === current!.origin) return; // MQTT-3.8.3-3
    if (s.routeMark !== mark) {
      s.routeMark = mark;
      s.routeQos = sub.qos;
      s.routeRetain = sub.retainAsPublished;
      s.routeSubIds = sub.subscriptionId ? [sub.subscriptionId] : undefined;
      matched.push(s);
      return;
    }
    // Overlapping subscriptions: one copy at the highest QoS with every identifier (MQTT-3.3.4-3/5).
    if (sub.qos > s.routeQos) s.routeQos = sub.qos;
    if (sub.retainAsPublished) s.routeRetain = true;
    if (sub.subscriptionId) {
      s.routeSubIds ??= [];
      s.routeSubIds.push(sub.subscriptionId);
    }
  };

  const route = (msg: RoutedMessage) => {
    routeCongested = false;
    if (msg.retain) {
      const r = retained.set({
        topic: msg.topic,
        // A copy: the payload may be a slice of a 64 KiB socket read that would otherwise stay alive.
        payload: Buffer.from(msg.payload),
        qos: msg.qos,
        properties: msg.properties,
        storedAt: clock.monotonic(),
        expiresAt: msg.expiresAt,
        publisher: auth === undefined ? undefined : publisherOf(msg.origin),
      });
      if (r === "rejected-cap") log.warn("retained store full; message not retained", { topic: msg.topic });
      else if (store) store.retained(msg.topic, r === "stored" ? retained.get(msg.topic) : undefined);
    }
    mark++;
    current = msg;
    tree.forEachMatch(msg.topic, onMatch);
    current = undefined;
    // Receive-side check (G10): a subscription may be wider than what its owner may read now.
    const acl = auth?.acl;
    for (let i = 0; i < matched.length; i++) {
      const s = matched[i]!;
      if (acl !== undefined && !acl.canReceive(s.kind === "local" ? s.identity : s, msg.topic)) continue;
      const qos = (msg.qos < s.routeQos ? msg.qos : s.routeQos) as QoS; // MQTT-3.8.4-8 downgrade
      // Forwarded messages carry RETAIN=0 unless Retain As Published (MQTT-3.3.1-12/13).
      deliverTo(s, msg, qos, s.routeRetain && msg.retain, s.routeSubIds);
    }
    matched.length = 0;
  };

  const publishWill = (s: Session) => {
    const w = s.will;
    if (!w) return;
    s.will = undefined;
    s.willTimer?.();
    s.willTimer = undefined;
    if (s.journal) store?.sessionSaved(s);
    // Re-authorized when published (G6, G7): the ACL may have changed since CONNECT, or the will
    // may come from the durable store.
    if (auth?.acl !== undefined && !auth.acl.canPublish(s, w.msg.topic)) {
      log.info("will not published: the client may not publish to its topic", { client: s.clientId, topic: w.msg.topic });
      return;
    }
    log.debug("publishing will", { client: s.clientId, topic: w.msg.topic });
    if (w.expirySeconds !== undefined) w.msg.expiresAt = clock.monotonic() + w.expirySeconds * 1000;
    route(w.msg);
    if (auth !== undefined && w.msg.retain) {
      const r = retained.get(w.msg.topic);
      if (r !== undefined) r.publisher = publisherOf(s);
    }
  };

  const endSession = (s: Session) => {
    s.expiryTimer?.();
    s.expiryTimer = undefined;
    publishWill(s);
    tree.removeAll(s);
    clearSession(s);
    store?.sessionEnded(s);
    if (sessions.get(s.clientId) === s) sessions.delete(s.clientId);
  };

  const track = (c: Cancel): Cancel => {
    timers.add(c);
    return () => {
      timers.delete(c);
      c();
    };
  };

  const scheduleOffline = (s: Session, willInMs: number, expiryInMs: number) => {
    const w = s.will;
    if (w) {
      if (willInMs > 0 && s.expiryMs > 0 && expiryInMs > 0) {
        s.willTimer = track(clock.after(willInMs, () => publishWill(s)));
      } else publishWill(s);
    }
    if (s.expiryMs === 0 || expiryInMs <= 0) endSession(s);
    else if (Number.isFinite(expiryInMs)) s.expiryTimer = track(clock.after(expiryInMs, () => endSession(s)));
  };

  const pumpSession = (s: Session) => {
    pump(s, clock.monotonic());
    if (s.congestedSince >= 0 && queueLength(s) <= lowCount && s.queuedBytes <= lowBytes) relieve(s);
  };

  return {
    limits,
    clock,
    pumpSession,
    get routeCongested() {
      return routeCongested;
    },
    set routeCongested(v: boolean) {
      routeCongested = v;
    },
    pausePublisher,
    sweepCongestion,
    log,
    sessions,
    tree,
    retained,
    stats,
    queueLimits,
    store,
    afterCommit(run, fail) {
      if (store) store.afterCommit(run, fail);
      else run();
    },
    get auth() {
      return auth;
    },
    set auth(a: BrokerAuth | undefined) {
      auth = a;
    },
    flapping,
    route,
    endSession,
    subscribe(s, filter, opts, isShared) {
      const { replaced } = tree.add(s, filter, opts);
      // Retained messages: not for shared subscriptions (MQTT-4.8.2-?; §4.8.2), and per Retain Handling.
      if (!isShared && (opts.retainHandling === 0 || (opts.retainHandling === 1 && !replaced))) {
        deliverRetained(retained, auth, s, filter, opts, clock.monotonic(), deliverTo);
      }
      return { granted: opts.qos };
    },
    openSession(clientId, cleanStart) {
      const existing = sessions.get(clientId);
      if (existing && !cleanStart) {
        existing.expiryTimer?.();
        existing.expiryTimer = undefined;
        // Reconnected before the Will Delay ended: the will is not sent (MQTT-3.1.3-9 note, §3.1.3.2.2).
        existing.willTimer?.();
        existing.willTimer = undefined;
        existing.will = undefined;
        return { session: existing, present: true };
      }
      if (existing) endSession(existing);
      const session = createSession(clientId);
      sessions.set(clientId, session);
      return { session, present: false };
    },
    connectionClosed(s, publishWillNow) {
      s.link = undefined;
      relieve(s); // an offline session no longer holds publishers back; its queue caps apply
      stats.clientsConnected--;
      if (!publishWillNow) s.will = undefined;
      store?.sessionSaved(s); // offline since now: expiry and Will Delay count from here across restarts
      scheduleOffline(s, s.will?.delayMs ?? 0, s.expiryMs);
    },
    scheduleOffline,
    resume(s) {
      resend(s);
      pumpSession(s);
    },
    localSubscriber(name, handler) {
      return { kind: "local", name, identity: internalIdentity(name), handler, routeMark: 0, routeQos: 0, routeRetain: false, routeSubIds: undefined };
    },
    close() {
      for (const c of timers) c();
      timers.clear();
    },
  };
}

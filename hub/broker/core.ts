// The broker's shared state and the operations every connection and in-process client uses:
// sessions by client id, the subscription tree, retained messages, routing, wills and expiry.
// Sockets and packets are connection.ts's business; this file never sees bytes.
import type { Cancel, Clock, Logger, Message, QoS } from "../contracts.js";
import { createFlappingDetector, type FlappingDetector, type FlappingLimits } from "./auth/flapping.js";
import { type BrokerAuth, type Identity, internalIdentity } from "./auth/types.js";
import type { RoutedMessage } from "./publish-encode.js";
import { createRetainedStore, type RetainedStore } from "./retained.js";
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
import { RC } from "./reason-codes.js";
import { journaledTree } from "./store/tree.js";
import type { CoreJournal } from "./store/types.js";
import { createSubscriptionTree, type SubOptions, type Subscription, type SubscriptionTree } from "./subscriptions.js";

export interface BrokerLimits {
  maxPacketSize: number;
  connectTimeoutMs: number;
  maxKeepalive: number;
  maxClientIdLength: number;
  maxTopicLength: number;
  maxTopicLevels: number;
  receiveMaximum: number;
  maxInflightOutbound: number;
  maxQueuedMessages: number;
  maxQueuedBytes: number;
  maxSubscriptionsPerClient: number;
  maxConnections: number;
  drainTimeoutMs: number;
  topicAliasMaximum: number;
  maxSessionExpiry: number;
  maxRetainedMessages: number;
  maxRetainedBytes: number;
  maxUserProperties: number;
  /** Reconnect flapping ban (H5, auth/flapping.ts); undefined: off. */
  flapping?: FlappingLimits | undefined;
}

/** An in-process subscriber (a part of the hub): a callback instead of a socket. */
export interface LocalSubscriber {
  readonly kind: "local";
  readonly name: string;
  /** Who this part is for access control (user name `hub:<name>`). */
  readonly identity: Identity;
  handler: (m: Message) => void;
  routeMark: number;
  routeQos: QoS;
  routeRetain: boolean;
  routeSubIds: number[] | undefined;
}

export type Subscriber = Session | LocalSubscriber;

export interface BrokerStats {
  startedAt: number;
  clientsConnected: number;
  clientsTotal: number;
  messagesReceived: number;
  messagesSent: number;
  bytesReceived: number;
  bytesSent: number;
  publishDropped: number;
}

export interface BrokerCore {
  readonly limits: BrokerLimits;
  readonly clock: Clock;
  readonly log: Logger;
  readonly sessions: Map<string, Session>;
  readonly tree: SubscriptionTree<Subscriber>;
  readonly retained: RetainedStore;
  readonly stats: BrokerStats;
  readonly queueLimits: QueueLimits;
  /** The durable store's write-behind log (store/); undefined when storage is off. */
  readonly store: CoreJournal | undefined;
  /** Runs `run` once the state changes so far are committed (acks wait here); `fail` if that failed. */
  afterCommit(run: () => void, fail?: () => void): void;
  /**
   * Arms the offline timers of a session (will after `willInMs`, end after `expiryInMs`; <= 0: now).
   * connectionClosed uses it, and the store when it restores sessions with the time already spent offline.
   */
  scheduleOffline(s: Session, willInMs: number, expiryInMs: number): void;
  /** Authentication and access control (auth/); undefined: anonymous clients, everything allowed. */
  auth: BrokerAuth | undefined;
  /** Counts CONNECTs per client id and bans flapping ones (H5); undefined when limits.flapping is off. */
  readonly flapping: FlappingDetector | undefined;
  /** Routes a message to every matching subscriber and updates the retained store. */
  route(m: RoutedMessage): void;
  /** Subscribes and delivers retained messages per Retain Handling; returns the granted QoS. */
  subscribe(s: Subscriber, filter: string, opts: SubOptions, isShared: boolean): { granted: QoS };
  /** Ends a session: subscriptions removed, pending will published (MQTT-3.1.3-9). */
  endSession(s: Session): void;
  /** Finds or creates the session for a CONNECT. */
  openSession(clientId: string, cleanStart: boolean): { session: Session; present: boolean };
  /** The connection of a session closed; `publishWill` false after a normal DISCONNECT. */
  connectionClosed(s: Session, publishWill: boolean): void;
  /** Called after a link is attached to a resumed session. */
  resume(s: Session): void;
  localSubscriber(name: string, handler: (m: Message) => void): LocalSubscriber;
  /** Sends what the session's link has room for; ends congestion below the low-water mark. */
  pumpSession(s: Session): void;
  /**
   * True after route() queued a message for an online session whose queue is over its high-water
   * mark: the publishing connection then stops reading until that queue drains (flow control
   * instead of dropping messages that were acknowledged to the publisher).
   */
  routeCongested: boolean;
  /** Connections paused by flow control; resumed when a congested queue drains. */
  pausePublisher(p: PausedPublisher): void;
  /** Disconnects consumers that stayed congested longer than the drain timeout. */
  sweepCongestion(now: number): void;
  close(): void;
}

export interface PausedPublisher {
  resumeReading(): void;
}

export function createBrokerCore(limits: BrokerLimits, clock: Clock, log: Logger, store?: CoreJournal): BrokerCore {
  const sessions = new Map<string, Session>();
  const tree = store ? journaledTree(createSubscriptionTree<Subscriber>(), store) : createSubscriptionTree<Subscriber>();
  const retained = createRetainedStore({ maxMessages: limits.maxRetainedMessages, maxBytes: limits.maxRetainedBytes });
  const stats: BrokerStats = {
    startedAt: clock.now(),
    clientsConnected: 0,
    clientsTotal: 0,
    messagesReceived: 0,
    messagesSent: 0,
    bytesReceived: 0,
    bytesSent: 0,
    publishDropped: 0,
  };
  const queueLimits: QueueLimits = { maxMessages: limits.maxQueuedMessages, maxBytes: limits.maxQueuedBytes };
  const timers = new Set<Cancel>();
  // Flow control marks: congested above half the queue caps, relieved below a quarter.
  const highCount = Math.max(1, Math.floor(limits.maxQueuedMessages / 2));
  const highBytes = Math.floor(limits.maxQueuedBytes / 2);
  const lowCount = Math.floor(limits.maxQueuedMessages / 4);
  const lowBytes = Math.floor(limits.maxQueuedBytes / 4);
  const congested = new Set<Session>();
  const paused = new Set<PausedPublisher>();
  let routeCongested = false;
  let auth: BrokerAuth | undefined;
  const flapping = limits.flapping ? createFlappingDetector(limits.flapping, clock, log) : undefined;
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
  const resumeAll = () => {
    if (paused.size === 0) return;
    const list = [...paused];
    paused.clear();
    for (const p of list) p.resumeReading();
  };
  const relieve = (s: Session) => {
    if (s.congestedSince < 0) return;
    s.congestedSince = -1;
    congested.delete(s);
    resumeAll();
  };

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
    pausePublisher(p) {
      paused.add(p);
      // Nothing congested any more (e.g. the consumer left meanwhile): do not stay paused.
      if (congested.size === 0) resumeAll();
    },
    sweepCongestion(now) {
      for (const s of congested) {
        if (now - s.congestedSince <= limits.drainTimeoutMs) continue;
        log.warn("client does not keep up with its messages; disconnecting slow consumer", {
          client: s.clientId,
          queued: queueLength(s),
        });
        s.link?.fail(RC.QUOTA_EXCEEDED, "slow consumer: message queue full");
        relieve(s);
      }
    },
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
        const now = clock.monotonic();
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

// The broker core's types: its limits, the subscribers it routes to (sessions and in-process
// parts), and the BrokerCore interface that connections, the store and the hub's parts use.
// core.ts builds the core and re-exports these, so importers keep using core.js.
import type { Clock, Logger, Message, QoS } from "../contracts.js";
import type { FlappingDetector, FlappingLimits } from "./auth/flapping.js";
import type { BrokerAuth, Identity } from "./auth/types.js";
import type { BrokerStats } from "./core-stats.js";
import type { RoutedMessage } from "./publish-encode.js";
import type { RetainedStore } from "./retained.js";
import type { QueueLimits, Session } from "./session.js";
import type { CoreJournal } from "./store/types.js";
import type { SubOptions, SubscriptionTree } from "./subscriptions.js";

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

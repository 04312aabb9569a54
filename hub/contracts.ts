// The interfaces every part of the hub shares. A leaf module: types only, no runtime code, so that
// drivers/ and rules/ may import it without depending on anything else in hub/ (see test/architecture).

/** Cancels a timer, subscription or watch. Calling it twice is harmless. */
export type Cancel = () => void;

/**
 * Time, injected everywhere so tests drive it. `now()` is wall-clock milliseconds (for timestamps,
 * cron, expiry shown to users); `monotonic()` never jumps (for keep-alive, backoff, expiry timers).
 */
export interface Clock {
  now(): number;
  monotonic(): number;
  after(ms: number, fn: () => void): Cancel;
  every(ms: number, fn: () => void): Cancel;
}

export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFields = Record<string, unknown>;

/** One line per event; `component` is on every line. `child` names a sub-component. */
export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  child(component: string): Logger;
}

export type QoS = 0 | 1 | 2;

/** MQTT 5 properties a PUBLISH carries end to end (forwarded unchanged unless noted). */
export interface PublishProperties {
  payloadFormatIndicator?: boolean;
  /** Seconds; the broker decrements it by the time the message waited. */
  messageExpiryInterval?: number;
  contentType?: string;
  responseTopic?: string;
  correlationData?: Buffer;
  userProperties?: Record<string, string | string[]>;
}

export interface Message {
  topic: string;
  payload: Buffer;
  qos: QoS;
  retain: boolean;
  properties?: PublishProperties;
}

export interface SubscribeOptions {
  qos?: QoS;
}

/**
 * How parts talk: the embedded broker's in-process face, or an MQTT client of an external broker.
 * Messages published by a part are not delivered back to that same subscription callback's part
 * unless it subscribed to them; retained messages matching a new subscription are delivered to it.
 */
export interface Bus {
  publish(m: Message): Promise<void>;
  subscribe(filter: string, onMessage: (m: Message) => void, opts?: SubscribeOptions): Promise<Cancel>;
}

/** A part of the hub with a lifecycle. `stop` must release everything `start` took. */
export interface Service {
  readonly name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** SIGHUP: re-read whatever this part reads from disk. Optional. */
  reload?(): Promise<void>;
}

/** Topic helpers shared by every part; the base topic is configurable (default `hub`). */
export interface Topics {
  readonly base: string;
  /** `hub/<device>/<quantity>` or `hub/<device>` when quantity is omitted. */
  state(device: string, quantity?: string): string;
  set(device: string): string;
  availability(device: string): string;
  status(): string;
}

// One network connection: bytes in through the framing gate and the parser, packets dispatched to
// the broker core, packets out in one batched write per event-loop turn (cork/uncork; Nagle off).
// Every throw around parse and dispatch is caught: one bad client never harms another.
//
// Memory: a home broker holds thousands of mostly idle connections, so per-connection state is one
// object of a class (methods on the prototype, not closures), socket listeners are shared functions,
// the parser and rule tables are shared by the whole broker (parsing is synchronous, one packet at a
// time), and topic-alias maps are created only when a client uses aliases.
import type mqtt from "mqtt-packet";
import { generatePacket } from "./mqtt-generate.js";
import type { Duplex } from "node:stream";
import { handleConnect } from "./connect.js";
import type { BrokerCore } from "./core.js";
import { createFramer, type Framer, fixedHeaderLength, isFrameError } from "./framing.js";
import { handlePublish, handleSubscribe, handleUnsubscribe } from "./inbound.js";
import { checkConnectRaw, checkPacket, type RuleLimits, type TopicRules, type Verdict } from "./packet-rules.js";
import { createPacketParser, isParseFault, type PacketParser } from "./parse.js";
import { encodePublish } from "./publish-encode.js";
import { RC, v5ToV3Connack } from "./reason-codes.js";
import { complete, type Delivery, type Link, received, type Session } from "./session.js";
import { validTopicFilter, validTopicName } from "./topics.js";
import { checkWireStrings } from "./wire-strings.js";

/**
 * What a connection knows of the listener that accepted it: the security settings that apply to
 * it (listeners.ts builds one per configured listener; in-memory tests use DEFAULT_LISTENER).
 */
export interface ListenerInfo {
  /** Shown in logs, e.g. "mqtts://0.0.0.0:8883". */
  readonly name: string;
  /** Clients without a user name may connect. */
  readonly allowAnonymous: boolean;
  /** TLS: the client certificate's subject CN is the user name (no password asked). */
  readonly identityAsUsername: boolean;
}

/** The loopback default: anonymous clients allowed, no certificates. */
export const DEFAULT_LISTENER: ListenerInfo = { name: "local", allowAnonymous: true, identityAsUsername: false };

export interface Socketish extends Duplex {
  remoteAddress?: string;
  remotePort?: number;
  setNoDelay?(noDelay?: boolean): unknown;
  writableLength: number;
  /**
   * TLS listeners with require_client_cert: the verified client certificate's subject CN (well-formed
   * text, checked in tls.ts). With the listener's identityAsUsername it is the user name.
   */
  peerCommonName?: string;
}

/** What every connection of one broker shares. */
export interface ConnectionContext {
  core: BrokerCore;
  parser: PacketParser;
  rules: TopicRules;
  ruleLimits: RuleLimits;
  /** Per-filter SUBACK/UNSUBACK failure codes from checkPacket (0 = valid); reused per packet. */
  failures: number[];
  /** Connections with writes held back (corked) until the end of this event-loop turn. */
  corked: Connection[];
  onClosed(c: Connection): void;
}

export function connectionContext(core: BrokerCore, onClosed: (c: Connection) => void): ConnectionContext {
  const topicLimits = { maxLength: core.limits.maxTopicLength, maxLevels: core.limits.maxTopicLevels };
  return {
    core,
    parser: createPacketParser(),
    rules: {
      validName: (t) => validTopicName(t, topicLimits),
      validFilter: (f) => validTopicFilter(f, topicLimits),
    },
    ruleLimits: { maxClientIdLength: core.limits.maxClientIdLength, topicAliasMaximum: core.limits.topicAliasMaximum },
    failures: [],
    corked: [],
    onClosed,
  };
}

/** Output above this many buffered bytes marks the link blocked; QoS>0 waits in the session queue. */
const HIGH_WATER = 1 << 20;
const CONN = Symbol("hub.connection");

/** The protocol level byte of a framed CONNECT (3, 4 or 5; anything else counts as 4 for replies). */
function connectLevel(f: Buffer): 3 | 4 | 5 {
  const h = fixedHeaderLength(f);
  if (h < 0 || h + 4 > f.length) return 4;
  const level = f[h + 2 + f.readUInt16BE(h)];
  return level === 3 || level === 5 ? level : 4;
}

/** PUBACK/PUBREC/PUBREL/PUBCOMP with reason 0 and no properties: 4 bytes in every version. */
function ack(type: number, id: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b[0] = type;
  b[1] = 2;
  b[2] = id >> 8;
  b[3] = id & 0xff;
  return b;
}
const PUBACK = 0x40;
const PUBREC = 0x50;
const PUBREL = 0x62;
const PUBCOMP = 0x70;
const PINGRESP = Buffer.from([0xd0, 0x00]);
const EMPTY = Buffer.alloc(0);

export class Connection implements Link {
  state: "connecting" | "connected" | "closed" = "connecting";
  protocolVersion: 3 | 4 | 5 = 4;
  session: Session | undefined = undefined;
  clientId = "";
  keepaliveMs = 0;
  lastSeen: number;
  readonly openedAt: number;
  blockedSince = 0;
  receiveMaximum = 65535;
  maxPacketSizeOut = Number.POSITIVE_INFINITY;
  aliasIn: Map<number, string> | undefined = undefined;
  aliasOut: Map<string, number> | undefined = undefined;
  aliasOutMax = 0;
  /** Cleared by a normal DISCONNECT; v5 reason 0x04 keeps it (MQTT-3.14.4-3). */
  willOnClose = true;
  private corked = false;
  /** Reading stopped by flow control (a subscriber's queue is over its high-water mark). */
  private paused = false;
  private connectSeen = false;
  private finished = false;
  private readonly framer: Framer;

  /** The authenticated user name, once CONNECT is accepted; undefined for anonymous clients. */
  username: string | undefined;

  constructor(
    readonly ctx: ConnectionContext,
    readonly socket: Socketish,
    readonly listener: ListenerInfo = DEFAULT_LISTENER,
  ) {
    const now = ctx.core.clock.monotonic();
    this.lastSeen = now;
    this.openedAt = now;
    this.framer = createFramer({ maxPacketSize: ctx.core.limits.maxPacketSize });
    (socket as unknown as Record<symbol, Connection>)[CONN] = this;
    socket.on("data", onData);
    socket.on("error", onError);
    socket.on("close", onClose);
    socket.on("drain", onDrain);
    socket.setNoDelay?.(true);
  }

  get core(): BrokerCore {
    return this.ctx.core;
  }

  get remote(): string {
    return `${this.socket.remoteAddress ?? "local"}:${this.socket.remotePort ?? 0}`;
  }

  blocked(): boolean {
    if (this.socket.writableLength <= HIGH_WATER) return false;
    if (this.blockedSince === 0) this.blockedSince = this.ctx.core.clock.monotonic();
    return true;
  }

  sendBuffer(buf: Buffer): void {
    if (this.state === "closed") return;
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      this.ctx.corked.push(this);
      if (this.ctx.corked.length === 1) setImmediate(flushCorked, this.ctx);
    }
    this.ctx.core.stats.bytesSent += buf.length;
    this.socket.write(buf);
  }

  send(packet: mqtt.Packet): void {
    this.sendBuffer(generatePacket(packet, { protocolVersion: this.protocolVersion }));
  }

  sendPublish(d: Delivery, id: number, dup: boolean): boolean {
    const core = this.ctx.core;
    let topicAlias: number | undefined;
    let aliasOnly = false;
    if (this.aliasOutMax > 0) {
      // Outbound topic aliases (MQTT 5 §3.3.2.3.4): the first use sends topic + alias, later ones the
      // alias alone; once the client's maximum is used up, further topics go without an alias.
      this.aliasOut ??= new Map();
      const known = this.aliasOut.get(d.msg.topic);
      if (known !== undefined) {
        topicAlias = known;
        aliasOnly = true;
      } else if (this.aliasOut.size < this.aliasOutMax) {
        topicAlias = this.aliasOut.size + 1;
        this.aliasOut.set(d.msg.topic, topicAlias);
      }
    }
    const buf = encodePublish(d.msg, {
      qos: d.qos,
      retain: d.retain,
      dup,
      messageId: id,
      protocolVersion: this.protocolVersion,
      subscriptionIds: d.subscriptionIds,
      topicAlias,
      aliasOnly,
      now: core.clock.monotonic(),
    });
    if (buf.length > this.maxPacketSizeOut) {
      if (topicAlias !== undefined && !aliasOnly) this.aliasOut?.delete(d.msg.topic);
      core.log.debug("message larger than the client's Maximum Packet Size; discarded", { client: this.clientId });
      return false;
    }
    core.stats.messagesSent++;
    this.sendBuffer(buf);
    return true;
  }

  sendPubrel(id: number): void {
    this.sendBuffer(ack(PUBREL, id));
  }

  /** Moves the session's queue on (a held QoS 2 PUBLISH was committed: session.ts holdUntilCommitted). */
  pump(): void {
    if (this.session && this.state === "connected") this.ctx.core.pumpSession(this.session);
  }

  /** Closes with a reason: v5 gets DISCONNECT (or CONNACK before CONNECT is accepted) first. */
  fail(reason: number, message: string): void {
    if (this.state === "closed") return;
    this.ctx.core.log.debug("closing connection", {
      client: this.clientId || this.remote,
      reason: `0x${reason.toString(16)}`,
      why: message,
    });
    // A socket that can no longer send is not told why: once the peer's FIN arrived (allowHalfOpen
    // off, as on our listeners) Node turns every write into an error with a stack trace, which cost
    // more than the handshakes themselves when a shutdown failed thousands of closed sockets.
    const s = this.socket;
    if (!s.writable || (s.readableEnded && !s.allowHalfOpen)) {
      this.close();
      return;
    }
    if (this.protocolVersion === 5) {
      if (this.state === "connecting") {
        this.send({ cmd: "connack", sessionPresent: false, reasonCode: reason, properties: { reasonString: message } });
      } else {
        this.send({ cmd: "disconnect", reasonCode: reason, properties: { reasonString: message } });
      }
    } else if (this.state === "connecting" && this.connectSeen) {
      // 3.1.1 answers a refused CONNECT with a return code where one exists (MQTT-3.2.2-4/5).
      const rc = v5ToV3Connack(reason);
      if (rc !== undefined) this.send({ cmd: "connack", sessionPresent: false, returnCode: rc });
    }
    this.close();
  }

  /** Closes the socket (after flushing what was written). */
  close(): void {
    if (this.state === "closed") return;
    this.finish();
    this.socket.end();
    // A peer that never reads must not keep the socket: destroy soon after end().
    const cancel = this.ctx.core.clock.after(2_000, () => this.socket.destroy());
    this.socket.once("close", cancel);
  }

  /** Keep-alive, connect timeout and drain timeout; called by the broker's once-a-second sweep. */
  sweep(now: number): void {
    const { limits, log } = this.ctx.core;
    if (this.state === "connecting") {
      if (now - this.openedAt > limits.connectTimeoutMs) {
        log.debug("no CONNECT in time; closing", { remote: this.remote });
        this.socket.destroy();
        this.finish();
      }
      return;
    }
    if (this.state !== "connected") return;
    if (this.paused) this.lastSeen = now; // we are the ones not reading
    // Keep-alive: 1.5 × the interval without any packet (3.1.1 MQTT-3.1.2-24; 5 MQTT-3.1.2-22).
    if (this.keepaliveMs > 0 && now - this.lastSeen > this.keepaliveMs * 1.5) {
      this.fail(RC.KEEP_ALIVE_TIMEOUT, "keep alive timeout");
      return;
    }
    if (this.blockedSince !== 0) {
      if (this.socket.writableLength <= HIGH_WATER) this.blockedSince = 0;
      else if (now - this.blockedSince > limits.drainTimeoutMs) {
        log.warn("client is not reading; disconnecting slow consumer", { client: this.clientId });
        this.socket.destroy();
        this.finish();
      }
    }
  }

  finish(): void {
    if (this.finished) return;
    this.finished = true;
    const wasConnected = this.state === "connected";
    this.state = "closed";
    const s = this.session;
    if (wasConnected && s && s.link === this) this.ctx.core.connectionClosed(s, this.willOnClose);
    this.ctx.onClosed(this);
  }

  private applyVerdict(v: Exclude<Verdict, { ok: true }>): void {
    if (v.action === "close") {
      this.ctx.core.log.debug("closing connection", { client: this.clientId || this.remote, reason: `0x${v.reason.toString(16)}`, why: v.message });
      this.close();
    } else this.fail(v.reason, v.message);
  }

  /** Handles every complete packet of one read at once, acknowledgements as fairly as publishes. */
  onData(chunk: Buffer): void {
    const { core, parser, rules, ruleLimits, failures } = this.ctx;
    core.stats.bytesReceived += chunk.length;
    this.framer.push(chunk);
    while (this.state !== "closed" && !this.paused) {
      const f = this.framer.next();
      if (f === undefined) break;
      if (isFrameError(f)) {
        this.fail(f.reason, f.message);
        break;
      }
      if (this.state === "connecting") {
        this.connectSeen = true;
        // Answer in the client's own protocol level from here on (v5 CONNACK with a reason code).
        this.protocolVersion = connectLevel(f);
        const v = checkConnectRaw(f);
        if (!v.ok) {
          this.applyVerdict(v);
          break;
        }
      }
      // Strings are checked on the raw bytes: the codec would hide bad UTF-8 behind U+FFFD (MQTT-1.5.4-1).
      const bad = checkWireStrings(f, this.protocolVersion, core.limits.maxUserProperties);
      if (bad) {
        this.fail(bad.reason, bad.message);
        break;
      }
      const p = parser.parse(f, this.protocolVersion);
      if (isParseFault(p)) {
        this.fail(p.reason, p.message);
        break;
      }
      const v = checkPacket(p, this.protocolVersion, rules, ruleLimits, failures);
      if (!v.ok) {
        this.applyVerdict(v);
        break;
      }
      this.onPacket(p);
      if (p.cmd === "publish" && core.routeCongested) {
        // Flow control: the rest of this read stays in the framer until the queue drains.
        core.routeCongested = false;
        this.paused = true;
        this.socket.pause();
        core.pausePublisher(this);
        break;
      }
    }
  }

  resumeReading(): void {
    if (!this.paused) return;
    this.paused = false;
    // Not re-entrant: the caller may be in the middle of another connection's packet.
    setImmediate(resumeLater, this);
  }

  /** Handles what the framer still holds, then reads from the socket again. */
  continueReading(): void {
    if (this.paused || this.state === "closed") return;
    try {
      this.onData(EMPTY);
    } catch (err) {
      this.core.log.warn("error handling a packet; closing that client", { client: this.clientId || this.remote, error: err });
      this.fail(RC.UNSPECIFIED, "internal error");
      this.socket.destroy();
      return;
    }
    if (!this.paused) this.socket.resume();
  }

  private onPacket(p: mqtt.Packet): void {
    const core = this.ctx.core;
    this.lastSeen = core.clock.monotonic();
    const s = this.session;
    switch (p.cmd) {
      case "connect": {
        const pending = handleConnect(this, p);
        if (pending === undefined) {
          this.connectDecided();
          return;
        }
        // The password is being checked off the event loop: read nothing more until it is decided,
        // so nothing behind a refused CONNECT is ever handled (MQTT-3.1.4-5, checklist C13).
        this.paused = true;
        this.socket.pause();
        pending.then(
          () => {
            this.connectDecided();
            this.resumeReading();
          },
          (err: unknown) => {
            core.log.warn("error deciding a CONNECT; closing that client", { remote: this.remote, error: err });
            this.fail(RC.UNSPECIFIED, "internal error");
          },
        );
        return;
      }
      case "publish":
        handlePublish(this, p);
        return;
      case "puback":
        if (s && complete(s, p.messageId!, "puback")) core.pumpSession(s);
        return;
      case "pubrec": {
        if (!s) return;
        const r = received(s, p.messageId!, (p.reasonCode ?? 0) >= 0x80);
        // PUBREL only once "PUBREC received" is stored: after a crash we must resend PUBREL, not the PUBLISH.
        if (r === "pubrel") core.afterCommit(() => this.sendPubrel(p.messageId!));
        else if (r === "done") core.pumpSession(s);
        else if (this.protocolVersion === 5) this.send({ cmd: "pubrel", messageId: p.messageId!, reasonCode: RC.PACKET_ID_NOT_FOUND });
        else this.sendPubrel(p.messageId!);
        return;
      }
      case "pubrel": {
        const known = s?.inboundQos2.delete(p.messageId!) ?? false;
        if (known) core.store?.inboundQos2(s!, p.messageId!, false);
        // Always answered (MQTT-4.3.3-11); v5 says when the id was unknown (F4).
        // PUBCOMP once the id's release is stored: a forgotten release would swallow the id's next use.
        const id = p.messageId!;
        if (this.protocolVersion === 5 && !known) core.afterCommit(() => this.send({ cmd: "pubcomp", messageId: id, reasonCode: RC.PACKET_ID_NOT_FOUND }));
        else core.afterCommit(() => this.sendBuffer(ack(PUBCOMP, id)));
        return;
      }
      case "pubcomp":
        if (s && complete(s, p.messageId!, "pubcomp")) core.pumpSession(s);
        return;
      case "subscribe":
        handleSubscribe(this, p, this.ctx.failures);
        return;
      case "unsubscribe":
        handleUnsubscribe(this, p, this.ctx.failures);
        return;
      case "pingreq":
        this.sendBuffer(PINGRESP);
        return;
      case "disconnect": {
        const props = p.properties as { sessionExpiryInterval?: number } | undefined;
        if (this.protocolVersion === 5 && s && props?.sessionExpiryInterval !== undefined) {
          // MQTT-3.14.2-2: a session that was to end with the connection cannot be extended here.
          if (s.expiryMs === 0 && props.sessionExpiryInterval !== 0) {
            this.fail(RC.PROTOCOL_ERROR, "Session Expiry Interval was 0 at CONNECT");
            return;
          }
          const seconds = Math.min(props.sessionExpiryInterval, core.limits.maxSessionExpiry);
          s.expiryMs = seconds === 0xffffffff ? Number.POSITIVE_INFINITY : seconds * 1000;
        }
        this.willOnClose = this.protocolVersion === 5 && p.reasonCode === RC.DISCONNECT_WITH_WILL;
        this.close();
        return;
      }
      case "auth":
        this.fail(RC.PROTOCOL_ERROR, "enhanced authentication was not negotiated");
        return;
      default:
        this.fail(RC.PROTOCOL_ERROR, `unexpected ${p.cmd} from a client`);
    }
  }

  private connectDecided(): void {
    if (this.state !== "connected") return;
    this.framer.setProtocol(this.protocolVersion);
    this.framer.setConnected();
  }

  /** The fast acks handlers use: PUBACK / PUBREC with success and no properties. */
  ackPublish(qos: 1 | 2, id: number): void {
    this.sendBuffer(ack(qos === 1 ? PUBACK : PUBREC, id));
  }
}

// Shared socket listeners: `this` is the socket; the connection hangs off it.
function connOf(s: unknown): Connection {
  return (s as Record<symbol, Connection>)[CONN]!;
}
function onData(this: Socketish, chunk: Buffer): void {
  const c = connOf(this);
  try {
    c.onData(chunk);
  } catch (err) {
    c.core.log.warn("error handling a packet; closing that client", { client: c.clientId || c.remote, error: err });
    c.fail(RC.UNSPECIFIED, "internal error");
    this.destroy();
  }
}
function onError(this: Socketish, err: Error): void {
  const c = connOf(this);
  c.core.log.debug("socket error", { client: c.clientId || c.remote, error: err.message });
}
function onClose(this: Socketish): void {
  connOf(this).finish();
}
function onDrain(this: Socketish): void {
  const c = connOf(this);
  c.blockedSince = 0;
  if (c.session && c.state === "connected") c.core.pumpSession(c.session);
}
function resumeLater(c: Connection): void {
  c.continueReading();
}
/**
 * Runs once per event-loop turn, in the check phase right after every readable socket of this turn
 * was handled: each connection written to in this turn gets one writev with all its packets. Under
 * load that is a few large writes instead of one syscall per publisher read; idle, it adds no delay.
 */
function flushCorked(ctx: ConnectionContext): void {
  const list = ctx.corked;
  ctx.corked = [];
  for (const c of list) {
    (c as unknown as { corked: boolean }).corked = false;
    c.socket.uncork();
  }
}

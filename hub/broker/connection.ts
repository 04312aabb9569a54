// One network connection: bytes in through the framing gate and the parser, packets dispatched to
// the broker core, packets out in one batched write per event-loop turn (cork/uncork; Nagle off).
// Every throw around parse and dispatch is caught: one bad client never harms another.
//
// Memory: a home broker holds thousands of mostly idle connections, so per-connection state is one
// object of a class (methods on the prototype, not closures), socket listeners are shared functions,
// the parser and rule tables are shared by the whole broker (parsing is synchronous, one packet at a
// time), and topic-alias maps are created only when a client uses aliases.
// The pieces live next to it: connection-context.ts (listener, socket and shared context types),
// connection-output.ts (acks, high-water mark, the cork flush), connection-events.ts (the shared
// socket listeners) and connection-dispatch.ts (one packet to its handler).
import type mqtt from "mqtt-packet";
import { generatePacket } from "./mqtt-generate.js";
import { handleConnect } from "./connect.js";
import { type ConnectionContext, DEFAULT_LISTENER, type ListenerInfo, type Socketish } from "./connection-context.js";
import { onPacket } from "./connection-dispatch.js";
import { CONN, onClose, onData, onDrain, onError, resumeLater } from "./connection-events.js";
import { ack, flushCorked, HIGH_WATER, PUBACK, PUBREC, PUBREL } from "./connection-output.js";
import type { BrokerCore } from "./core.js";
import { createFramer, type Framer, fixedHeaderLength, isFrameError } from "./framing.js";
import { checkConnectRaw, checkPacket, type Verdict } from "./packet-rules.js";
import { isParseFault } from "./parse.js";
import { encodePublish } from "./publish-encode.js";
import { RC, v5ToV3Connack } from "./reason-codes.js";
import type { Delivery, Link, Session } from "./session.js";
import { checkWireStrings } from "./wire-strings.js";

// Other modules and tests import these from here.
export { type ConnectionContext, connectionContext, DEFAULT_LISTENER, type ListenerInfo, type Socketish } from "./connection-context.js";

/** The protocol level byte of a framed CONNECT (3, 4 or 5; anything else counts as 4 for replies). */
function connectLevel(f: Buffer): 3 | 4 | 5 {
  const h = fixedHeaderLength(f);
  if (h < 0 || h + 4 > f.length) return 4;
  const level = f[h + 2 + f.readUInt16BE(h)];
  return level === 3 || level === 5 ? level : 4;
}

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
      onPacket(this, p);
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

  /** A CONNECT (dispatched from connection-dispatch.ts): decided now, or reading waits for the decision. */
  onConnect(p: mqtt.IConnectPacket): void {
    const core = this.ctx.core;
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

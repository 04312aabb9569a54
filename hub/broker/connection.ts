// One network connection: bytes in through the framing gate and the parser, packets dispatched to
// the broker core, packets out in one batched write per event-loop turn (cork/uncork; Nagle off).
// Every throw around parse and dispatch is caught: one bad client never harms another.
import mqtt from "mqtt-packet";
import type { Duplex } from "node:stream";
import type { BrokerCore } from "./core.js";
import { createFramer, type FrameError, type Framer, fixedHeaderLength, isFrameError } from "./framing.js";
import { handleConnect } from "./connect.js";
import { createPacketParser, isParseFault } from "./parse.js";
import { checkWireStrings } from "./wire-strings.js";
import { checkConnectRaw, checkPacket, type TopicRules, type Verdict } from "./packet-rules.js";
import { validTopicFilter, validTopicName } from "./topics.js";
import { handlePublish, handleSubscribe, handleUnsubscribe } from "./inbound.js";
import { encodePublish } from "./publish-encode.js";
import { RC, v5ToV3Connack } from "./reason-codes.js";
import { complete, type Delivery, type Link, pump, received, type Session } from "./session.js";

export interface Socketish extends Duplex {
  remoteAddress?: string;
  remotePort?: number;
  setNoDelay?(noDelay?: boolean): unknown;
  writableLength: number;
}

export interface Connection extends Link {
  readonly core: BrokerCore;
  readonly socket: Socketish;
  readonly id: number;
  readonly remote: string;
  state: "connecting" | "connected" | "closed";
  protocolVersion: 3 | 4 | 5;
  session: Session | undefined;
  clientId: string;
  keepaliveMs: number;
  lastSeen: number;
  openedAt: number;
  blockedSince: number;
  receiveMaximum: number;
  maxPacketSizeOut: number;
  aliasIn: Map<number, string>;
  aliasOut: Map<string, number>;
  aliasOutMax: number;
  /** Set by a DISCONNECT: whether the will must still be published (v5 reason 0x04). */
  willOnClose: boolean;
  send(packet: mqtt.Packet): void;
  sendBuffer(buf: Buffer): void;
  /** Closes with a reason: v5 gets DISCONNECT (or CONNACK before CONNECT is accepted) first. */
  fail(reason: number, message: string): void;
  /** Closes the socket now (after flushing what was written). */
  close(): void;
  /** Checks keep-alive, connect timeout and drain timeout; called by the broker's sweep. */
  sweep(now: number): void;
}

/** Output above this many buffered bytes marks the link blocked; QoS>0 waits in the session queue. */
const HIGH_WATER = 1 << 20;

let nextConnId = 1;

/** The protocol level byte of a framed CONNECT (3, 4 or 5; anything else counts as 4 for replies). */
function connectLevel(f: Buffer): 3 | 4 | 5 {
  const h = fixedHeaderLength(f);
  if (h < 0 || h + 2 > f.length) return 4;
  const level = f[h + 2 + f.readUInt16BE(h)];
  return level === 3 || level === 5 ? level : 4;
}

export function createConnection(core: BrokerCore, socket: Socketish, onClosed: (c: Connection) => void): Connection {
  const { clock, log, stats } = core;
  const framer: Framer = createFramer({ maxPacketSize: core.limits.maxPacketSize });
  const parser = createPacketParser();
  const topicLimits = { maxLength: core.limits.maxTopicLength, maxLevels: core.limits.maxTopicLevels };
  const rules: TopicRules = {
    validName: (t) => validTopicName(t, topicLimits),
    validFilter: (f) => validTopicFilter(f, topicLimits),
  };
  const ruleLimits = { maxClientIdLength: core.limits.maxClientIdLength, topicAliasMaximum: core.limits.topicAliasMaximum };
  /** Per-filter SUBACK/UNSUBACK failure codes from checkPacket (0 = valid). */
  const failures: number[] = [];
  let corked = false;
  let connectSeen = false;
  const uncork = () => {
    corked = false;
    socket.uncork();
  };

  const c: Connection = {
    core,
    socket,
    id: nextConnId++,
    remote: `${socket.remoteAddress ?? "local"}:${socket.remotePort ?? 0}`,
    state: "connecting",
    protocolVersion: 4,
    session: undefined,
    clientId: "",
    keepaliveMs: 0,
    lastSeen: clock.monotonic(),
    openedAt: clock.monotonic(),
    blockedSince: 0,
    receiveMaximum: 65535,
    maxPacketSizeOut: Number.POSITIVE_INFINITY,
    aliasIn: new Map(),
    aliasOut: new Map(),
    aliasOutMax: 0,
    willOnClose: true,
    blocked() {
      if (socket.writableLength <= HIGH_WATER) return false;
      if (c.blockedSince === 0) c.blockedSince = clock.monotonic();
      return true;
    },
    sendBuffer(buf) {
      if (c.state === "closed") return;
      if (!corked) {
        corked = true;
        socket.cork();
        process.nextTick(uncork);
      }
      stats.bytesSent += buf.length;
      socket.write(buf);
    },
    send(packet) {
      c.sendBuffer(mqtt.generate(packet, { protocolVersion: c.protocolVersion }));
    },
    sendPublish(d: Delivery, id: number, dup: boolean) {
      const now = clock.monotonic();
      let topicAlias: number | undefined;
      let aliasOnly = false;
      if (c.aliasOutMax > 0) {
        // Outbound aliases (MQTT-3.3.2-?? §3.3.2.3.4): first use sends topic+alias, later ones the alias only.
        const known = c.aliasOut.get(d.msg.topic);
        if (known !== undefined) {
          topicAlias = known;
          aliasOnly = true;
        } else if (c.aliasOut.size < c.aliasOutMax) {
          topicAlias = c.aliasOut.size + 1;
          c.aliasOut.set(d.msg.topic, topicAlias);
        }
      }
      const buf = encodePublish(d.msg, {
        qos: d.qos,
        retain: d.retain,
        dup,
        messageId: id,
        protocolVersion: c.protocolVersion,
        subscriptionIds: d.subscriptionIds,
        topicAlias,
        aliasOnly,
        now,
      });
      if (buf.length > c.maxPacketSizeOut) {
        if (topicAlias !== undefined && !aliasOnly) c.aliasOut.delete(d.msg.topic);
        log.debug("message larger than the client's Maximum Packet Size; discarded", { client: c.clientId });
        return false;
      }
      stats.messagesSent++;
      c.sendBuffer(buf);
      return true;
    },
    sendPubrel(id) {
      c.send({ cmd: "pubrel", messageId: id });
    },
    fail(reason, message) {
      if (c.state === "closed") return;
      log.debug("closing connection", { client: c.clientId || c.remote, reason: `0x${reason.toString(16)}`, why: message });
      if (c.protocolVersion === 5) {
        if (c.state === "connecting") {
          c.send({ cmd: "connack", sessionPresent: false, reasonCode: reason, properties: { reasonString: message } });
        } else {
          c.send({ cmd: "disconnect", reasonCode: reason, properties: { reasonString: message } });
        }
      } else if (c.state === "connecting" && connectSeen) {
        // 3.1.1 answers a refused CONNECT with a return code where one exists (MQTT-3.2.2-4/5).
        const rc = v5ToV3Connack(reason);
        if (rc !== undefined) c.send({ cmd: "connack", sessionPresent: false, returnCode: rc });
      }
      c.close();
    },
    close() {
      if (c.state === "closed") return;
      finish();
      socket.end();
      // A peer that never reads must not keep the socket: destroy soon after end().
      const t = clock.after(2_000, () => socket.destroy());
      socket.once("close", t);
    },
    sweep(now) {
      if (c.state === "connecting") {
        if (now - c.openedAt > core.limits.connectTimeoutMs) {
          log.debug("no CONNECT in time; closing", { remote: c.remote });
          socket.destroy();
          finish();
        }
        return;
      }
      if (c.state !== "connected") return;
      // Keep-alive: 1.5 × the interval without any packet (MQTT-3.1.2-24 / MQTT-3.1.2-22).
      if (c.keepaliveMs > 0 && now - c.lastSeen > c.keepaliveMs * 1.5) {
        c.fail(RC.KEEP_ALIVE_TIMEOUT, "keep alive timeout");
        return;
      }
      if (c.blockedSince !== 0) {
        if (socket.writableLength <= HIGH_WATER) c.blockedSince = 0;
        else if (now - c.blockedSince > core.limits.drainTimeoutMs) {
          log.warn("client is not reading; disconnecting slow consumer", { client: c.clientId });
          socket.destroy();
          finish();
        }
      }
    },
  };

  let finished = false;
  function finish() {
    if (finished) return;
    finished = true;
    const wasConnected = c.state === "connected";
    c.state = "closed";
    const s = c.session;
    if (wasConnected && s && s.link === c) core.connectionClosed(s, c.willOnClose);
    onClosed(c);
  }

  const onPacket = (p: mqtt.Packet, _raw: Buffer) => {
    c.lastSeen = clock.monotonic();
    switch (p.cmd) {
      case "connect":
        handleConnect(c, p);
        if (c.state === "connected") {
          framer.setProtocol(c.protocolVersion);
          framer.setConnected();
        }
        return;
      case "publish":
        handlePublish(c, p);
        return;
      case "puback":
        if (c.session && complete(c.session, p.messageId!, "puback")) pump(c.session, clock.monotonic());
        return;
      case "pubrec": {
        if (!c.session) return;
        const r = received(c.session, p.messageId!, (p.reasonCode ?? 0) >= 0x80);
        if (r === "pubrel") c.sendPubrel(p.messageId!);
        else if (r === "done") pump(c.session, clock.monotonic());
        else if (c.protocolVersion === 5) c.send({ cmd: "pubrel", messageId: p.messageId!, reasonCode: RC.PACKET_ID_NOT_FOUND });
        else c.sendPubrel(p.messageId!);
        return;
      }
      case "pubrel": {
        const known = c.session?.inboundQos2.delete(p.messageId!) ?? false;
        // MQTT-4.3.3-11: always answer; v5 says when the id was unknown (F4).
        if (c.protocolVersion === 5 && !known) c.send({ cmd: "pubcomp", messageId: p.messageId!, reasonCode: RC.PACKET_ID_NOT_FOUND });
        else c.send({ cmd: "pubcomp", messageId: p.messageId! });
        return;
      }
      case "pubcomp":
        if (c.session && complete(c.session, p.messageId!, "pubcomp")) pump(c.session, clock.monotonic());
        return;
      case "subscribe":
        handleSubscribe(c, p, failures);
        return;
      case "unsubscribe":
        handleUnsubscribe(c, p, failures);
        return;
      case "pingreq":
        c.send({ cmd: "pingresp" });
        return;
      case "disconnect": {
        const props = p.properties as { sessionExpiryInterval?: number } | undefined;
        if (c.protocolVersion === 5 && c.session && props?.sessionExpiryInterval !== undefined) {
          // MQTT-3.14.2-2: a session that was to end with the connection cannot be extended here.
          if (c.session.expiryMs === 0 && props.sessionExpiryInterval !== 0) {
            c.fail(RC.PROTOCOL_ERROR, "Session Expiry Interval was 0 at CONNECT");
            return;
          }
          c.session.expiryMs = Math.min(props.sessionExpiryInterval, core.limits.maxSessionExpiry) * 1000;
        }
        // Normal disconnect discards the will; 0x04 asks for it (MQTT-3.14.4-3).
        c.willOnClose = c.protocolVersion === 5 && p.reasonCode === RC.DISCONNECT_WITH_WILL;
        c.close();
        return;
      }
      case "auth":
        c.fail(RC.PROTOCOL_ERROR, "enhanced authentication was not negotiated");
        return;
      default:
        c.fail(RC.PROTOCOL_ERROR, `unexpected ${p.cmd} from a client`);
    }
  };

  const onFrameError = (e: FrameError) => {
    c.fail(e.reason, e.message);
  };
  const applyVerdict = (v: Exclude<Verdict, { ok: true }>) => {
    if (v.action === "close") {
      log.debug("closing connection", { client: c.clientId || c.remote, reason: `0x${v.reason.toString(16)}`, why: v.message });
      c.close();
    } else c.fail(v.reason, v.message);
  };

  socket.on("data", (chunk: Buffer) => {
    stats.bytesReceived += chunk.length;
    try {
      framer.push(chunk);
      // Every complete packet of this read is handled now, acks as fairly as publishes.
      while (c.state !== "closed") {
        const f = framer.next();
        if (f === undefined) break;
        if (isFrameError(f)) {
          onFrameError(f);
          break;
        }
        // Strings are checked on the raw bytes: the codec would hide bad UTF-8 behind U+FFFD (MQTT-1.5.4-1).
        if (c.state === "connecting") {
          connectSeen = true;
          // Answer in the client's own protocol level from here on (v5 CONNACK with a reason code).
          c.protocolVersion = connectLevel(f);
          const v = checkConnectRaw(f);
          if (!v.ok) {
            applyVerdict(v);
            break;
          }
        }
        const bad = checkWireStrings(f, c.protocolVersion, core.limits.maxUserProperties);
        if (bad) {
          c.fail(bad.reason, bad.message);
          break;
        }
        const p = parser.parse(f, c.protocolVersion);
        if (isParseFault(p)) {
          c.fail(p.reason, p.message);
          break;
        }
        if (p.cmd === "connect") c.protocolVersion = p.protocolVersion === 3 || p.protocolVersion === 5 ? p.protocolVersion : 4;
        const v = checkPacket(p, c.protocolVersion, rules, ruleLimits, failures);
        if (!v.ok) {
          applyVerdict(v);
          break;
        }
        onPacket(p, f);
      }
    } catch (err) {
      log.warn("error handling a packet; closing that client", { client: c.clientId || c.remote, error: err });
      c.fail(RC.UNSPECIFIED, "internal error");
      socket.destroy();
    }
  });
  socket.on("error", (err: Error) => {
    log.debug("socket error", { client: c.clientId || c.remote, error: err.message });
  });
  socket.on("close", () => finish());
  socket.on("drain", () => {
    c.blockedSince = 0;
    if (c.session && c.state === "connected") pump(c.session, clock.monotonic());
  });
  socket.setNoDelay?.(true);
  return c;
}

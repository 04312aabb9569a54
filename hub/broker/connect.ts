// CONNECT: protocol level, client id rules, keep-alive, session open/resume/takeover, the will,
// and the CONNACK with the limits this server imposes (v5 properties).
import { createRequire } from "node:module";
import type mqtt from "mqtt-packet";
import type { PublishProperties, QoS } from "../contracts.js";
import { debugEnabled } from "../log.js";
import { decideWithoutPasswords } from "./auth/without-passwords.js";
import { recheckSession } from "./auth/recheck.js";
import type { AuthRequest, AuthResult } from "./auth/types.js";
import { type ConnackProps, encodeConnack } from "./ack-encode.js";
import type { Connection } from "./connection.js";
import type { RoutedMessage } from "./publish-encode.js";
import { RC } from "./reason-codes.js";
import { validTopicName } from "./topics.js";

// node:crypto is loaded by the first assigned id, not at start: loading it initialises OpenSSL,
// ~1 MB of RSS an idle broker without TLS or passwords never needs. Unguessable ids, so that no
// other client can take over a session by guessing its id.
let crypto: typeof import("node:crypto") | undefined;

function assignedId(taken: Map<string, unknown>): string {
  crypto ??= createRequire(import.meta.url)("node:crypto") as typeof import("node:crypto");
  for (;;) {
    const id = `auto-${crypto.randomBytes(9).toString("base64url")}`;
    if (!taken.has(id)) return id;
  }
}

/** Message properties a PUBLISH or will carries end to end (the v5 wire names map 1:1). */
export function messageProperties(p: mqtt.IPublishPacket["properties"] | undefined): PublishProperties | undefined {
  if (!p) return undefined;
  const out: PublishProperties = {};
  if (p.payloadFormatIndicator !== undefined) out.payloadFormatIndicator = p.payloadFormatIndicator;
  if (p.contentType !== undefined) out.contentType = p.contentType;
  if (p.responseTopic !== undefined) out.responseTopic = p.responseTopic;
  if (p.correlationData !== undefined) out.correlationData = p.correlationData;
  if (p.userProperties !== undefined) out.userProperties = p.userProperties;
  for (const _ in out) return out;
  return undefined;
}

/** What CONNECT asked for, checked; applied once the client is authenticated. */
interface Accepted {
  clientId: string;
  assigned: string | undefined;
  keepalive: number;
  serverKeepAlive: number | undefined;
  will: RoutedMessage | undefined;
  willDelayMs: number;
  willExpiry: number | undefined;
}

/**
 * Handles CONNECT. Returns a promise while the password is being checked (hashing runs off the event
 * loop): the connection reads nothing more until it settles (MQTT-3.1.4-5, checklist C13).
 */
export function handleConnect(c: Connection, p: mqtt.IConnectPacket): void | Promise<void> {
  const { core } = c;
  const { limits } = core;
  const v = p.protocolVersion;
  c.protocolVersion = v === 3 || v === 5 ? v : 4;
  const v5 = c.protocolVersion === 5;
  const props = p.properties ?? {};

  if (v5 && props.authenticationMethod) {
    c.fail(RC.BAD_AUTHENTICATION_METHOD, "enhanced authentication is not supported");
    return;
  }

  // Client identifier (MQTT-3.1.3-6/7/8): empty + clean → we assign one; empty without clean → refuse.
  let clientId = p.clientId ?? "";
  let assigned: string | undefined;
  if (clientId === "") {
    if (!p.clean) {
      c.fail(RC.CLIENT_IDENTIFIER_NOT_VALID, "an empty client id needs clean session / clean start");
      return;
    }
    clientId = assigned = assignedId(core.sessions);
  } else if (Buffer.byteLength(clientId) > limits.maxClientIdLength || /[+#/]/.test(clientId)) {
    // C6: ids with wildcards or '/' would widen %c ACL patterns (CVE-2017-7650).
    c.fail(RC.CLIENT_IDENTIFIER_NOT_VALID, "client id too long or contains + # /");
    return;
  }
  // H5: a client id that reconnects too often is refused for a while (0x8A, as EMQX), before any
  // password hashing and before it could take over the session of a connected twin. Logged once per
  // ban (auth/flapping.ts), not per attempt. Assigned ids are new every time: nothing to count.
  if (core.flapping !== undefined && assigned === undefined) {
    const left = core.flapping.bannedFor(clientId);
    if (left > 0) {
      refuseFlapping(c, left);
      return;
    }
  }

  // Keep-alive: v5 may be told a smaller value (Server Keep Alive, MQTT-3.2.2-21); v3 is refused.
  let keepalive = p.keepalive ?? 0;
  let serverKeepAlive: number | undefined;
  if (keepalive > limits.maxKeepalive || (keepalive === 0 && limits.maxKeepalive < 65535)) {
    if (!v5) {
      c.fail(RC.CLIENT_IDENTIFIER_NOT_VALID, `keep alive must be 1..${limits.maxKeepalive} s`);
      return;
    }
    keepalive = serverKeepAlive = limits.maxKeepalive;
  }

  // The will is checked before anything changes (a rejected CONNECT leaves the session untouched: C9).
  let will: RoutedMessage | undefined;
  let willDelayMs = 0;
  let willExpiry: number | undefined;
  if (p.will) {
    const w = p.will;
    if (!validTopicName(w.topic, { maxLength: limits.maxTopicLength, maxLevels: limits.maxTopicLevels })) {
      c.fail(RC.TOPIC_NAME_INVALID, "invalid will topic");
      return;
    }
    if (w.topic.startsWith("$SYS") || w.topic.startsWith("$CONTROL")) {
      c.fail(RC.NOT_AUTHORIZED, "a will may not publish to $ topics");
      return;
    }
    const wp = w.properties as (mqtt.IPublishPacket["properties"] & { willDelayInterval?: number }) | undefined;
    will = {
      topic: w.topic,
      payload: Buffer.isBuffer(w.payload) ? w.payload : Buffer.from(w.payload ?? ""),
      qos: (w.qos ?? 0) as QoS,
      retain: !!w.retain,
      properties: messageProperties(wp),
    };
    willDelayMs = (wp?.willDelayInterval ?? 0) * 1000;
    willExpiry = wp?.messageExpiryInterval;
  }

  const a: Accepted = { clientId, assigned, keepalive, serverKeepAlive, will, willDelayMs, willExpiry };
  const auth = core.auth;
  const l = c.listener;
  // No authentication configured and an anonymous listener: decided now, as before auth existed.
  if (auth === undefined && l.allowAnonymous && !l.identityAsUsername) {
    accept(c, p, a, undefined);
    return;
  }
  const req: AuthRequest = {
    clientId,
    username: p.username,
    password: p.password,
    address: c.socket.remoteAddress ?? "local",
    listener: l,
    certName: c.socket.peerCommonName,
  };
  const r = auth === undefined ? decideWithoutPasswords(req, false)! : auth.authenticate(req);
  if (r instanceof Promise) return r.then((res) => decided(c, p, a, res));
  decided(c, p, a, r);
}

function decided(c: Connection, p: mqtt.IConnectPacket, a: Accepted, res: AuthResult): void {
  if (c.state !== "connecting") return; // the socket closed while the password was checked
  const { core } = c;
  if (!res.ok) {
    core.log.info("connection refused", { client: a.clientId, remote: c.remote, why: res.why });
    c.fail(res.reason, res.why);
    return;
  }
  const username = res.username;
  const acl = core.auth?.acl;
  // A forbidden will is refused at CONNECT, like mosquitto (G6); it is checked again when published.
  if (a.will !== undefined && acl !== undefined && !acl.canPublish({ clientId: a.clientId, username }, a.will.topic)) {
    c.fail(RC.NOT_AUTHORIZED, "not authorized to publish the will");
    return;
  }
  // A client id whose session belongs to a user is that user's (C10): nobody else takes it over or
  // resumes it until the session ends. Refused before anything changes (C9).
  const owner = core.sessions.get(a.clientId)?.username;
  if (owner !== undefined && owner !== username) {
    core.log.info("connection refused: client id belongs to another user", { client: a.clientId, remote: c.remote });
    c.fail(RC.NOT_AUTHORIZED, "this client id belongs to another user");
    return;
  }
  accept(c, p, a, username);
}

function refuseFlapping(c: Connection, leftMs: number): void {
  c.fail(RC.BANNED, `this client id reconnects too often; try again in ${Math.ceil(leftMs / 1000)} s`);
}

function accept(c: Connection, p: mqtt.IConnectPacket, a: Accepted, username: string | undefined): void {
  const { core } = c;
  const { limits } = core;
  const v5 = c.protocolVersion === 5;
  const props = p.properties ?? {};
  const { clientId, assigned, keepalive, serverKeepAlive, will, willDelayMs, willExpiry } = a;
  // H5: only connections that would be accepted count towards a flapping ban (see auth/flapping.ts);
  // the one that starts the ban is refused, before it takes anything over.
  if (core.flapping !== undefined && assigned === undefined) {
    const left = core.flapping.connected(clientId);
    if (left > 0) {
      refuseFlapping(c, left);
      return;
    }
  }
  // Session takeover (MQTT-3.1.4-2/3): the old connection is closed first, its will handled as on any
  // abnormal close.
  const existing = core.sessions.get(clientId);
  if (existing?.link) {
    const old = existing.link as Connection;
    old.fail(RC.SESSION_TAKEN_OVER, "another connection uses this client id");
  }
  const { session, present } = core.openSession(clientId, !!p.clean);

  if (v5) {
    const seconds = Math.min(props.sessionExpiryInterval ?? 0, limits.maxSessionExpiry);
    // 0xFFFFFFFF means the session does not expire (MQTT 5 §3.1.2.11.2).
    session.expiryMs = seconds === 0xffffffff ? Number.POSITIVE_INFINITY : seconds * 1000;
  }
  else session.expiryMs = p.clean ? 0 : limits.maxSessionExpiry * 1000;
  if (will) session.will = { msg: will, delayMs: willDelayMs, expirySeconds: willExpiry };
  session.username = username;

  c.clientId = clientId;
  c.username = username;
  c.session = session;
  c.keepaliveMs = keepalive * 1000;
  c.receiveMaximum = Math.min(props.receiveMaximum ?? 65535, limits.maxInflightOutbound);
  c.maxPacketSizeOut = props.maximumPacketSize ?? Number.POSITIVE_INFINITY;
  c.aliasOutMax = Math.min(props.topicAliasMaximum ?? 0, 65535);
  c.state = "connected";
  session.link = c;
  core.store?.sessionSaved(session); // persistent sessions (expiry > 0) are written; clean ones never
  core.stats.clientsConnected++;
  core.stats.clientsTotal++;

  if (v5) {
    const ack: ConnackProps = {
      receiveMaximum: limits.receiveMaximum,
      maximumPacketSize: limits.maxPacketSize,
      topicAliasMaximum: limits.topicAliasMaximum,
    };
    if (assigned) ack.assignedClientIdentifier = assigned;
    if (serverKeepAlive !== undefined) ack.serverKeepAlive = serverKeepAlive;
    if ((props.sessionExpiryInterval ?? 0) > limits.maxSessionExpiry) ack.sessionExpiryInterval = limits.maxSessionExpiry;
    c.sendBuffer(encodeConnack(5, present, 0, ack));
  } else {
    c.sendBuffer(encodeConnack(c.protocolVersion, present, 0));
  }
  // Only when debug lines are written: `remote` costs a getpeername(2), and an object literal with a
  // getter a slow runtime call, per connection (issue 3, handshakes/s).
  if (debugEnabled(core.log)) core.log.debug("client connected", { client: clientId, remote: c.remote, v: c.protocolVersion, present });
  if (present) {
    // G4: subscriptions kept from before, and messages queued under them, only as the ACL allows now.
    if (core.auth?.acl !== undefined) recheckSession(core, session);
    core.resume(session);
  }
}

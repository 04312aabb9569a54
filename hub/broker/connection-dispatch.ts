// Packet dispatch: one parsed, checked packet from a client goes to its handler (CONNECT back to the
// connection, PUBLISH/SUBSCRIBE/UNSUBSCRIBE to inbound.ts, acknowledgements to the session).
import type mqtt from "mqtt-packet";
import type { Connection } from "./connection.js";
import { ack, PINGRESP, PUBCOMP } from "./connection-output.js";
import { handlePublish, handleSubscribe, handleUnsubscribe } from "./inbound.js";
import { RC } from "./reason-codes.js";
import { complete, received } from "./session.js";

/** One packet that passed framing, parsing and the rules (Connection.onData); any packet counts for keep-alive. */
export function onPacket(c: Connection, p: mqtt.Packet): void {
  const core = c.ctx.core;
  c.lastSeen = core.clock.monotonic();
  const s = c.session;
  switch (p.cmd) {
    case "connect":
      c.onConnect(p);
      return;
    case "publish":
      handlePublish(c, p);
      return;
    case "puback":
      if (s && complete(s, p.messageId!, "puback")) core.pumpSession(s);
      return;
    case "pubrec": {
      if (!s) return;
      const r = received(s, p.messageId!, (p.reasonCode ?? 0) >= 0x80);
      // PUBREL only once "PUBREC received" is stored: after a crash we must resend PUBREL, not the PUBLISH.
      if (r === "pubrel") core.afterCommit(() => c.sendPubrel(p.messageId!));
      else if (r === "done") core.pumpSession(s);
      else if (c.protocolVersion === 5) c.send({ cmd: "pubrel", messageId: p.messageId!, reasonCode: RC.PACKET_ID_NOT_FOUND });
      else c.sendPubrel(p.messageId!);
      return;
    }
    case "pubrel": {
      const known = s?.inboundQos2.delete(p.messageId!) ?? false;
      if (known) core.store?.inboundQos2(s!, p.messageId!, false);
      // Always answered (MQTT-4.3.3-11); v5 says when the id was unknown (F4).
      // PUBCOMP once the id's release is stored: a forgotten release would swallow the id's next use.
      const id = p.messageId!;
      if (c.protocolVersion === 5 && !known) core.afterCommit(() => c.send({ cmd: "pubcomp", messageId: id, reasonCode: RC.PACKET_ID_NOT_FOUND }));
      else core.afterCommit(() => c.sendBuffer(ack(PUBCOMP, id)));
      return;
    }
    case "pubcomp":
      if (s && complete(s, p.messageId!, "pubcomp")) core.pumpSession(s);
      return;
    case "subscribe":
      handleSubscribe(c, p, c.ctx.failures);
      return;
    case "unsubscribe":
      handleUnsubscribe(c, p, c.ctx.failures);
      return;
    case "pingreq":
      c.sendBuffer(PINGRESP);
      return;
    case "disconnect": {
      const props = p.properties as { sessionExpiryInterval?: number } | undefined;
      if (c.protocolVersion === 5 && s && props?.sessionExpiryInterval !== undefined) {
        // MQTT-3.14.2-2: a session that was to end with the connection cannot be extended here.
        if (s.expiryMs === 0 && props.sessionExpiryInterval !== 0) {
          c.fail(RC.PROTOCOL_ERROR, "Session Expiry Interval was 0 at CONNECT");
          return;
        }
        const seconds = Math.min(props.sessionExpiryInterval, core.limits.maxSessionExpiry);
        s.expiryMs = seconds === 0xffffffff ? Number.POSITIVE_INFINITY : seconds * 1000;
      }
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
}

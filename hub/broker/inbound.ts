// PUBLISH, SUBSCRIBE and UNSUBSCRIBE from a client: semantic checks the codec does not make,
// topic aliases, QoS 1/2 acknowledgement and exactly-once for QoS 2 (MQTT-4.3.3).
import type mqtt from "mqtt-packet";
import type { QoS } from "../contracts.js";
import { messageProperties } from "./connect.js";
import { encodeSubAck } from "./ack-encode.js";
import type { Connection } from "./connection.js";
import type { RoutedMessage } from "./publish-encode.js";
import { RC, V3_SUBACK_FAILURE } from "./reason-codes.js";
import { applyTopicAlias } from "./packet-rules.js";
import { ackWhenStored, refuseUnstored } from "./store/acks.js";
import { parseShared } from "./topics.js";

export function handlePublish(c: Connection, p: mqtt.IPublishPacket): void {
  // checkPacket (packet-rules.ts) has validated ids, topic, alias range and v5 properties.
  const { core } = c;
  const s = c.session!;
  const v5 = c.protocolVersion === 5;
  const props = p.properties;
  if (v5 && props?.topicAlias !== undefined) {
    c.aliasIn ??= new Map();
    const v = applyTopicAlias(p, c.aliasIn); // MQTT 5 §3.3.2.3.4; D4
    if (!v.ok) {
      c.fail(v.reason, v.message);
      return;
    }
  }
  const topic = p.topic;
  const qos = p.qos as QoS;
  const id = p.messageId ?? 0;

  core.stats.messagesReceived++;
  // $SYS/ and $CONTROL/ belong to the broker (D7): refused, never forwarded. Other $ topics are
  // ordinary, only hidden from leading wildcards (D8, MQTT-4.7.2-1).
  // The ACL (auth/acl.ts) decides the rest; denied is acknowledged v3-style or 0x87 in v5 (D10).
  const acl = core.auth?.acl;
  const denied =
    topic.startsWith("$SYS/") ||
    topic === "$SYS" ||
    topic.startsWith("$CONTROL/") ||
    topic === "$CONTROL" ||
    (acl !== undefined && !acl.canPublish(s, topic));
  if (qos === 2) {
    if (s.inboundQos2.has(id)) {
      // A resent QoS 2 PUBLISH before PUBREL: acknowledge again, never deliver twice (MQTT-4.3.3-10).
      ackWhenStored(c, 2, id);
      return;
    }
    if (s.inboundQos2.size >= core.limits.receiveMaximum) {
      c.fail(RC.RECEIVE_MAXIMUM_EXCEEDED, "too many QoS 2 messages in flight"); // MQTT-3.3.4-7, F1
      return;
    }
  }
  // The durable store cannot write (disk full): QoS 1/2 is refused, not routed; QoS 0 flows on.
  if (qos > 0 && core.store?.failing) {
    refuseUnstored(c, qos as 1 | 2, id);
    return;
  }
  if (!denied) {
    const msg: RoutedMessage = {
      topic,
      payload: p.payload as Buffer,
      qos,
      retain: p.retain,
      origin: s,
    };
    if (v5 && props) {
      const mp = messageProperties(props);
      if (mp) msg.properties = mp;
      if (props.messageExpiryInterval !== undefined) msg.expiresAt = core.clock.monotonic() + props.messageExpiryInterval * 1000;
    }
    core.route(msg);
  }
  if (qos === 1) {
    // Acks leave in PUBLISH order (MQTT-4.6.0-2), so a refusal waits behind held acks too.
    if (denied && v5) core.afterCommit(() => c.send({ cmd: "puback", messageId: id, reasonCode: RC.NOT_AUTHORIZED }));
    else ackWhenStored(c, 1, id);
  } else if (qos === 2) {
    if (denied && v5) {
      core.afterCommit(() => c.send({ cmd: "pubrec", messageId: id, reasonCode: RC.NOT_AUTHORIZED }));
      return;
    }
    s.inboundQos2.add(id);
    core.store?.inboundQos2(s, id, true); // committed with the message, before PUBREC
    ackWhenStored(c, 2, id);
  }
}

export function handleSubscribe(c: Connection, p: mqtt.ISubscribePacket, failures: number[]): void {
  // checkPacket has validated the packet; failures[i] is 0 or the v5 failure code of filter i.
  const { core } = c;
  const s = c.session!;
  const subId = p.properties?.subscriptionIdentifier as number | undefined;
  const acl = core.auth?.acl;
  const granted: number[] = [];
  for (let i = 0; i < p.subscriptions.length; i++) {
    const sub = p.subscriptions[i]!;
    if (failures[i]) {
      granted.push(failures[i]!); // E2/E4: never stored
      continue;
    }
    const shared = parseShared(sub.topic);
    const qos = sub.qos as QoS;
    if (acl !== undefined && !acl.canSubscribe(s, shared !== null && shared !== "invalid" ? shared.filter : sub.topic)) {
      granted.push(c.protocolVersion === 5 ? RC.NOT_AUTHORIZED : V3_SUBACK_FAILURE); // E8
      continue;
    }
    const isNew = core.tree.get(s, sub.topic) === undefined;
    if (isNew && core.tree.countFor(s) >= core.limits.maxSubscriptionsPerClient) {
      granted.push(c.protocolVersion === 5 ? RC.QUOTA_EXCEEDED : V3_SUBACK_FAILURE); // E5
      continue;
    }
    const { granted: g } = core.subscribe(
      s,
      sub.topic,
      {
        qos,
        noLocal: !!sub.nl,
        retainAsPublished: !!sub.rap,
        retainHandling: (sub.rh ?? 0) as 0 | 1 | 2,
        subscriptionId: subId,
      },
      shared !== null,
    );
    granted.push(g);
  }
  // Acknowledged once the subscriptions are stored (a persistent session's SUBACK promises them).
  const suback = encodeSubAck("suback", c.protocolVersion, p.messageId!, granted);
  core.afterCommit(() => c.sendBuffer(suback));
}

export function handleUnsubscribe(c: Connection, p: mqtt.IUnsubscribePacket, failures: number[]): void {
  const codes: number[] = [];
  for (let i = 0; i < p.unsubscriptions.length; i++) {
    if (failures[i]) codes.push(failures[i]!);
    else codes.push(c.core.tree.remove(c.session!, p.unsubscriptions[i]!) ? RC.SUCCESS : RC.NO_SUBSCRIPTION_EXISTED);
  }
  const unsuback = encodeSubAck("unsuback", c.protocolVersion, p.messageId!, codes);
  c.core.afterCommit(() => c.sendBuffer(unsuback));
}

// PUBLISH, SUBSCRIBE and UNSUBSCRIBE from a client: semantic checks the codec does not make,
// topic aliases, QoS 1/2 acknowledgement and exactly-once for QoS 2 (MQTT-4.3.3).
import type mqtt from "mqtt-packet";
import type { QoS } from "../contracts.js";
import { messageProperties } from "./connect.js";
import type { Connection } from "./connection.js";
import type { RoutedMessage } from "./publish-encode.js";
import { RC, V3_SUBACK_FAILURE } from "./reason-codes.js";
import { parseShared, validTopicFilter, validTopicName } from "./topics.js";

export function handlePublish(c: Connection, p: mqtt.IPublishPacket): void {
  const { core } = c;
  const s = c.session!;
  const v5 = c.protocolVersion === 5;
  const props = p.properties;
  let topic = p.topic;
  const qos = p.qos as QoS;
  const id = p.messageId ?? 0;

  if (qos > 0 && id === 0) return c.fail(RC.PROTOCOL_ERROR, "QoS > 0 needs a packet identifier"); // MQTT-2.3.1-1
  if (v5 && props) {
    if (props.subscriptionIdentifier !== undefined) return c.fail(RC.PROTOCOL_ERROR, "a client may not send a Subscription Identifier"); // MQTT-3.3.4-6
    if (props.responseTopic !== undefined && !validTopicName(props.responseTopic, limitsOf(c))) {
      return c.fail(RC.PROTOCOL_ERROR, "invalid Response Topic"); // MQTT-3.3.2-14
    }
    const alias = props.topicAlias;
    if (alias !== undefined) {
      // Topic aliases (§3.3.2.3.4): 0 and values above what we announced are errors (MQTT-3.3.2-8/9).
      if (alias === 0 || alias > core.limits.topicAliasMaximum) return c.fail(RC.TOPIC_ALIAS_INVALID, "topic alias out of range");
      if (topic === "") {
        const known = c.aliasIn.get(alias);
        if (known === undefined) return c.fail(RC.PROTOCOL_ERROR, "unknown topic alias");
        topic = known;
      } else c.aliasIn.set(alias, topic);
    }
  }
  if (topic === "") return c.fail(RC.TOPIC_NAME_INVALID, "empty topic"); // MQTT-4.7.3-1
  if (!validTopicName(topic, limitsOf(c))) return c.fail(RC.TOPIC_NAME_INVALID, "invalid topic name"); // MQTT-3.3.2-2, D6

  core.stats.messagesReceived++;
  // $SYS and other $ topics belong to the broker (D7): refused, never forwarded.
  const denied = topic.startsWith("$");
  if (qos === 2) {
    if (s.inboundQos2.has(id)) {
      // A resent QoS 2 PUBLISH before PUBREL: acknowledge again, never deliver twice (MQTT-4.3.3-10).
      c.send({ cmd: "pubrec", messageId: id });
      return;
    }
    if (s.inboundQos2.size >= core.limits.receiveMaximum) {
      return c.fail(RC.RECEIVE_MAXIMUM_EXCEEDED, "too many QoS 2 messages in flight"); // MQTT-3.3.4-7, F1
    }
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
    if (denied && v5) c.send({ cmd: "puback", messageId: id, reasonCode: RC.NOT_AUTHORIZED });
    else c.send({ cmd: "puback", messageId: id });
  } else if (qos === 2) {
    if (denied && v5) {
      c.send({ cmd: "pubrec", messageId: id, reasonCode: RC.NOT_AUTHORIZED });
      return;
    }
    s.inboundQos2.add(id);
    c.send({ cmd: "pubrec", messageId: id });
  }
}

function limitsOf(c: Connection) {
  return { maxLength: c.core.limits.maxTopicLength, maxLevels: c.core.limits.maxTopicLevels };
}

export function handleSubscribe(c: Connection, p: mqtt.ISubscribePacket): void {
  const { core } = c;
  const s = c.session!;
  const v5 = c.protocolVersion === 5;
  if (!p.messageId) return c.fail(RC.PROTOCOL_ERROR, "SUBSCRIBE needs a packet identifier");
  if (p.subscriptions.length === 0) return c.fail(RC.PROTOCOL_ERROR, "SUBSCRIBE without filters"); // MQTT-3.8.3-3
  const subId = p.properties?.subscriptionIdentifier as number | undefined;
  if (subId === 0) return c.fail(RC.PROTOCOL_ERROR, "Subscription Identifier 0");
  const granted: number[] = [];
  const fail = (rc: number) => granted.push(v5 ? rc : V3_SUBACK_FAILURE);
  for (const sub of p.subscriptions) {
    const shared = parseShared(sub.topic);
    if (shared === "invalid") {
      fail(RC.TOPIC_FILTER_INVALID);
      continue;
    }
    const filter = shared ? shared.filter : sub.topic;
    if (!validTopicFilter(filter, limitsOf(c))) {
      fail(RC.TOPIC_FILTER_INVALID); // E2: never stored
      continue;
    }
    if (shared && sub.nl) return c.fail(RC.PROTOCOL_ERROR, "No Local on a shared subscription"); // MQTT-3.8.3-4
    const qos = sub.qos as QoS;
    if (qos > 2 || (sub.rh ?? 0) > 2) return c.fail(RC.PROTOCOL_ERROR, "invalid subscription options");
    const isNew = !hasFilter(c, sub.topic);
    if (isNew && core.tree.countFor(s) >= core.limits.maxSubscriptionsPerClient) {
      fail(RC.QUOTA_EXCEEDED); // E5
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
      !!shared,
    );
    granted.push(g);
  }
  c.send({ cmd: "suback", messageId: p.messageId, granted });
}

function hasFilter(c: Connection, filter: string): boolean {
  for (const sub of c.core.tree.subscriptionsOf(c.session!)) if (sub.filter === filter) return true;
  return false;
}

export function handleUnsubscribe(c: Connection, p: mqtt.IUnsubscribePacket): void {
  if (!p.messageId) return c.fail(RC.PROTOCOL_ERROR, "UNSUBSCRIBE needs a packet identifier");
  if (p.unsubscriptions.length === 0) return c.fail(RC.PROTOCOL_ERROR, "UNSUBSCRIBE without filters"); // MQTT-3.10.3-2
  const codes: number[] = [];
  for (const f of p.unsubscriptions) {
    const removed = c.core.tree.remove(c.session!, f);
    codes.push(removed ? RC.SUCCESS : RC.NO_SUBSCRIPTION_EXISTED);
  }
  // v3 UNSUBACK has no payload; mqtt-packet writes `granted` as the v5 reason codes.
  c.send({ cmd: "unsuback", messageId: p.messageId, granted: c.protocolVersion === 5 ? codes : [] });
}

// The Bus for the hub's own parts when the broker is embedded: a client without a socket that goes
// through the same subscription tree and retained store as TCP clients (DESIGN.md §4).
import type { Bus, Cancel, Message } from "../contracts.js";
import { internalIdentity } from "./auth/types.js";
import type { BrokerCore } from "./core.js";
import type { RoutedMessage } from "./publish-encode.js";
import { validTopicFilter, validTopicName } from "./topics.js";

export function localBus(core: BrokerCore, name: string): Bus {
  const limits = { maxLength: core.limits.maxTopicLength, maxLevels: core.limits.maxTopicLevels };
  // Parts have identities too (user name `hub:<name>`): the ACL may restrict them (auth/acl.ts).
  const identity = internalIdentity(name);
  const origin = { kind: "local-publisher", name, identity };
  return {
    async publish(m: Message) {
      if (!validTopicName(m.topic, limits)) throw new Error(`${name}: invalid topic ${JSON.stringify(m.topic)}`);
      if (core.auth?.acl?.canPublish(identity, m.topic) === false) throw new Error(`${name}: not authorized to publish to ${JSON.stringify(m.topic)}`);
      const msg: RoutedMessage = { topic: m.topic, payload: m.payload, qos: m.qos, retain: m.retain, origin };
      if (m.properties) {
        msg.properties = m.properties;
        if (m.properties.messageExpiryInterval !== undefined) {
          msg.expiresAt = core.clock.monotonic() + m.properties.messageExpiryInterval * 1000;
        }
      }
      core.route(msg);
    },
    async subscribe(filter, onMessage, opts): Promise<Cancel> {
      if (!validTopicFilter(filter, limits)) throw new Error(`${name}: invalid topic filter ${JSON.stringify(filter)}`);
      if (core.auth?.acl?.canSubscribe(identity, filter) === false) throw new Error(`${name}: not authorized to subscribe to ${JSON.stringify(filter)}`);
      const sub = core.localSubscriber(name, onMessage);
      core.subscribe(sub, filter, { qos: opts?.qos ?? 2, noLocal: false, retainAsPublished: true, retainHandling: 0 }, false);
      return () => {
        core.tree.remove(sub, filter);
      };
    },
  };
}

// $SYS/broker/... statistics, published retained every sys_interval (mosquitto's names where they
// exist). `$` topics are never matched by a leading wildcard (MQTT-4.7.2-1), so `#` does not see them.
import type { BrokerCore } from "./core.js";

export function publishSysTopics(core: BrokerCore, version: string): void {
  const s = core.stats;
  const uptime = Math.floor((core.clock.now() - s.startedAt) / 1000);
  const values: Array<[string, string | number]> = [
    ["version", `hub ${version}`],
    ["uptime", `${uptime} seconds`],
    ["clients/connected", s.clientsConnected],
    ["clients/total", core.sessions.size],
    ["messages/received", s.messagesReceived],
    ["messages/sent", s.messagesSent],
    ["messages/dropped", s.publishDropped],
    ["bytes/received", s.bytesReceived],
    ["bytes/sent", s.bytesSent],
    ["retained messages/count", core.retained.count],
    ["subscriptions/count", core.tree.size],
  ];
  for (const [k, v] of values) {
    core.route({ topic: `$SYS/broker/${k}`, payload: Buffer.from(String(v)), qos: 0, retain: true });
  }
}

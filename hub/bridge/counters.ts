// A bridge's counters: the numbers behind <base>/bridge/<name>/{queue_depth, oldest_age, sent,
// received, dropped, reconnects} (retained, published only when they change) and the "counters"
// log line, so a user can see from any MQTT client how far behind the uplink is.
import type { Bus, Logger } from "../contracts.js";
import type { Queue } from "./queue.js";

export interface BridgeStats {
  online: boolean;
  queueDepth: number;
  /** Seconds the oldest queued message has waited; 0 when the queue is empty. */
  oldestAge: number;
  sent: number;
  received: number;
  dropped: number;
  reconnects: number;
}

export function bridgeStats(queue: Queue | undefined, nowMs: number, c: { online: boolean; sent: number; received: number; reconnects: number }): BridgeStats {
  const oldest = queue?.oldestAt();
  const d = queue?.dropped;
  const dropped = d === undefined ? 0 : d.oldest + d.new + d.superseded + d.expired + d.rejected + d.write_failed;
  return {
    online: c.online,
    queueDepth: queue?.depth() ?? 0,
    oldestAge: oldest === undefined ? 0 : Math.max(0, Math.floor((nowMs - oldest) / 1000)),
    sent: c.sent,
    received: c.received,
    dropped,
    reconnects: c.reconnects,
  };
}

/** Returns a function that publishes (retained, QoS 0) and logs the counters that changed since its last call. */
export function counterPublisher(bus: Bus, log: Logger, base: string): (s: BridgeStats, queue: Queue | undefined) => void {
  const last = new Map<string, number>();
  return (s, queue) => {
    const values: [string, number][] = [
      ["queue_depth", s.queueDepth],
      ["oldest_age", s.oldestAge],
      ["sent", s.sent],
      ["received", s.received],
      ["dropped", s.dropped],
      ["reconnects", s.reconnects],
    ];
    let changed = false;
    for (const [k, v] of values) {
      if (last.get(k) === v) continue;
      last.set(k, v);
      changed = true;
      void bus.publish({ topic: `${base}/${k}`, payload: Buffer.from(String(v)), qos: 0, retain: true }).catch(() => {});
    }
    if (changed) log.info("counters", { online: s.online, ...Object.fromEntries(values), ...queue?.dropped });
  };
}

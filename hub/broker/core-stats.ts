// The broker's traffic counters: connections, messages and bytes each way, and messages dropped.
// The core starts them; connections and the store count; sys-topics.ts publishes them under $SYS.

export interface BrokerStats {
  startedAt: number;
  clientsConnected: number;
  clientsTotal: number;
  messagesReceived: number;
  messagesSent: number;
  bytesReceived: number;
  bytesSent: number;
  publishDropped: number;
}

/** All counters at zero, started at `now` (wall-clock ms; $SYS uptime counts from here). */
export function createBrokerStats(now: number): BrokerStats {
  return {
    startedAt: now,
    clientsConnected: 0,
    clientsTotal: 0,
    messagesReceived: 0,
    messagesSent: 0,
    bytesReceived: 0,
    bytesSent: 0,
    publishDropped: 0,
  };
}

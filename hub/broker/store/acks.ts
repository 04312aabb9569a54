// Acknowledgements that promise durability (DESIGN.md §6): a QoS 1/2 PUBLISH is acknowledged only
// after the commit holding it, and refused when that commit fails or the store is failing (disk
// full): v5 PUBACK/PUBREC 0x97 Quota exceeded; v3.1.1 has no negative ack, so the connection is
// closed without one and the client resends after reconnecting (MQTT-4.8.0-2 "transient error").
import type { Connection } from "../connection.js";
import { RC } from "../reason-codes.js";

/** Acks a QoS 1/2 PUBLISH once it is committed (at once when storage is off or nothing is pending). */
export function ackWhenStored(c: Connection, qos: 1 | 2, id: number): void {
  c.core.afterCommit(
    () => c.ackPublish(qos, id),
    () => refuseUnstored(c, qos, id),
  );
}

/** The PUBLISH could not be stored: not acknowledged as received. */
export function refuseUnstored(c: Connection, qos: 1 | 2, id: number): void {
  const s = c.session;
  if (qos === 2 && s?.inboundQos2.delete(id)) c.core.store?.inboundQos2(s, id, false);
  if (c.protocolVersion === 5) c.send({ cmd: qos === 1 ? "puback" : "pubrec", messageId: id, reasonCode: RC.QUOTA_EXCEEDED });
  else c.fail(RC.QUOTA_EXCEEDED, "cannot store the message (disk full?)");
}

// MQTT reason codes: the MQTT 5 reason codes (§2.4, one table shared by every ack and DISCONNECT),
// the MQTT 3.1.1 CONNACK return codes (§3.2.2.3), and the mappings from the first to the second.
// The gate (framing, wire-strings, packet-rules) always speaks MQTT 5 codes; the connection maps
// them to 3.1.1 when the client is older.

/** MQTT 5 reason codes (MQTT 5 §2.4). Several codes share a value; the name says the context. */
export const RC = {
  SUCCESS: 0x00,
  NORMAL_DISCONNECTION: 0x00,
  GRANTED_QOS_0: 0x00,
  GRANTED_QOS_1: 0x01,
  GRANTED_QOS_2: 0x02,
  DISCONNECT_WITH_WILL: 0x04,
  NO_MATCHING_SUBSCRIBERS: 0x10,
  NO_SUBSCRIPTION_EXISTED: 0x11,
  CONTINUE_AUTHENTICATION: 0x18,
  RE_AUTHENTICATE: 0x19,
  UNSPECIFIED: 0x80,
  MALFORMED_PACKET: 0x81,
  PROTOCOL_ERROR: 0x82,
  IMPLEMENTATION_SPECIFIC: 0x83,
  UNSUPPORTED_PROTOCOL_VERSION: 0x84,
  CLIENT_IDENTIFIER_NOT_VALID: 0x85,
  BAD_USERNAME_OR_PASSWORD: 0x86,
  NOT_AUTHORIZED: 0x87,
  SERVER_UNAVAILABLE: 0x88,
  SERVER_BUSY: 0x89,
  BANNED: 0x8a,
  SERVER_SHUTTING_DOWN: 0x8b,
  BAD_AUTHENTICATION_METHOD: 0x8c,
  KEEP_ALIVE_TIMEOUT: 0x8d,
  SESSION_TAKEN_OVER: 0x8e,
  TOPIC_FILTER_INVALID: 0x8f,
  TOPIC_NAME_INVALID: 0x90,
  PACKET_ID_IN_USE: 0x91,
  PACKET_ID_NOT_FOUND: 0x92,
  RECEIVE_MAXIMUM_EXCEEDED: 0x93,
  TOPIC_ALIAS_INVALID: 0x94,
  PACKET_TOO_LARGE: 0x95,
  MESSAGE_RATE_TOO_HIGH: 0x96,
  QUOTA_EXCEEDED: 0x97,
  ADMIN_ACTION: 0x98,
  PAYLOAD_FORMAT_INVALID: 0x99,
  RETAIN_NOT_SUPPORTED: 0x9a,
  QOS_NOT_SUPPORTED: 0x9b,
  USE_ANOTHER_SERVER: 0x9c,
  SERVER_MOVED: 0x9d,
  SHARED_SUBS_NOT_SUPPORTED: 0x9e,
  CONNECTION_RATE_EXCEEDED: 0x9f,
  MAXIMUM_CONNECT_TIME: 0xa0,
  SUBSCRIPTION_IDS_NOT_SUPPORTED: 0xa1,
  WILDCARD_SUBS_NOT_SUPPORTED: 0xa2,
} as const;

export type ReasonCode = (typeof RC)[keyof typeof RC];

/** MQTT 3.1.1 CONNACK return codes (§3.2.2.3). */
export const V3_CONNACK = {
  ACCEPTED: 0x00,
  UNACCEPTABLE_PROTOCOL_VERSION: 0x01,
  IDENTIFIER_REJECTED: 0x02,
  SERVER_UNAVAILABLE: 0x03,
  BAD_USERNAME_OR_PASSWORD: 0x04,
  NOT_AUTHORIZED: 0x05,
} as const;

/** The 3.1.1 SUBACK failure code (§3.9.3): 3.1.1 has one failure value for every reason. */
export const V3_SUBACK_FAILURE = 0x80;

/**
 * A reason to refuse bytes or a packet, as every gate stage reports it. `reason` is an MQTT 5 reason
 * code (for v3 clients the connection maps it, or just closes).
 */
export interface ProtocolFault {
  readonly reason: number;
  readonly message: string;
}

/**
 * The 3.1.1 CONNACK return code for an MQTT 5 CONNACK reason code, or `undefined` when 3.1.1 has no
 * code for it (malformed packet, protocol error, topic name invalid, packet too large, ...): the
 * server then closes the connection without a CONNACK, which is what 3.1.1 prescribes for a CONNECT
 * that does not conform (MQTT-3.1.4-1). Mapping as mosquitto and MQTT.js do it.
 */
export function v5ToV3Connack(rc: number): number | undefined {
  switch (rc) {
    case RC.SUCCESS:
      return V3_CONNACK.ACCEPTED;
    case RC.UNSUPPORTED_PROTOCOL_VERSION:
      return V3_CONNACK.UNACCEPTABLE_PROTOCOL_VERSION;
    case RC.CLIENT_IDENTIFIER_NOT_VALID:
      return V3_CONNACK.IDENTIFIER_REJECTED;
    case RC.UNSPECIFIED:
    case RC.IMPLEMENTATION_SPECIFIC:
    case RC.SERVER_UNAVAILABLE:
    case RC.SERVER_BUSY:
    case RC.SERVER_SHUTTING_DOWN:
    case RC.USE_ANOTHER_SERVER:
    case RC.SERVER_MOVED:
    case RC.QUOTA_EXCEEDED:
    case RC.CONNECTION_RATE_EXCEEDED:
      return V3_CONNACK.SERVER_UNAVAILABLE;
    case RC.BAD_USERNAME_OR_PASSWORD:
    case RC.BAD_AUTHENTICATION_METHOD:
      return V3_CONNACK.BAD_USERNAME_OR_PASSWORD;
    case RC.NOT_AUTHORIZED:
    case RC.BANNED:
      return V3_CONNACK.NOT_AUTHORIZED;
    default:
      return undefined;
  }
}

/** The 3.1.1 SUBACK byte for an MQTT 5 SUBACK reason code: granted QoS stays, any failure is 0x80. */
export function v5ToV3Suback(rc: number): number {
  return rc < 0x80 ? rc : V3_SUBACK_FAILURE;
}

// For logs only: the first name listed for each value (SUCCESS, not GRANTED_QOS_0). Built once from
// the constant table above and never modified.
const NAMES: ReadonlyMap<number, string> = (() => {
  const m = new Map<number, string>();
  for (const [name, code] of Object.entries(RC)) if (!m.has(code)) m.set(code, name);
  return m;
})();

/** A readable name for a reason code in logs, e.g. `MALFORMED_PACKET (0x81)`. */
export function reasonName(rc: number): string {
  const hex = `0x${rc.toString(16).padStart(2, "0")}`;
  const name = NAMES.get(rc);
  return name === undefined ? hex : `${name} (${hex})`;
}

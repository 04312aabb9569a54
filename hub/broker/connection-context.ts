// The types a connection is built from (the listener that accepted it, the socket shape) and the
// context every connection of one broker shares: the core, the parser, the topic rules.
import type { Duplex } from "node:stream";
import type { Connection } from "./connection.js";
import type { BrokerCore } from "./core.js";
import type { RuleLimits, TopicRules } from "./packet-rules.js";
import { createPacketParser, type PacketParser } from "./parse.js";
import { validTopicFilter, validTopicName } from "./topics.js";

/**
 * What a connection knows of the listener that accepted it: the security settings that apply to
 * it (listeners.ts builds one per configured listener; in-memory tests use DEFAULT_LISTENER).
 */
export interface ListenerInfo {
  /** Shown in logs, e.g. "mqtts://0.0.0.0:8883". */
  readonly name: string;
  /** Clients without a user name may connect. */
  readonly allowAnonymous: boolean;
  /** TLS: the client certificate's subject CN is the user name (no password asked). */
  readonly identityAsUsername: boolean;
}

/** The loopback default: anonymous clients allowed, no certificates. */
export const DEFAULT_LISTENER: ListenerInfo = { name: "local", allowAnonymous: true, identityAsUsername: false };

export interface Socketish extends Duplex {
  remoteAddress?: string;
  remotePort?: number;
  setNoDelay?(noDelay?: boolean): unknown;
  writableLength: number;
  /**
   * TLS listeners with require_client_cert: the verified client certificate's subject CN (well-formed
   * text, checked in tls.ts). With the listener's identityAsUsername it is the user name.
   */
  peerCommonName?: string;
}

/** What every connection of one broker shares. */
export interface ConnectionContext {
  core: BrokerCore;
  parser: PacketParser;
  rules: TopicRules;
  ruleLimits: RuleLimits;
  /** Per-filter SUBACK/UNSUBACK failure codes from checkPacket (0 = valid); reused per packet. */
  failures: number[];
  /** Connections with writes held back (corked) until the end of this event-loop turn. */
  corked: Connection[];
  onClosed(c: Connection): void;
}

export function connectionContext(core: BrokerCore, onClosed: (c: Connection) => void): ConnectionContext {
  const topicLimits = { maxLength: core.limits.maxTopicLength, maxLevels: core.limits.maxTopicLevels };
  return {
    core,
    parser: createPacketParser(),
    rules: {
      validName: (t) => validTopicName(t, topicLimits),
      validFilter: (f) => validTopicFilter(f, topicLimits),
    },
    ruleLimits: { maxClientIdLength: core.limits.maxClientIdLength, topicAliasMaximum: core.limits.topicAliasMaximum },
    failures: [],
    corked: [],
    onClosed,
  };
}

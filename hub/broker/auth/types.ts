// What the broker core needs from authentication and access control, as types only, so core.ts,
// connect.ts and inbound.ts depend on this leaf and not on how passwords and ACLs are loaded.
import type { ListenerInfo } from "../connection.js";

/**
 * Who does something: a client (a Session satisfies this: clientId + username) or a part of the hub
 * (`internal`, user name `hub:<part>`, e.g. `hub:rules`, `hub:bridge/cloud`).
 */
export interface Identity {
  readonly clientId: string;
  readonly username?: string | undefined;
  readonly internal?: boolean;
}

export interface AccessControl {
  canPublish(id: Identity, topic: string): boolean;
  canSubscribe(id: Identity, filter: string): boolean;
  canReceive(id: Identity, topic: string): boolean;
}

export interface AuthRequest {
  clientId: string;
  username: string | undefined;
  password: Buffer | undefined;
  /** Remote address (rate limiting); "local" for in-memory streams. */
  address: string;
  listener: ListenerInfo;
  /** The verified TLS client certificate's subject CN, when the listener has one. */
  certName: string | undefined;
}

/** ok: the user name the session runs as (undefined: anonymous). Otherwise a CONNACK reason (v5 code). */
export type AuthResult = { ok: true; username: string | undefined } | { ok: false; reason: number; why: string };

export interface BrokerAuth {
  /** Synchronous when no hashing is needed (anonymous, cached credential, banned); else a promise. */
  authenticate(r: AuthRequest): AuthResult | Promise<AuthResult>;
  /** Undefined: no ACL configured, every client may do everything (and routing pays nothing). */
  readonly acl: AccessControl | undefined;
}

/** User names of this form belong to the hub's own parts; no network client may use one. */
export const INTERNAL_PREFIX = "hub:";

export function internalIdentity(part: string): Identity {
  return { clientId: part, username: `${INTERNAL_PREFIX}${part}`, internal: true };
}

// What a CONNECT's authentication can decide without checking a password: certificate user names,
// anonymous clients, and user names nobody could verify. Apart from authenticate.ts (passwords,
// node:crypto) because every broker runs this, and one without a password file never needs the rest.
import { RC } from "../reason-codes.js";
import { type AuthRequest, type AuthResult, INTERNAL_PREFIX } from "./types.js";

/** A refusal with its reason code and the reason string sent to v5 clients. */
export const fail = (reason: number, why: string): AuthResult => ({ ok: false, reason, why });

/**
 * What can be decided without a password file: certificate user names, anonymous clients, and
 * (without a password file) user names nobody could verify. Undefined: check the password.
 */
export function decideWithoutPasswords(r: AuthRequest, havePasswords: boolean): AuthResult | undefined {
  const { listener } = r;
  if (listener.identityAsUsername) {
    // The TLS layer verified the certificate; its CN is the user name, no password asked.
    const name = r.certName;
    if (name === undefined || name === "") return fail(RC.NOT_AUTHORIZED, "this listener requires a client certificate with a common name");
    if (name.startsWith(INTERNAL_PREFIX)) return fail(RC.NOT_AUTHORIZED, `user names starting with ${INTERNAL_PREFIX} belong to the hub`);
    return { ok: true, username: name };
  }
  if (r.username === undefined) {
    if (r.password !== undefined) return fail(RC.BAD_USERNAME_OR_PASSWORD, "a password without a user name");
    return listener.allowAnonymous ? { ok: true, username: undefined } : fail(RC.NOT_AUTHORIZED, "anonymous clients are not allowed on this listener");
  }
  if (havePasswords) return undefined;
  // Nothing to verify a user name against: on an anonymous listener the client is anonymous (its
  // user name gets no ACL rights, since anyone could claim it); elsewhere it is refused.
  if (listener.allowAnonymous) return { ok: true, username: undefined };
  return fail(RC.BAD_USERNAME_OR_PASSWORD, "no password file is configured");
}

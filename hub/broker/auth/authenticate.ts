// Deciding a CONNECT: anonymous or not, TLS certificate names, passwords from the password file
// (hashing on the thread pool), a cache of verified credentials, and failed-login limiting.
// Never logs a password; user names only at debug level.
import { createHmac, randomBytes } from "node:crypto";
import type { Clock, Logger } from "../../contracts.js";
import { RC } from "../reason-codes.js";
import type { Acl } from "./acl.js";
import { DEFAULT_ITERATIONS, type PasswordEntry, verifyPassword } from "./passwd.js";
import { createRateLimiter, type RateLimitOptions } from "./ratelimit.js";
import { type AuthRequest, type AuthResult, type BrokerAuth, INTERNAL_PREFIX } from "./types.js";
import { decideWithoutPasswords, fail } from "./without-passwords.js";

export { decideWithoutPasswords } from "./without-passwords.js";

export interface Policy {
  /** Users from the password file; undefined when none is configured. */
  passwords: Map<string, PasswordEntry> | undefined;
  /** Undefined when no ACL is configured (everything allowed). */
  acl: Acl | undefined;
}

export interface AuthenticatorOptions {
  clock: Clock;
  log: Logger;
  rateLimit: RateLimitOptions;
  /** Password verifications running at once; more are refused with Server Busy. */
  maxPending?: number;
  /** Verified credentials remembered; the cache is emptied when full and on every policy change. */
  maxCached?: number;
}

export interface Authenticator extends BrokerAuth {
  readonly acl: Acl | undefined;
  readonly policy: Policy;
  /** Swaps in a freshly loaded policy (SIGHUP); cached credentials are forgotten. */
  setPolicy(p: Policy): void;
  /** Credentials in the cache (tests, metrics). */
  readonly cached: number;
}

export function createAuthenticator(initial: Policy, o: AuthenticatorOptions): Authenticator {
  let policy = initial;
  const limiter = createRateLimiter(o.rateLimit, o.clock, o.log);
  // Cache keys are an HMAC of user and password under a per-process key: the cache never holds a
  // password, nor a fast unsalted hash of one.
  const cacheKey = randomBytes(32);
  const cache = new Map<string, PasswordEntry>();
  const maxCached = o.maxCached ?? 10_000;
  const maxPending = o.maxPending ?? 64;
  let pending = 0;
  // Unknown users are checked against this, so a wrong user name costs as much as a wrong password
  // (no user enumeration by timing).
  const decoySalt = randomBytes(12);
  const decoyHash = randomBytes(64);
  let decoy: PasswordEntry = { kind: "pbkdf2", iterations: DEFAULT_ITERATIONS, salt: decoySalt, hash: decoyHash };
  const setDecoy = () => {
    const first = policy.passwords?.values().next().value;
    if (first?.kind === "pbkdf2") decoy = { kind: "pbkdf2", iterations: first.iterations, salt: decoySalt, hash: decoyHash };
  };
  setDecoy();

  const authenticate = (r: AuthRequest): AuthResult | Promise<AuthResult> => {
    const users = policy.passwords;
    const early = decideWithoutPasswords(r, users !== undefined);
    if (early !== undefined || users === undefined) return early!;
    const keys = [`address ${r.address}`, `client id ${r.clientId}`];
    const left = limiter.bannedFor(keys);
    if (left > 0) return fail(RC.BANNED, `too many failed logins; try again in ${Math.ceil(left / 1000)} s`);
    const username = r.username!; // decideWithoutPasswords answered for anonymous clients
    const password = r.password;
    if (username === "" || username.startsWith(INTERNAL_PREFIX) || password === undefined) {
      limiter.failed(keys);
      return fail(RC.BAD_USERNAME_OR_PASSWORD, "bad user name or password");
    }
    const key = createHmac("sha256", cacheKey).update(username).update("\0").update(password).digest("base64");
    const entry = users.get(username);
    if (entry !== undefined && cache.get(key) === entry) return { ok: true, username };
    if (pending >= maxPending) return fail(RC.SERVER_BUSY, "too many logins being checked; try again");
    pending++;
    const checkedAgainst = policy;
    return verifyPassword(entry ?? decoy, password).then(
      (good) => {
        pending--;
        if (good && entry !== undefined) {
          // A reload while hashing: the answer is still right for the file it was checked against,
          // but only that file's entry goes into the (new, empty) cache if it is unchanged.
          if (checkedAgainst === policy || policy.passwords?.get(username) === entry) {
            if (cache.size >= maxCached) cache.clear();
            cache.set(key, entry);
          }
          return { ok: true, username };
        }
        limiter.failed(keys);
        o.log.debug("login failed", { user: username, client: r.clientId, address: r.address });
        return fail(RC.BAD_USERNAME_OR_PASSWORD, "bad user name or password");
      },
      (err: unknown) => {
        pending--;
        o.log.error("password check failed", { error: err });
        return fail(RC.SERVER_UNAVAILABLE, "password check failed");
      },
    );
  };

  return {
    authenticate,
    get acl() {
      return policy.acl;
    },
    get policy() {
      return policy;
    },
    setPolicy(p) {
      policy = p;
      cache.clear();
      setDecoy();
    },
    get cached() {
      return cache.size;
    },
  };
}

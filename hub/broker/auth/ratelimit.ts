// Failed-login limiting (checklist C14, after EMQX's banned list): `maxFailures` failures from one
// remote address, or for one client id, within `windowMs` ban that key for `banMs`. A banned key is
// refused before any hashing, so a password-guessing loop costs the hub a map lookup per attempt.
// Bounded: at most `maxKeys` keys are tracked; when full, stale ones are dropped, then the oldest.
// The same counter limits reconnect flapping (core.ts: every CONNECT of a client id counts).
import type { Clock, Logger } from "../../contracts.js";

export interface RateLimitOptions {
  maxFailures: number;
  windowMs: number;
  banMs: number;
  maxKeys?: number;
  /** Logs the start of a ban (once per ban); default: the failed-login line. */
  onBan?: (key: string) => void;
}

export interface RateLimiter {
  /** Milliseconds left on a ban of any of `keys`, or 0. */
  bannedFor(keys: readonly string[]): number;
  /** Counts a failure for each key; bans (and logs once) those that reach the threshold. */
  failed(keys: readonly string[]): void;
  readonly size: number;
}

interface Entry {
  /** Monotonic ms of the first failure in the current window. */
  since: number;
  count: number;
  /** Monotonic ms the ban ends; 0 = not banned. */
  bannedUntil: number;
}

export function createRateLimiter(o: RateLimitOptions, clock: Clock, log: Logger): RateLimiter {
  const entries = new Map<string, Entry>();
  const maxKeys = o.maxKeys ?? 10_000;

  const prune = (now: number) => {
    for (const [k, e] of entries) {
      if (e.bannedUntil <= now && now - e.since > o.windowMs) entries.delete(k);
    }
    if (entries.size < maxKeys) return;
    // Still full (an attack from many addresses, or many client ids connecting): drop the oldest
    // tenth at once, so this full scan runs once per maxKeys/10 new keys, not on every one (a CONNECT
    // loop with fresh client ids must not cost O(maxKeys) each). Bans go last. Map iterates in
    // insertion order.
    let drop = Math.ceil(maxKeys / 10);
    for (const [k, e] of entries) {
      if (drop === 0) break;
      if (e.bannedUntil > now) continue;
      entries.delete(k);
      drop--;
    }
    for (const k of entries.keys()) {
      if (drop-- <= 0) break;
      entries.delete(k);
    }
  };

  return {
    bannedFor(keys) {
      const now = clock.monotonic();
      let left = 0;
      for (const k of keys) {
        const e = entries.get(k);
        if (e !== undefined && e.bannedUntil > now) left = Math.max(left, e.bannedUntil - now);
      }
      return left;
    },
    failed(keys) {
      const now = clock.monotonic();
      for (const k of keys) {
        let e = entries.get(k);
        if (e === undefined || (e.bannedUntil <= now && now - e.since > o.windowMs)) {
          if (e === undefined && entries.size >= maxKeys) prune(now);
          e = { since: now, count: 0, bannedUntil: 0 };
          entries.set(k, e);
        }
        if (e.bannedUntil > now) continue;
        e.count++;
        if (e.count >= o.maxFailures) {
          e.bannedUntil = now + o.banMs;
          e.count = 0;
          e.since = now;
          // One line per ban, not per attempt: a guessing loop cannot flood the journal.
          if (o.onBan) o.onBan(k);
          else log.warn("too many failed logins; refusing before checking passwords", { from: k, failures: o.maxFailures, ban_s: Math.round(o.banMs / 1000) });
        }
      }
    },
    get size() {
      return entries.size;
    },
  };
}

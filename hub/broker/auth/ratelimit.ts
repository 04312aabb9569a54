// Failed-login limiting (checklist C14, after EMQX's banned list): `maxFailures` failures from one
// remote address, or for one client id, within `windowMs` ban that key for `banMs`. A banned key is
// refused before any hashing, so a password-guessing loop costs the hub a map lookup per attempt.
// Bounded: at most `maxKeys` keys are tracked; when full, stale ones are dropped, then the oldest.
// The same counter limits reconnect flapping (flapping.ts: every accepted CONNECT of a client id counts).
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

  // The map is kept in `since` order: a key whose window (re)starts is (re)inserted at the end. So
  // the stale entries are at the front and pruning stops at the first one still inside its window,
  // instead of scanning all maxKeys entries (every accepted CONNECT is counted by the flapping
  // limiter: issue 3, handshakes/s). Old entries still banned are skipped; there are few.
  const restart = (k: string, e: Entry, now: number) => {
    e.since = now;
    entries.delete(k);
    entries.set(k, e);
  };
  const prune = (now: number) => {
    for (const k of entries.keys()) {
      const e = entries.get(k)!;
      if (now - e.since <= o.windowMs) break;
      if (e.bannedUntil <= now) entries.delete(k);
    }
    if (entries.size < maxKeys) return;
    // Still full (an attack from many addresses, or many client ids connecting): drop the oldest
    // tenth at once, so this full scan runs once per maxKeys/10 new keys, not on every one (a CONNECT
    // loop with fresh client ids must not cost O(maxKeys) each). Bans go last. Map iterates in
    // insertion order.
    let drop = Math.ceil(maxKeys / 10);
    for (const k of entries.keys()) {
      if (drop === 0) break;
      if (entries.get(k)!.bannedUntil > now) continue;
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
      let left = 0;
      let now = -1; // read only when a key is known: most CONNECTs are from unknown keys
      for (const k of keys) {
        const e = entries.get(k);
        if (e === undefined) continue;
        if (now < 0) now = clock.monotonic();
        if (e.bannedUntil > now) left = Math.max(left, e.bannedUntil - now);
      }
      return left;
    },
    failed(keys) {
      const now = clock.monotonic();
      for (const k of keys) {
        let e = entries.get(k);
        if (e === undefined) {
          if (entries.size >= maxKeys) prune(now);
          e = { since: now, count: 0, bannedUntil: 0 };
          entries.set(k, e);
        } else if (e.bannedUntil <= now && now - e.since > o.windowMs) {
          // A new window: counted from zero, moved to the end (see prune).
          e.count = 0;
          e.bannedUntil = 0;
          restart(k, e, now);
        }
        if (e.bannedUntil > now) continue;
        e.count++;
        if (e.count >= o.maxFailures) {
          e.bannedUntil = now + o.banMs;
          e.count = 0;
          restart(k, e, now);
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

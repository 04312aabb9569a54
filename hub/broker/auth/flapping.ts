// Reconnect flapping (checklist H5, after EMQX's flapping detection): a client id that connects more
// than `maxConnects` times within `windowMs` is refused for `banMs`, with MQTT 5 CONNACK 0x8A Banned
// (3.1.1: code 5, not authorized), as EMQX does. A device in a crash loop, or two devices sharing a
// client id (each taking the session over from the other), would otherwise keep the broker busy
// with takeovers, session resumes and wills. Counted: accepted connections (after authentication),
// so a stranger who knows a device's client id cannot get it banned with CONNECTs that fail (those
// are the failed-login limiter's business). Checked: before authentication, so a banned id costs no
// hashing; a client connected with the id is never touched. One log line per ban. Counting is the
// failed-login limiter's (ratelimit.ts), keyed by client id.
import type { Clock, Logger } from "../../contracts.js";
import { createRateLimiter } from "./ratelimit.js";

export interface FlappingLimits {
  /** CONNECTs of one client id allowed within the window; the next one starts a ban. */
  maxConnects: number;
  windowMs: number;
  banMs: number;
}

export interface FlappingDetector {
  /** Ms left on the ban of `clientId` (0: not banned). Before authentication. */
  bannedFor(clientId: string): number;
  /** Counts an accepted connection of `clientId`; returns the ms left on the ban it starts (0: none). */
  connected(clientId: string): number;
  /** Client ids tracked (bounded). */
  readonly size: number;
}

export function createFlappingDetector(o: FlappingLimits, clock: Clock, log: Logger): FlappingDetector {
  const limiter = createRateLimiter(
    {
      maxFailures: o.maxConnects + 1,
      windowMs: o.windowMs,
      banMs: o.banMs,
      onBan: (client) =>
        log.warn("client id reconnects too often (flapping); refusing its connections for a while", {
          client,
          connects: o.maxConnects + 1,
          window_s: Math.round(o.windowMs / 1000),
          ban_s: Math.round(o.banMs / 1000),
        }),
    },
    clock,
    log,
  );
  return {
    bannedFor: (clientId) => limiter.bannedFor([clientId]),
    connected(clientId) {
      const keys = [clientId];
      limiter.failed(keys);
      return limiter.bannedFor(keys);
    },
    get size() {
      return limiter.size;
    },
  };
}

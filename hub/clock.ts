// The real clock: wall time from Date, monotonic time from performance.now(), timers from Node.
// Everything that waits takes a Clock so tests can use test/support/fake-clock.ts instead.
import { performance } from "node:perf_hooks";
import type { Cancel, Clock } from "./contracts.js";

export function systemClock(): Clock {
  return {
    now: () => Date.now(),
    monotonic: () => performance.now(),
    after(ms: number, fn: () => void): Cancel {
      const t = setTimeout(fn, ms);
      return () => clearTimeout(t);
    },
    every(ms: number, fn: () => void): Cancel {
      const t = setInterval(fn, ms);
      return () => clearInterval(t);
    },
  };
}

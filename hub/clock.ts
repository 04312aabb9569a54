// The real clock: wall time from Date, monotonic time from performance.now(), timers from Node.
// Everything that waits takes a Clock so tests can use test/support/fake-clock.ts instead.
import { performance } from "node:perf_hooks";
import type { Cancel, Clock } from "./contracts.js";

const MAX_TIMER_MS = 2 ** 31 - 1;

export function systemClock(): Clock {
  return {
    now: () => Date.now(),
    monotonic: () => performance.now(),
    after(ms: number, fn: () => void): Cancel {
      // setTimeout turns delays above 2^31-1 ms (~24.8 days) into 1 ms: chain shorter timers.
      let t: NodeJS.Timeout;
      const arm = (left: number) => {
        t = setTimeout(left > MAX_TIMER_MS ? () => arm(left - MAX_TIMER_MS) : fn, Math.min(left, MAX_TIMER_MS));
      };
      arm(ms);
      return () => clearTimeout(t);
    },
    every(ms: number, fn: () => void): Cancel {
      const t = setInterval(fn, ms);
      return () => clearInterval(t);
    },
  };
}

// A deterministic Clock for tests: time moves only when the test calls advance().
import type { Cancel, Clock } from "../../hub/contracts.js";

interface Timer { at: number; seq: number; fn: () => void; every?: number; cancelled: boolean }

export interface FakeClock extends Clock {
  /** Move time forward by ms, firing due timers in order (timers they schedule fire too if due). */
  advance(ms: number): void;
  /** Number of live timers, to assert nothing leaks. */
  pending(): number;
}

export function fakeClock(start = 1_700_000_000_000): FakeClock {
  let mono = 0;
  let seq = 0;
  const timers: Timer[] = [];
  const schedule = (ms: number, fn: () => void, every?: number): Cancel => {
    const t: Timer = { at: mono + Math.max(0, ms), seq: seq++, fn, every, cancelled: false };
    timers.push(t);
    return () => {
      t.cancelled = true;
    };
  };
  return {
    now: () => start + mono,
    monotonic: () => mono,
    after: (ms, fn) => schedule(ms, fn),
    every: (ms, fn) => schedule(ms, fn, Math.max(1, ms)),
    advance(ms: number) {
      const end = mono + ms;
      for (;;) {
        let next: Timer | undefined;
        for (const t of timers) {
          if (t.cancelled || t.at > end) continue;
          if (!next || t.at < next.at || (t.at === next.at && t.seq < next.seq)) next = t;
        }
        if (!next) break;
        mono = next.at;
        if (next.every !== undefined) {
          next.at += next.every;
          next.seq = seq++;
        } else next.cancelled = true;
        next.fn();
        for (let i = timers.length - 1; i >= 0; i--) if (timers[i]!.cancelled) timers.splice(i, 1);
      }
      mono = end;
    },
    pending: () => timers.filter((t) => !t.cancelled).length,
  };
}

// The physical world the simulated chips measure: a function of the injected clock. The house
// environment follows the time of day (warmer and brighter in the afternoon) with a slow weather
// drift and small fast wobbles, so every reading differs a little from the last. Deterministic: no
// randomness, so a simulation replays exactly under a fake clock.
import type { Clock } from "../../../hub/contracts.js";

export interface EnvSample {
  /** °C */
  temperature: number;
  /** %RH */
  humidity: number;
  /** Pa */
  pressure: number;
  /** lx */
  lux: number;
  /** Volts on four analog inputs (ADS1115 AIN0..AIN3). */
  analog: [number, number, number, number];
}

export type Environment = () => EnvSample;

const DAY = 86_400_000;
const TAU = 2 * Math.PI;

export interface HouseOptions {
  /** Makes each simulated place a little different (phase and offsets); any integer. */
  seed?: number;
  /** Degrees added to the temperature (a cooler or warmer room). */
  temperatureOffset?: number;
}

/** A plausible room: 19–24 °C, 35–60 %RH, 1000–1025 hPa, dark at night, a few hundred lux by day. */
export function houseEnvironment(clock: Clock, o: HouseOptions = {}): Environment {
  const seed = o.seed ?? 0;
  const phase = seed * 1.618;
  const offset = o.temperatureOffset ?? 0;
  const wave = (t: number, period: number, extra = 0) => Math.sin(TAU * (t / period) + phase + extra);
  return () => {
    const t = clock.now();
    const local = new Date(t);
    const hourOfDay = local.getHours() + local.getMinutes() / 60; // the machine's time zone: daylight when it is day there
    const daylight = Math.max(0, Math.sin((Math.PI * (hourOfDay - 6)) / 14)); // 06:00..20:00
    const temperature = 21.5 + offset + 1.5 * Math.sin((TAU * (hourOfDay - 9)) / 24) + 0.3 * wave(t, 7 * 60_000) + 0.05 * wave(t, 47_000);
    const humidity = 47 - 6 * Math.sin((TAU * (hourOfDay - 9)) / 24) + 2 * wave(t, 11 * 60_000, 1) + 0.3 * wave(t, 53_000);
    const pressure = 101_300 + 700 * wave(t, 2.5 * DAY, 2) + 15 * wave(t, 13 * 60_000);
    const lux = Math.max(0, 3 + 450 * daylight * (1 + 0.25 * wave(t, 5 * 60_000, 3)) + 2 * wave(t, 37_000));
    const analog: EnvSample["analog"] = [
      1.65 + 0.8 * wave(t, 9 * 60_000),
      2.4 + 1.7 * wave(t, 17 * 60_000, 1), // a 0.5–4.5 V transducer: 0.7–4.1 V
      0.5 + 0.1 * wave(t, 3 * 60_000, 2),
      0,
    ];
    return { temperature, humidity, pressure, lux, analog };
  };
}

/** A settable environment for tests: `set()` changes what the chips measure from now on. */
export function fixedEnvironment(initial: Partial<EnvSample> = {}): Environment & { set(s: Partial<EnvSample>): void } {
  let s: EnvSample = { temperature: 21, humidity: 50, pressure: 101_325, lux: 300, analog: [0, 0, 0, 0], ...initial };
  const env = (() => ({ ...s, analog: [...s.analog] as EnvSample["analog"] })) as Environment & { set(s: Partial<EnvSample>): void };
  env.set = (p) => {
    s = { ...s, ...p };
  };
  return env;
}

/** Finds the integer `x` in [lo, hi] whose `f(x)` is closest to `target`, for a monotonic `f`. */
export function invertMonotonic(f: (x: number) => number, target: number, lo: number, hi: number): number {
  const rising = f(hi) >= f(lo);
  let a = lo;
  let b = hi;
  while (b - a > 1) {
    const mid = Math.floor((a + b) / 2);
    if (f(mid) < target === rising) a = mid;
    else b = mid;
  }
  return Math.abs(f(a) - target) <= Math.abs(f(b) - target) ? a : b;
}

// A simulated GPIO chip behind the same seam as the real one (../gpio.ts), for --simulate and tests.
// It models physical levels: inputs follow an external drive (a button, a PIR, a reed contact) or
// rest at their idle level; outputs hold what the hub wrote. Tests and the demo drive inputs, inject
// contact bounce and open faults, and read output levels. All timing goes through the injected clock.
import type { Cancel, Clock, Logger } from "../../../hub/contracts.js";
import { debouncer, edgeMatches, toLogical, toPhysical, type Edge, type GpioLine, type GpioProvider } from "../gpio.js";

type Level = 0 | 1;

interface SimLine {
  mode: "in" | "out";
  activeLow: boolean;
  out: Level;
  edge: Edge;
  listeners: Set<(v: boolean) => void>;
  db?: ReturnType<typeof debouncer>;
}

export interface SimGpioChip {
  provider: GpioProvider;
  /** Drive a pin's physical level from outside (meaningful for inputs). */
  drive(bcm: number, level: Level): void;
  /** Contact bounce: `count` alternating levels `spacingMs` apart, ending on `final` (default 5 × 1 ms). */
  bounce(bcm: number, final: Level, opts?: { count?: number; spacingMs?: number }): void;
  /** A press of an opened input: logical active for `holdMs`, with bounce on both edges. */
  press(bcm: number, holdMs?: number): void;
  /** Physical level: what an output drives, or what an input sees. */
  level(bcm: number): Level;
  /** How the hub opened the line, if it did. */
  mode(bcm: number): "in" | "out" | undefined;
  /** BCM numbers currently open as inputs. */
  inputs(): number[];
  /** Make the next opens of `bcm` fail with this errno code (EACCES, EBUSY…); undefined clears. */
  failOpen(bcm: number, code: string | undefined): void;
}

export function createSimGpioChip(opts: { clock: Clock; log?: Logger; lines?: number }): SimGpioChip {
  const { clock } = opts;
  const ngpio = opts.lines ?? 54;
  const lines = new Map<number, SimLine>();
  const external = new Map<number, Level>();
  const faults = new Map<number, string>();
  // Closed outputs keep driving their last level, as on the Pi (linux-gpio.ts does not unexport them).
  const held = new Map<number, Level>();

  const inputLevel = (bcm: number, l: SimLine | undefined): Level =>
    external.get(bcm) ?? (l ? toPhysical(false, l.activeLow) : 0); // undriven: the pull holds it idle
  const levelOf = (bcm: number): Level => {
    const l = lines.get(bcm);
    if (!l) return held.get(bcm) ?? inputLevel(bcm, l);
    return l.mode === "out" ? l.out : inputLevel(bcm, l);
  };

  const claim = (bcm: number): void => {
    if (!Number.isInteger(bcm) || bcm < 0 || bcm >= ngpio) throw new Error(`GPIO ${bcm} does not exist: the simulated chip has lines 0..${ngpio - 1}`);
    const fault = faults.get(bcm);
    if (fault) throw Object.assign(new Error(`${fault}: simulated failure opening GPIO ${bcm}`), { code: fault });
    if (lines.has(bcm)) throw Object.assign(new Error(`EBUSY: GPIO ${bcm} is already open`), { code: "EBUSY" });
    held.delete(bcm);
  };

  const lineApi = (bcm: number, l: SimLine): GpioLine => ({
    bcm,
    read: async () => toLogical(levelOf(bcm), l.activeLow),
    async write(v) {
      if (l.mode !== "out") throw new Error(`GPIO ${bcm} is an input`);
      const next = toPhysical(v, l.activeLow);
      if (next !== l.out) opts.log?.info("simulated GPIO output", { bcm, level: next ? "high" : "low" });
      l.out = next;
    },
    watch(fn) {
      l.listeners.add(fn);
      return () => l.listeners.delete(fn);
    },
    async close() {
      l.db?.cancel();
      l.listeners.clear();
      if (lines.get(bcm) !== l) return;
      lines.delete(bcm);
      if (l.mode === "out") held.set(bcm, l.out);
    },
  });

  const provider: GpioProvider = {
    name: "simulated",
    async openInput(bcm, o) {
      claim(bcm);
      const l: SimLine = { mode: "in", activeLow: o.activeLow === true, out: 0, edge: o.edge ?? "both", listeners: new Set() };
      const sample = () => toLogical(inputLevel(bcm, l), l.activeLow);
      l.db = debouncer(clock, o.debounceMs ?? 0, sample, sample(), (v) => {
        if (edgeMatches(l.edge, v)) for (const fn of l.listeners) fn(v);
      });
      lines.set(bcm, l);
      return lineApi(bcm, l);
    },
    async openOutput(bcm, o) {
      claim(bcm);
      const l: SimLine = { mode: "out", activeLow: o.activeLow === true, out: toPhysical(o.initial, o.activeLow), edge: "none", listeners: new Set() };
      lines.set(bcm, l);
      opts.log?.info("simulated GPIO output", { bcm, level: l.out ? "high" : "low" });
      return lineApi(bcm, l);
    },
  };

  const drive = (bcm: number, level: Level) => {
    const before = levelOf(bcm);
    external.set(bcm, level);
    const l = lines.get(bcm);
    // An interrupt fires on every physical change of an input; the debouncer decides what it means.
    if (l?.mode === "in" && before !== level) l.db?.edge();
  };

  const bounce = (bcm: number, final: Level, o: { count?: number; spacingMs?: number } = {}) => {
    const count = o.count ?? 5;
    const spacing = o.spacingMs ?? 1;
    // Levels alternate so that the last of `count` is `final` (an odd count starts on `final` too).
    for (let i = 0; i < count; i++) {
      const level: Level = (count - 1 - i) % 2 === 0 ? final : final === 1 ? 0 : 1;
      if (i === 0) drive(bcm, level);
      else clock.after(i * spacing, () => drive(bcm, level));
    }
  };

  return {
    provider,
    drive,
    bounce,
    press(bcm, holdMs = 200) {
      const l = lines.get(bcm);
      const active = toPhysical(true, l?.activeLow);
      bounce(bcm, active);
      clock.after(holdMs, () => bounce(bcm, active === 1 ? 0 : 1));
    },
    level: levelOf,
    mode: (bcm) => lines.get(bcm)?.mode,
    inputs: () => [...lines].filter(([, l]) => l.mode === "in").map(([bcm]) => bcm),
    failOpen(bcm, code) {
      if (code === undefined) faults.delete(bcm);
      else faults.set(bcm, code);
    },
  };
}

/**
 * The demo's hand on the buttons (--simulate): every open input gets pressed now and then, at
 * random intervals around `everyMs`, so `npm start` shows binary sensors changing.
 */
export function autoPress(chip: SimGpioChip, opts: { clock: Clock; random: () => number; everyMs?: number; holdMs?: number }): Cancel {
  const every = opts.everyMs ?? 30_000;
  let timer: Cancel | undefined;
  const schedule = () => {
    timer = opts.clock.after(Math.round(every * (0.5 + opts.random())), () => {
      for (const bcm of chip.inputs()) chip.press(bcm, opts.holdMs ?? 500);
      schedule();
    });
  };
  schedule();
  return () => timer?.();
}

// The GPIO seam: the only way drivers touch GPIO lines. Kept tiny (open input/output, read, write,
// watch, close) so that the sysfs backend (onoff, linux-gpio.ts) can later be replaced by a libgpiod
// one without touching drivers, and so the simulator (sim/gpio.ts) implements exactly the same thing.
// Values at this seam are LOGICAL: `true` = active. `activeLow` maps them to physical levels.
import type { Cancel, Clock } from "../../hub/contracts.js";

/** Which logical transitions wake a watcher. */
export type Edge = "none" | "rising" | "falling" | "both";

export interface GpioInputOptions {
  /** Default "both". */
  edge?: Edge;
  /** A change must hold this long (ms) before it is reported; 0 = report every edge. */
  debounceMs?: number;
  /** Active when the pin is low (a button to ground with a pull-up). */
  activeLow?: boolean;
  /**
   * Internal pull-up, for backends that can set one (MCP23017: default on). sysfs cannot: on the
   * Pi's own pins pulls come from the wiring or config.txt, and the config refuses this option there.
   */
  pullUp?: boolean;
}

export interface GpioOutputOptions {
  activeLow?: boolean;
  /** Logical level the line takes as it becomes an output (glitch-free: no intermediate level). */
  initial: boolean;
}

export interface GpioLine {
  /** BCM number (as configured; the backend maps it to its own numbering). */
  readonly bcm: number;
  /** Current logical value. */
  read(): Promise<boolean>;
  /** Outputs only: set the logical value. */
  write(value: boolean): Promise<void>;
  /** Inputs: called with the new logical value after each (debounced) change matching `edge`. */
  watch(fn: (value: boolean) => void): Cancel;
  close(): Promise<void>;
}

export interface GpioProvider {
  /** Human name for logs ("sysfs gpiochip512", "simulated"). */
  readonly name: string;
  openInput(bcm: number, options: GpioInputOptions): Promise<GpioLine>;
  openOutput(bcm: number, options: GpioOutputOptions): Promise<GpioLine>;
}

/** Whether a logical transition to `value` passes the edge filter. */
export function edgeMatches(edge: Edge, value: boolean): boolean {
  return edge === "both" || (edge === "rising" && value) || (edge === "falling" && !value);
}

/**
 * Debounce raw edge notifications through the injected clock: each raw change (re)starts a quiet
 * period of `ms`; when it ends the line is sampled and, if it differs from the last reported value,
 * reported. Contact bounce (a few ms of chatter on press and release) thus yields one change, and a
 * glitch shorter than `ms` that returns to the old level yields none. Backends share it so the
 * simulator and the Pi debounce identically.
 */
export function debouncer(
  clock: Clock,
  ms: number,
  sample: () => boolean,
  initial: boolean,
  report: (value: boolean) => void,
): { edge(): void; cancel(): void } {
  let reported = initial;
  let timer: Cancel | undefined;
  const settle = () => {
    timer = undefined;
    const v = sample();
    if (v === reported) return;
    reported = v;
    report(v);
  };
  return {
    edge() {
      if (ms <= 0) return settle();
      timer?.();
      timer = clock.after(ms, settle);
    },
    cancel() {
      timer?.();
      timer = undefined;
    },
  };
}

/** Physical level (0/1) for a logical value, and back: the same mapping both ways. */
export function toPhysical(value: boolean, activeLow: boolean | undefined): 0 | 1 {
  return value !== (activeLow === true) ? 1 : 0;
}

export function toLogical(level: 0 | 1, activeLow: boolean | undefined): boolean {
  return (level === 1) !== (activeLow === true);
}

// The real GPIO backend: sysfs through onoff 6 (epoll interrupts). onoff is an optional dependency
// with a native part, so it is imported lazily, and only once a line is opened: a machine without it
// (or without GPIO) installs and simulates fine, and hardware mode fails with a specific message.
// Debouncing uses the injected clock (gpio.ts `debouncer`), not onoff's own lodash timers.
import { closeSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import type { Clock, Logger } from "../../hub/contracts.js";
import { debouncer, edgeMatches, toPhysical, type GpioLine, type GpioProvider } from "./gpio.js";
import { GPIO_ROOT, resolveGpioChip, type GpioChip, type SysfsReader } from "./gpio-chip.js";

/** The part of onoff's Gpio class we use (declared here: onoff may be absent at type-check time). */
export interface OnoffGpio {
  read(): Promise<0 | 1>;
  readSync(): 0 | 1;
  write(value: 0 | 1): Promise<void>;
  watch(cb: (err: Error | null | undefined, value: 0 | 1) => void): void;
  unwatchAll(): void;
  unexport(): void;
}
export type OnoffGpioClass = new (
  gpio: number,
  direction: "in" | "out" | "high" | "low",
  edge?: "none" | "rising" | "falling" | "both",
  options?: { debounceTimeout?: number; activeLow?: boolean; reconfigureDirection?: boolean },
) => OnoffGpio;

export interface LinuxGpioDeps {
  clock: Clock;
  log: Logger;
  fs?: SysfsReader;
  root?: string;
  labels?: readonly string[];
  /** Loads onoff's Gpio class; injected by tests. */
  loadGpio?: () => Promise<OnoffGpioClass>;
}

function code(err: unknown): string | undefined {
  return typeof err === "object" && err !== null && "code" in err ? String((err as { code: unknown }).code) : undefined;
}

export async function importOnoff(): Promise<OnoffGpioClass> {
  let mod: { Gpio?: OnoffGpioClass; default?: { Gpio?: OnoffGpioClass } };
  try {
    mod = (await import("onoff")) as typeof mod;
  } catch (err) {
    throw new Error(
      "the optional package onoff (GPIO) is not installed or its native part (epoll) did not build: " +
        `install build-essential and run npm install on the Pi (${err instanceof Error ? err.message : String(err)})`,
    );
  }
  const Gpio = mod.Gpio ?? mod.default?.Gpio;
  if (!Gpio) throw new Error("the onoff package has no Gpio export (expected onoff 6)");
  return Gpio;
}

/** Turns onoff/kernel errors into messages that say what to do. */
export function explainGpioError(err: unknown, bcm: number, sysfs: number, root = GPIO_ROOT): Error {
  const what = `GPIO BCM ${bcm} (sysfs ${sysfs})`;
  const detail = err instanceof Error ? err.message : String(err);
  switch (code(err)) {
    case "EACCES":
    case "EPERM":
      return new Error(
        `${what}: permission denied on ${root}: add the user running the hub to the gpio group ` +
          `(sudo usermod -aG gpio <user>, then log in again or restart the service) (${detail})`,
      );
    case "EBUSY":
      return new Error(`${what} is in use by another driver or program (e.g. a dtoverlay such as w1-gpio on GPIO 4) (${detail})`);
    case "EINVAL":
      return new Error(`${what}: the kernel refused the line number; is it claimed by another driver? (${detail})`);
    case "ENOENT":
      return new Error(`${what}: ${root} is missing or the line could not be exported (${detail})`);
    default:
      return new Error(`${what}: ${detail}`);
  }
}

export function linuxGpio(deps: LinuxGpioDeps): GpioProvider {
  const fs: SysfsReader = deps.fs ?? { readdir: (p) => readdir(p), readFile: (p) => readFile(p, "utf8") };
  const root = deps.root ?? GPIO_ROOT;
  let chip: Promise<GpioChip> | undefined;
  let Gpio: Promise<OnoffGpioClass> | undefined;

  // Resolved once and cached; a failure is not cached, so a retry (device backoff) tries again.
  const ready = async (): Promise<{ chip: GpioChip; Gpio: OnoffGpioClass }> => {
    chip ??= resolveGpioChip(fs, { root, labels: deps.labels, log: deps.log });
    const c = await chip.catch((err) => {
      chip = undefined;
      throw err;
    });
    Gpio ??= (deps.loadGpio ?? importOnoff)();
    const G = await Gpio.catch((err) => {
      Gpio = undefined;
      throw err;
    });
    return { chip: c, Gpio: G };
  };

  const construct = (c: GpioChip, bcm: number, make: (n: number) => OnoffGpio) => {
    const n = c.sysfsNumber(bcm);
    try {
      return { g: make(n), n };
    } catch (err) {
      throw explainGpioError(err, bcm, n, root);
    }
  };

  return {
    name: "sysfs",
    async openInput(bcm, o): Promise<GpioLine> {
      const { chip: c, Gpio: G } = await ready();
      const edge = o.edge ?? "both";
      // Always interrupt on both edges: the debouncer must see every change to know the settled
      // level; the edge filter is applied to settled values.
      const { g, n } = construct(c, bcm, (num) => new G(num, "in", edge === "none" ? "none" : "both", { activeLow: o.activeLow === true }));
      deps.log.info("GPIO input", { bcm, sysfs: n, active_low: o.activeLow === true });
      const listeners = new Set<(v: boolean) => void>();
      let db: ReturnType<typeof debouncer> | undefined;
      return {
        bcm,
        read: async () => (await g.read()) === 1,
        async write() {
          throw new Error(`GPIO BCM ${bcm} is an input`);
        },
        watch(fn) {
          listeners.add(fn);
          if (!db) {
            const d = debouncer(deps.clock, o.debounceMs ?? 0, () => g.readSync() === 1, g.readSync() === 1, (v) => {
              if (edgeMatches(edge, v)) for (const l of listeners) l(v);
            });
            db = d;
            g.watch((err) => {
              if (err) deps.log.warn("GPIO interrupt error", { bcm, error: err });
              else d.edge();
            });
          }
          return () => listeners.delete(fn);
        },
        async close() {
          db?.cancel();
          listeners.clear();
          g.unwatchAll();
          g.unexport();
        },
      };
    },
    async openOutput(bcm, o): Promise<GpioLine> {
      const { chip: c, Gpio: G } = await ready();
      // sysfs `direction` = high/low sets the RAW level (kernel gpiolib-sysfs direction_store), so
      // the logical initial value is mapped through active_low here; no glitch through the other level.
      const raw = toPhysical(o.initial, o.activeLow) === 1 ? "high" : "low";
      const { g, n } = construct(c, bcm, (num) => new G(num, raw, undefined, { activeLow: o.activeLow === true }));
      deps.log.info("GPIO output", { bcm, sysfs: n, active_low: o.activeLow === true, initial: o.initial ? "ON" : "OFF" });
      return {
        bcm,
        read: async () => (await g.read()) === 1,
        write: (v) => g.write(v ? 1 : 0),
        watch: () => () => {},
        async close() {
          // Not unexported: unexporting returns the pin to an input (bcm2835 pinctrl frees it to
          // GPIO_IN), so the relay would follow its pull resistor instead of the safe state just
          // written. Only the value file descriptor is released.
          const fd = (g as unknown as { _valueFd?: number })._valueFd;
          if (typeof fd === "number") {
            try {
              closeSync(fd);
            } catch {}
          }
        },
      };
    },
  };
}

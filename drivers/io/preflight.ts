// hardware: linux, checked before any device opens: does this machine have the interfaces the
// configured devices need (sysfs GPIO with the header's chip and onoff, each /dev/i2c-N with
// i2c-bus, the w1 devices directory)? Issue 5 asks that a config run with `hardware: linux` on a
// machine without them "fails with a clear, specific message", so a missing interface is a start
// failure listing every missing piece and the devices needing it. A missing or silent *chip* is not
// checked here: that device goes offline and is retried (one device never stops the others).
import { GPIO_ROOT, listGpioChips, pickGpioChip, type SysfsReader } from "./gpio-chip.js";
import type { RawI2cBus } from "./i2c.js";
import { W1_SYSFS } from "./one-wire.js";

/** What each interface is needed by: device names (or `gpio.expanders[i]`) per need. */
export interface HardwareNeeds {
  /** Pi GPIO lines (devices on the header's pins, expander interrupt pins). */
  gpio: string[];
  /** I2C bus number → users. */
  i2c: Map<number, string[]>;
  /** w1 directory → users. */
  w1: Map<string, string[]>;
}

export interface PreflightDeps {
  gpioFs: SysfsReader;
  gpioRoot?: string;
  gpioLabels?: readonly string[];
  /** Loads onoff (rejects with a message when it is absent). */
  loadGpio: () => Promise<unknown>;
  /** Opens /dev/i2c-N as the hub will (linux-i2c.ts: says "I2C is not enabled" when the node is missing). */
  openI2c: (bus: number) => Promise<RawI2cBus>;
  /** Whether a directory exists and can be listed. */
  dirExists: (path: string) => Promise<boolean>;
}

export function emptyNeeds(): HardwareNeeds {
  return { gpio: [], i2c: new Map(), w1: new Map() };
}

const users = (names: string[]) => (names.length === 1 ? `device ${names[0]}` : `devices ${names.join(", ")}`);
const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

/** Every missing interface, one sentence each (empty: all present). */
export async function preflight(needs: HardwareNeeds, deps: PreflightDeps): Promise<string[]> {
  const problems: string[] = [];
  if (needs.gpio.length > 0) {
    try {
      const root = deps.gpioRoot ?? GPIO_ROOT;
      pickGpioChip(await listGpioChips(deps.gpioFs, root), deps.gpioLabels, root);
      await deps.loadGpio();
    } catch (err) {
      problems.push(`${users(needs.gpio)} (GPIO): ${message(err)}`);
    }
  }
  for (const [bus, names] of [...needs.i2c].sort((a, b) => a[0] - b[0])) {
    try {
      await (await deps.openI2c(bus)).close();
    } catch (err) {
      problems.push(`${users(names)} (I2C bus ${bus}): ${message(err)}`);
    }
  }
  for (const [dir, names] of needs.w1) {
    if (!(await deps.dirExists(dir))) {
      const hint = dir === W1_SYSFS ? "1-Wire is not enabled (raspi-config → Interface → 1-Wire; data on GPIO4 with a 4.7 kΩ pull-up)" : "the directory does not exist";
      problems.push(`${users(names)} (1-Wire): ${hint}: ${dir} is missing`);
    }
  }
  return problems;
}

/** The start-up error: every problem, and the way to run the same config without hardware. */
export function preflightError(problems: readonly string[]): Error {
  return new Error(
    `hardware: linux, but this machine lacks what the configured devices need:\n  - ${problems.join("\n  - ")}\n` +
      "Enable the interfaces (and reboot), or run the same config on simulated hardware with --simulate (hardware: simulate).",
  );
}

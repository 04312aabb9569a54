// What a driver is: hardware knowledge behind a small interface. Drivers never see MQTT or rules;
// the device host (hub/devices.ts) turns readings into topics. Types only, plus nothing from hub/
// but hub/contracts.ts (checked by test/architecture.test.ts).
import type { Cancel, Clock, Logger } from "../hub/contracts.js";
import type { I2cBus } from "./io/i2c.js";
import type { OneWire } from "./io/one-wire.js";
import type { GpioProvider } from "./io/gpio.js";

/** Named quantities of one reading, e.g. { temperature: 21.4, humidity: 45 }. */
export type Reading = Record<string, number | boolean | string>;

export interface DriverContext {
  clock: Clock;
  log: Logger;
  /** Uniform [0, 1): injected so simulations are reproducible. */
  random: () => number;
  /** GPIO lines (real sysfs or simulated); absent when the hub has no GPIO backend. */
  gpio?: GpioProvider;
  /** GPIO expanders (MCP23017) by configured name; devices with `expander:` use these instead of `gpio`. */
  expanders?: (name: string) => GpioProvider | undefined;
  /** The shared, serialised I2C bus N (real or simulated); absent when the hub has no I2C. */
  i2c?: (bus: number) => Promise<I2cBus>;
  /** w1 sysfs access (real /sys/bus/w1/devices or the simulator's directory), reads serialised. */
  oneWire?: OneWire;
}

export interface Device {
  read?(): Promise<Reading>;
  write?(command: Reading): Promise<Reading>;
  watch?(emit: (r: Reading) => void): Cancel;
  close(): Promise<void>;
}

export interface QuantityInfo {
  unit?: string;
  /** Decimal places published. */
  precision?: number;
}

export interface DriverDefinition<O> {
  kind: string;
  /** Quantities this device publishes, from its options. */
  quantities(options: O): Record<string, QuantityInfo>;
  open(options: O, ctx: DriverContext): Promise<Device>;
}

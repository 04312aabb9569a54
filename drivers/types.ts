// What a driver is: hardware knowledge behind a small interface. Drivers never see MQTT or rules;
// the device host (hub/devices.ts) turns readings into topics. Types only, plus nothing from hub/
// but hub/contracts.ts (checked by test/architecture.test.ts).
import type { Cancel, Clock, Logger } from "../hub/contracts.js";

/** Named quantities of one reading, e.g. { temperature: 21.4, humidity: 45 }. */
export type Reading = Record<string, number | boolean | string>;

export interface DriverContext {
  clock: Clock;
  log: Logger;
  /** Uniform [0, 1): injected so simulations are reproducible. */
  random: () => number;
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

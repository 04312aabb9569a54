// A software sensor for laptops and demos: each quantity takes a bounded random walk.
// Needs no hardware, so it works in simulate and linux mode alike.
import type { Device, DriverContext, DriverDefinition, QuantityInfo } from "./types.js";

export interface SimulatedQuantity {
  start: number;
  min: number;
  max: number;
  /** Largest change per reading. */
  step: number;
  unit?: string;
  precision: number;
}

export interface SimulatedSensorOptions {
  quantities: Record<string, SimulatedQuantity>;
}

export const simulatedSensor: DriverDefinition<SimulatedSensorOptions> = {
  kind: "simulated_sensor",
  quantities(o) {
    const out: Record<string, QuantityInfo> = {};
    for (const [name, q] of Object.entries(o.quantities)) out[name] = { unit: q.unit, precision: q.precision };
    return out;
  },
  async open(o, ctx: DriverContext): Promise<Device> {
    const value = new Map<string, number>();
    for (const [name, q] of Object.entries(o.quantities)) value.set(name, q.start);
    return {
      async read() {
        const r: Record<string, number> = {};
        for (const [name, q] of Object.entries(o.quantities)) {
          const next = value.get(name)! + (ctx.random() * 2 - 1) * q.step;
          const bounded = Math.min(q.max, Math.max(q.min, next));
          value.set(name, bounded);
          r[name] = bounded;
        }
        return r;
      },
      async close() {},
    };
  },
};

// ROHM BH1750FVI ambient light (lux) on I2C (0x23, or 0x5C with ADDR high): per reading, power on,
// set the measurement time register MTreg, start a one-time high-resolution measurement (the chip
// powers down after it), wait the datasheet MAXIMUM time scaled by MTreg/69 (the chip has no busy
// flag: a read during the conversion returns the previous value), then read two bytes big-endian.
// lux = raw / 1.2 · 69/MTreg, halved in high-resolution mode 2 (datasheet p.11).
import type { Device, DriverContext, DriverDefinition } from "./types.js";
import { chipName, command, openBus, readBytes, wait, withRetry } from "./io/i2c.js";

export type Bh1750Resolution = "high" | "high2";

export interface Bh1750Options {
  bus: number;
  address: number;
  /** Measurement time register, 31..254 (default 69): higher is more sensitive and slower. */
  mtreg: number;
  resolution: Bh1750Resolution;
}

const POWER_ON = 0x01;
const ONE_TIME: Record<Bh1750Resolution, number> = { high: 0x20, high2: 0x21 };
/** Maximum H-resolution measurement time at MTreg 69 (typ. 120 ms). */
const H_RES_MAX_MS = 180;

export function bh1750Lux(raw: number, mtreg: number, resolution: Bh1750Resolution): number {
  return (raw / 1.2) * (69 / mtreg) / (resolution === "high2" ? 2 : 1);
}

export function bh1750WaitMs(mtreg: number): number {
  return Math.ceil((H_RES_MAX_MS * mtreg) / 69);
}

export const bh1750: DriverDefinition<Bh1750Options> = {
  kind: "bh1750",
  quantities: (o) => ({ lux: { unit: "lx", precision: o.resolution === "high2" ? 1 : 0 } }),
  async open(o, ctx: DriverContext): Promise<Device> {
    const who = chipName("BH1750", o.address, o.bus);
    const bus = await openBus(ctx.i2c, o.bus);
    // No id register: an acknowledged power-on is the presence check.
    await withRetry(ctx.clock, who, () => command(bus, o.address, POWER_ON));
    return {
      async read() {
        return withRetry(ctx.clock, who, async () => {
          await command(bus, o.address, POWER_ON);
          // MTreg is set on every reading: a brown-out resets it to 69 without telling anyone.
          await command(bus, o.address, 0x40 | (o.mtreg >> 5));
          await command(bus, o.address, 0x60 | (o.mtreg & 0x1f));
          await command(bus, o.address, ONE_TIME[o.resolution]);
          await wait(ctx.clock, bh1750WaitMs(o.mtreg));
          const d = await readBytes(bus, o.address, 2);
          return { lux: bh1750Lux((d[0]! << 8) | d[1]!, o.mtreg, o.resolution) };
        });
      },
      async close() {},
    };
  },
};

// Sensirion SHT3x-DIS (SHT30/31/35) temperature and humidity on I2C: single-shot measurement
// without clock stretching (0x2400 high repeatability), a wait of the datasheet maximum through the
// clock, NACK polling while it still converts, CRC-8 on each word (retried once, then an error), and
// T = −45 + 175·raw/65535, RH = 100·raw/65535 (datasheet §4.13). Presence is checked at open by a
// soft reset and a CRC-checked status read, since the chip has no id.
import type { Device, DriverContext, DriverDefinition } from "./types.js";
import { chipName, command, crcWord, openBus, readWhenReady, wait, withRetry } from "./io/i2c.js";

export type Repeatability = "high" | "medium" | "low";

export interface Sht3xOptions {
  bus: number;
  address: number;
  repeatability: Repeatability;
}

/** Command and maximum duration (ms) per repeatability, clock stretching disabled (table 9, §2.2). */
const SINGLE_SHOT: Record<Repeatability, { cmd: number; maxMs: number }> = {
  high: { cmd: 0x2400, maxMs: 16 },
  medium: { cmd: 0x240b, maxMs: 7 },
  low: { cmd: 0x2416, maxMs: 5 },
};

export function sht3xTemperature(raw: number): number {
  return -45 + (175 * raw) / 65535;
}

export function sht3xHumidity(raw: number): number {
  return (100 * raw) / 65535;
}

export const sht3x: DriverDefinition<Sht3xOptions> = {
  kind: "sht3x",
  quantities: () => ({ temperature: { unit: "°C", precision: 2 }, humidity: { unit: "%", precision: 1 } }),
  async open(o, ctx: DriverContext): Promise<Device> {
    const who = chipName("SHT3x", o.address, o.bus);
    const bus = await openBus(ctx.i2c, o.bus);
    await withRetry(ctx.clock, who, async () => {
      await command(bus, o.address, 0x30, 0xa2); // soft reset
      await wait(ctx.clock, 2);
      await command(bus, o.address, 0xf3, 0x2d); // read status: a CRC-checked answer proves it is there
      crcWord(await readWhenReady(bus, ctx.clock, o.address, 3), 0, "status register");
    });
    const { cmd, maxMs } = SINGLE_SHOT[o.repeatability];
    return {
      async read() {
        return withRetry(ctx.clock, who, async () => {
          await command(bus, o.address, cmd >> 8, cmd & 0xff);
          await wait(ctx.clock, maxMs);
          const d = await readWhenReady(bus, ctx.clock, o.address, 6);
          const t = crcWord(d, 0, "temperature");
          const rh = crcWord(d, 3, "humidity");
          return { temperature: sht3xTemperature(t), humidity: sht3xHumidity(rh) };
        });
      },
      async close() {},
    };
  },
};

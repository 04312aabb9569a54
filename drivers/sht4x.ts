// Sensirion SHT4x (SHT40/41/45) temperature and humidity on I2C: one-byte commands (0xFD high
// precision, 0xF6 medium, 0xE0 low), a wait of the datasheet maximum, NACK polling, CRC-8 per word
// (retried once, then an error), T = −45 + 175·raw/65535 and RH = −6 + 125·raw/65535 clamped to
// 0..100 (§4.6). Presence is checked at open by a soft reset and a CRC-checked serial number read.
import type { Device, DriverContext, DriverDefinition } from "./types.js";
import { BAD_DATA, chipName, command, crcWord, hex, hwError, openBus, readWhenReady, wait, withRetry } from "./io/i2c.js";

export type Sht4xPrecision = "high" | "medium" | "low";

export interface Sht4xOptions {
  bus: number;
  address: number;
  precision: Sht4xPrecision;
}

/** Command and maximum duration in ms (datasheet table 4). */
const MEASURE: Record<Sht4xPrecision, { cmd: number; maxMs: number }> = {
  high: { cmd: 0xfd, maxMs: 9 },
  medium: { cmd: 0xf6, maxMs: 5 },
  low: { cmd: 0xe0, maxMs: 2 },
};

export function sht4xHumidity(raw: number): number {
  return Math.min(100, Math.max(0, -6 + (125 * raw) / 65535));
}

export const sht4x: DriverDefinition<Sht4xOptions> = {
  kind: "sht4x",
  quantities: () => ({ temperature: { unit: "°C", precision: 2 }, humidity: { unit: "%", precision: 1 } }),
  async open(o, ctx: DriverContext): Promise<Device> {
    const who = chipName("SHT4x", o.address, o.bus);
    const bus = await openBus(ctx.i2c, o.bus);
    const serial = await withRetry(ctx.clock, who, async () => {
      await command(bus, o.address, 0x94); // soft reset, 1 ms
      await wait(ctx.clock, 1);
      await command(bus, o.address, 0x89); // serial number
      await wait(ctx.clock, 1);
      const d = await readWhenReady(bus, ctx.clock, o.address, 6);
      const s = ((crcWord(d, 0, "serial number") << 16) | crcWord(d, 3, "serial number")) >>> 0;
      if (s === 0 || s === 0xffffffff) throw hwError(`implausible serial number 0x${hex(s, 8)}: not an SHT4x?`, BAD_DATA);
      return s;
    });
    ctx.log.debug("SHT4x found", { serial: hex(serial, 8) });
    const { cmd, maxMs } = MEASURE[o.precision];
    return {
      async read() {
        return withRetry(ctx.clock, who, async () => {
          await command(bus, o.address, cmd);
          await wait(ctx.clock, maxMs);
          const d = await readWhenReady(bus, ctx.clock, o.address, 6);
          const t = crcWord(d, 0, "temperature");
          const rh = crcWord(d, 3, "humidity");
          return { temperature: -45 + (175 * t) / 65535, humidity: sht4xHumidity(rh) };
        });
      },
      async close() {},
    };
  },
};

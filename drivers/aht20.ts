// Aosong AHT20 temperature and humidity on I2C (0x38): after power-up, status bit 3 must say
// "calibrated", else the init command 0xBE 0x08 0x00 is sent; a measurement is triggered with
// 0xAC 0x33 0x00, waited for (80 ms) and polled on the busy bit 7; the 7-byte answer carries a
// CRC-8 (0x31, init 0xFF; retried once, then an error); RH = raw·100/2^20, T = raw·200/2^20 − 50.
import type { Device, DriverContext, DriverDefinition } from "./types.js";
import { BUSY, CRC_ERROR, chipName, command, crc8, hex, hwError, openBus, readBytes, wait, withRetry } from "./io/i2c.js";

export interface Aht20Options {
  bus: number;
  address: number;
}

const STATUS_BUSY = 0x80;
const STATUS_CALIBRATED = 0x08;
const MEASURE_MS = 80;
const POLL_MS = 10;
const POLLS = 5;

/** T and RH from the 7-byte answer; throws on a bad CRC. */
export function parseAht20(d: Uint8Array): { temperature: number; humidity: number } {
  const want = crc8(d.subarray(0, 6));
  if (d[6] !== want) throw hwError(`CRC mismatch (received 0x${hex(d[6]!)}, computed 0x${hex(want)}): noise on the bus`, CRC_ERROR);
  const rh = (d[1]! << 12) | (d[2]! << 4) | (d[3]! >> 4);
  const t = ((d[3]! & 0x0f) << 16) | (d[4]! << 8) | d[5]!;
  return { temperature: (t * 200) / 2 ** 20 - 50, humidity: (rh * 100) / 2 ** 20 };
}

export const aht20: DriverDefinition<Aht20Options> = {
  kind: "aht20",
  quantities: () => ({ temperature: { unit: "°C", precision: 2 }, humidity: { unit: "%", precision: 1 } }),
  async open(o, ctx: DriverContext): Promise<Device> {
    const who = chipName("AHT20", o.address, o.bus);
    const bus = await openBus(ctx.i2c, o.bus);
    const status = async () => {
      await command(bus, o.address, 0x71);
      return (await readBytes(bus, o.address, 1))[0]!;
    };
    await withRetry(ctx.clock, who, async () => {
      await wait(ctx.clock, 40); // power-on time before the first command
      if (!((await status()) & STATUS_CALIBRATED)) {
        await command(bus, o.address, 0xbe, 0x08, 0x00);
        await wait(ctx.clock, 10);
        if (!((await status()) & STATUS_CALIBRATED)) throw hwError("not calibrated after the init command (status bit 3 clear)", "EWRONGCHIP");
      }
    });
    return {
      async read() {
        return withRetry(ctx.clock, who, async () => {
          await command(bus, o.address, 0xac, 0x33, 0x00);
          await wait(ctx.clock, MEASURE_MS);
          let d = await readBytes(bus, o.address, 7);
          for (let i = 0; d[0]! & STATUS_BUSY; i++) {
            if (i >= POLLS) throw hwError(`still measuring after ${MEASURE_MS + POLLS * POLL_MS} ms (status bit 7 stuck)`, BUSY);
            await wait(ctx.clock, POLL_MS);
            d = await readBytes(bus, o.address, 7);
          }
          return parseAht20(d);
        });
      },
      async close() {},
    };
  },
};

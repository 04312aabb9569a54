// TE HTU21D(F) (and the register-compatible Silicon Labs Si7021 / Sensirion SHT21) temperature and
// humidity on I2C at 0x40, per the HTU21D(F) datasheet (TE HPC199_6): soft reset 0xFE (≤ 15 ms),
// the resolution set through the user register (read 0xE7, write 0xE6, reserved bits kept), "no hold
// master" measurements 0xF3 (T) and 0xF5 (RH) during which the chip NACKs its read header, answers
// of MSB, LSB, CRC-8 (x^8+x^5+x^4+1 = 0x31, init 0x00) checked on every read (retried once, then an
// error: never published), the two status bits in the LSB masked (bit 1 says which quantity it is,
// so a mixed-up answer is refused), and RH = −6 + 125·S/2^16, T = −46.85 + 175.72·S/2^16.
import type { Device, DriverContext, DriverDefinition } from "./types.js";
import { BAD_DATA, CRC_ERROR, chipName, command, crc8, errorCode, hex, hwError, openBus, readBytes, readWhenReady, wait, withRetry } from "./io/i2c.js";

/** Measurement resolution: RH bits / T bits (user register bits 7 and 0). */
export type Htu21dResolution = "rh12_t14" | "rh8_t12" | "rh10_t13" | "rh11_t11";

export interface Htu21dOptions {
  bus: number;
  address: number;
  resolution: Htu21dResolution;
}

export const CMD_TEMPERATURE_NO_HOLD = 0xf3;
export const CMD_HUMIDITY_NO_HOLD = 0xf5;
export const CMD_WRITE_USER = 0xe6;
export const CMD_READ_USER = 0xe7;
export const CMD_SOFT_RESET = 0xfe;
/** "The soft reset takes less than 15 ms." */
const RESET_MS = 15;

/**
 * User register bits 7,0 and the datasheet's maximum conversion times in ms (resolution table,
 * "Measuring time": RH 16/3/5/8 ms, T 50/13/25/7 ms for the four settings).
 */
export const RESOLUTIONS: Record<Htu21dResolution, { bits: number; rhMs: number; tMs: number }> = {
  rh12_t14: { bits: 0x00, rhMs: 16, tMs: 50 },
  rh8_t12: { bits: 0x01, rhMs: 3, tMs: 13 },
  rh10_t13: { bits: 0x80, rhMs: 5, tMs: 25 },
  rh11_t11: { bits: 0x81, rhMs: 8, tMs: 7 },
};
const RESOLUTION_MASK = 0x81;

/** CRC-8 of the HTU21D: Sensirion's polynomial 0x31 but initial value 0x00 (datasheet "CRC checksum"; 0xDC → 0x79). */
export function htu21dCrc(bytes: ArrayLike<number>): number {
  return crc8(bytes, 0x00);
}

/**
 * The 16-bit signal of a 3-byte answer, status bits cleared. Throws a CRC error on a bad checksum
 * and bad data when status bit 1 names the other quantity (0 = temperature, 1 = humidity).
 */
export function parseAnswer(d: Uint8Array, quantity: "temperature" | "humidity"): number {
  const want = htu21dCrc([d[0]!, d[1]!]);
  if (d[2] !== want) throw hwError(`CRC mismatch on ${quantity} (received 0x${hex(d[2]!)}, computed 0x${hex(want)}): noise on the bus`, CRC_ERROR);
  const isHumidity = (d[1]! & 0x02) !== 0;
  if (isHumidity !== (quantity === "humidity")) {
    throw hwError(`asked for ${quantity}, the status bits say the answer is ${isHumidity ? "humidity" : "temperature"}`, BAD_DATA);
  }
  return ((d[0]! << 8) | d[1]!) & 0xfffc;
}

/** Datasheet "Temperature conversion": T = −46.85 + 175.72 × S_T / 2^16. */
export function htu21dTemperature(signal: number): number {
  return -46.85 + (175.72 * signal) / 65536;
}

/** Datasheet "Relative humidity conversion": RH = −6 + 125 × S_RH / 2^16, which can leave 0..100: clamped. */
export function htu21dHumidity(signal: number): number {
  return Math.min(100, Math.max(0, -6 + (125 * signal) / 65536));
}

export interface Htu21dDevice extends Device {
  /** Answers refused for a bad CRC since open (each is retried once; none is published). */
  readonly crcErrors: number;
}

export const htu21d: DriverDefinition<Htu21dOptions> = {
  kind: "htu21d",
  quantities: () => ({ temperature: { unit: "°C", precision: 2 }, humidity: { unit: "%", precision: 1 } }),
  async open(o, ctx: DriverContext): Promise<Htu21dDevice> {
    const who = chipName("HTU21D", o.address, o.bus);
    const bus = await openBus(ctx.i2c, o.bus);
    const res = RESOLUTIONS[o.resolution];
    await withRetry(ctx.clock, who, async () => {
      await command(bus, o.address, CMD_SOFT_RESET);
      await wait(ctx.clock, RESET_MS);
      // The user register has no CRC; its reserved bits must be written back as read.
      const read = async () => {
        await command(bus, o.address, CMD_READ_USER);
        return (await readBytes(bus, o.address, 1))[0]!;
      };
      const user = await read();
      const next = (user & ~RESOLUTION_MASK) | res.bits;
      if (next !== user) {
        await command(bus, o.address, CMD_WRITE_USER, next);
        const back = await read();
        if ((back & RESOLUTION_MASK) !== res.bits) {
          throw hwError(`resolution not taken (user register 0x${hex(back)} after writing 0x${hex(next)}): not an HTU21D/Si7021?`, "EWRONGCHIP");
        }
      }
    });
    let crcErrors = 0;
    const measure = async (cmd: number, ms: number, quantity: "temperature" | "humidity"): Promise<number> => {
      await command(bus, o.address, cmd);
      await wait(ctx.clock, ms);
      const d = await readWhenReady(bus, ctx.clock, o.address, 3);
      try {
        return parseAnswer(d, quantity);
      } catch (err) {
        if (errorCode(err) === CRC_ERROR) {
          crcErrors++;
          ctx.log.debug("CRC error", { chip: who, quantity, crc_errors: crcErrors });
        }
        throw err;
      }
    };
    return {
      get crcErrors() {
        return crcErrors;
      },
      async read() {
        const temperature = htu21dTemperature(await withRetry(ctx.clock, who, () => measure(CMD_TEMPERATURE_NO_HOLD, res.tMs, "temperature")));
        const humidity = htu21dHumidity(await withRetry(ctx.clock, who, () => measure(CMD_HUMIDITY_NO_HOLD, res.rhMs, "humidity")));
        return { temperature, humidity };
      },
      async close() {},
    };
  },
};

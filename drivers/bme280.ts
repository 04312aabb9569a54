// Bosch BME280 (temperature, humidity, pressure) and BMP280 (no humidity) on I2C, per the BME280
// datasheet (BST-BME280-DS002): chip id check, soft reset and NVM wait, calibration readout (with
// the split H4/H5 nibbles), one forced-mode conversion per reading (ctrl_hum written before
// ctrl_meas, §5.4.3), busy polling of status bit 3, burst read 0xF7.., skipped values (0x80000)
// refused, and the datasheet's integer compensation (32-bit T and H, 64-bit P).
import type { Device, DriverContext, DriverDefinition, QuantityInfo, Reading } from "./types.js";
import { BAD_DATA, BUSY, chipName, hex, hwError, type I2cBus, openBus, wait, withRetry } from "./io/i2c.js";

export interface Bme280Options {
  bus: number;
  address: number;
}

export interface Calibration {
  T1: number; T2: number; T3: number;
  P1: number; P2: number; P3: number; P4: number; P5: number; P6: number; P7: number; P8: number; P9: number;
  H1: number; H2: number; H3: number; H4: number; H5: number; H6: number;
}

const REG_ID = 0xd0;
const REG_RESET = 0xe0;
const REG_CTRL_HUM = 0xf2;
const REG_STATUS = 0xf3;
const REG_CTRL_MEAS = 0xf4;
const REG_CONFIG = 0xf5;
const REG_DATA = 0xf7;
const CHIP_BME280 = 0x60;
const CHIP_BMP280 = 0x58;
/** Oversampling x1 for T, P and H; forced mode. Bosch's "weather monitoring" setting (§3.5.1). */
const CTRL_HUM = 0x01;
const CTRL_MEAS_FORCED = (0x01 << 5) | (0x01 << 2) | 0x01;
/** §9.1 maximum measurement time with x1 everywhere: 1.25 + 2.3 + 2.875 + 2.875 ms. */
const MEASURE_MAX_MS = 10;
const POLL_MS = 2;
const POLLS = 10;

const s16 = (v: number) => (v << 16) >> 16;
const s8 = (v: number) => (v << 24) >> 24;

/** Calibration from the 26 bytes at 0x88..0xA1 and (BME280) the 7 bytes at 0xE1..0xE7 (§4.2.2, table 16). */
export function parseCalibration(a: Uint8Array, h?: Uint8Array): Calibration {
  const u = (i: number) => a[i]! | (a[i + 1]! << 8);
  const s = (i: number) => s16(u(i));
  const c: Calibration = {
    T1: u(0), T2: s(2), T3: s(4),
    P1: u(6), P2: s(8), P3: s(10), P4: s(12), P5: s(14), P6: s(16), P7: s(18), P8: s(20), P9: s(22),
    H1: 0, H2: 0, H3: 0, H4: 0, H5: 0, H6: 0,
  };
  if (h) {
    c.H1 = a[25]!;
    c.H2 = s16(h[0]! | (h[1]! << 8));
    c.H3 = h[2]!;
    // 12-bit signed values sharing 0xE5: H4 = E4[7:0] E5[3:0], H5 = E6[7:0] E5[7:4]; E4/E6 carry the sign.
    c.H4 = (s8(h[3]!) * 16) | (h[4]! & 0x0f);
    c.H5 = (s8(h[5]!) * 16) | (h[4]! >> 4);
    c.H6 = s8(h[6]!);
  }
  return c;
}

/** §4.2.3 BME280_compensate_T_int32: temperature in 0.01 °C and t_fine. */
export function compensateTemperature(c: Calibration, adcT: number): { centi: number; tFine: number } {
  const var1 = Math.imul((adcT >> 3) - (c.T1 << 1), c.T2) >> 11;
  const d = (adcT >> 4) - c.T1;
  const var2 = Math.imul(Math.imul(d, d) >> 12, c.T3) >> 14;
  const tFine = (var1 + var2) | 0;
  return { centi: (Math.imul(tFine, 5) + 128) >> 8, tFine };
}

/** §4.2.3 BME280_compensate_P_int64: pressure in Pa as Q24.8 (divide by 256). 0 if the calibration is invalid. */
export function compensatePressure(c: Calibration, adcP: number, tFine: number): number {
  const B = BigInt;
  let var1 = B(tFine) - 128000n;
  let var2 = var1 * var1 * B(c.P6);
  var2 = var2 + ((var1 * B(c.P5)) << 17n);
  var2 = var2 + (B(c.P4) << 35n);
  var1 = ((var1 * var1 * B(c.P3)) >> 8n) + ((var1 * B(c.P2)) << 12n);
  var1 = (((1n << 47n) + var1) * B(c.P1)) >> 33n;
  if (var1 === 0n) return 0;
  let p = 1048576n - B(adcP);
  p = (((p << 31n) - var2) * 3125n) / var1;
  var1 = (B(c.P9) * (p >> 13n) * (p >> 13n)) >> 25n;
  var2 = (B(c.P8) * p) >> 19n;
  p = ((p + var1 + var2) >> 8n) + (B(c.P7) << 4n);
  return Number(p);
}

/** §4.2.3 bme280_compensate_H_int32: relative humidity in %RH as Q22.10 (divide by 1024). */
export function compensateHumidity(c: Calibration, adcH: number, tFine: number): number {
  let v = (tFine - 76800) | 0;
  const a = ((adcH << 14) - (c.H4 << 20) - Math.imul(c.H5, v) + 16384) >> 15;
  const b =
    (Math.imul(
      ((Math.imul(Math.imul(v, c.H6) >> 10, (Math.imul(v, c.H3) >> 11) + 32768) >> 10) + 2097152) | 0,
      c.H2,
    ) +
      8192) >>
    14;
  v = Math.imul(a, b);
  v = v - ((Math.imul(Math.imul(v >> 15, v >> 15) >> 7, c.H1)) >> 4);
  v = Math.min(Math.max(v, 0), 419430400);
  return v >>> 12;
}

export interface Bme280Raw {
  adcT: number;
  adcP: number;
  adcH?: number;
}

/** The burst read 0xF7..0xFC (P, T: 20 bits, msb first) and 0xFD..0xFE (H: 16 bits). */
export function parseRaw(d: Uint8Array): Bme280Raw {
  const adcP = (d[0]! << 12) | (d[1]! << 4) | (d[2]! >> 4);
  const adcT = (d[3]! << 12) | (d[4]! << 4) | (d[5]! >> 4);
  return d.length >= 8 ? { adcP, adcT, adcH: (d[6]! << 8) | d[7]! } : { adcP, adcT };
}

/** Compensated values: °C, hPa, %RH. Throws on the "skipped" values, which mean no conversion happened. */
export function compensate(c: Calibration, raw: Bme280Raw): { temperature: number; pressure: number; humidity?: number } {
  if (raw.adcT === 0x80000) throw hwError("temperature not measured (raw 0x80000)", BAD_DATA);
  if (raw.adcP === 0x80000) throw hwError("pressure not measured (raw 0x80000)", BAD_DATA);
  const { centi, tFine } = compensateTemperature(c, raw.adcT);
  const pa = compensatePressure(c, raw.adcP, tFine) / 256;
  if (pa === 0) throw hwError("pressure compensation failed (invalid calibration)", BAD_DATA);
  const out: { temperature: number; pressure: number; humidity?: number } = { temperature: centi / 100, pressure: pa / 100 };
  if (raw.adcH !== undefined) {
    if (raw.adcH === 0x8000) throw hwError("humidity not measured (raw 0x8000)", BAD_DATA);
    out.humidity = compensateHumidity(c, raw.adcH, tFine) / 1024;
  }
  return out;
}

async function readBlock(bus: I2cBus, address: number, reg: number, length: number): Promise<Uint8Array> {
  const buf = Buffer.alloc(length);
  const { bytesRead } = await bus.readI2cBlock(address, reg, length, buf);
  if (bytesRead !== length) throw hwError(`short read at 0x${hex(reg)}: ${bytesRead} of ${length} bytes`, BAD_DATA);
  return buf;
}

function definition(kind: "bme280" | "bmp280"): DriverDefinition<Bme280Options> {
  const withHumidity = kind === "bme280";
  const chip = kind.toUpperCase();
  const expectedId = withHumidity ? CHIP_BME280 : CHIP_BMP280;
  return {
    kind,
    quantities() {
      const q: Record<string, QuantityInfo> = { temperature: { unit: "°C", precision: 2 } };
      if (withHumidity) q.humidity = { unit: "%", precision: 1 };
      q.pressure = { unit: "hPa", precision: 1 };
      return q;
    },
    async open(o, ctx: DriverContext): Promise<Device> {
      const who = chipName(chip, o.address, o.bus);
      const bus = await openBus(ctx.i2c, o.bus);
      const calibration = await withRetry(ctx.clock, who, async () => {
        const id = await bus.readByte(o.address, REG_ID);
        if (id !== expectedId) {
          const other = id === CHIP_BME280 ? " (a BME280: use type bme280)" : id === CHIP_BMP280 ? " (a BMP280: use type bmp280)" : "";
          throw hwError(`chip id 0x${hex(id)}, expected 0x${hex(expectedId)}${other}`, "EWRONGCHIP");
        }
        await bus.writeByte(o.address, REG_RESET, 0xb6);
        // Start-up and NVM copy: status bit 0 (im_update) clears when the calibration is readable.
        let polls = 0;
        do {
          await wait(ctx.clock, POLL_MS);
          if (++polls > POLLS) throw hwError("still copying its calibration after reset (status bit 0 stuck)", BUSY);
        } while ((await bus.readByte(o.address, REG_STATUS)) & 0x01);
        const a = await readBlock(bus, o.address, 0x88, 26);
        const h = withHumidity ? await readBlock(bus, o.address, 0xe1, 7) : undefined;
        await bus.writeByte(o.address, REG_CONFIG, 0x00); // no standby, IIR filter off
        const c = parseCalibration(a, h);
        if (c.T1 === 0 || c.P1 === 0) throw hwError("calibration reads as zero", BAD_DATA);
        return c;
      });
      ctx.log.debug("calibration read", { chip: who });
      return {
        async read() {
          return withRetry(ctx.clock, who, async () => {
            if (withHumidity) await bus.writeByte(o.address, REG_CTRL_HUM, CTRL_HUM); // must precede ctrl_meas
            await bus.writeByte(o.address, REG_CTRL_MEAS, CTRL_MEAS_FORCED);
            await wait(ctx.clock, MEASURE_MAX_MS);
            let polls = 0;
            while ((await bus.readByte(o.address, REG_STATUS)) & 0x08) {
              if (++polls > POLLS) throw hwError(`still measuring after ${MEASURE_MAX_MS + POLLS * POLL_MS} ms (status bit 3 stuck)`, BUSY);
              await wait(ctx.clock, POLL_MS);
            }
            const raw = parseRaw(await readBlock(bus, o.address, REG_DATA, withHumidity ? 8 : 6));
            const r = compensate(calibration, raw);
            const reading: Reading = { temperature: r.temperature };
            if (r.humidity !== undefined) reading.humidity = r.humidity;
            reading.pressure = r.pressure;
            return reading;
          });
        },
        async close() {},
      };
    },
  };
}

export const bme280 = definition("bme280");
export const bmp280 = definition("bmp280");

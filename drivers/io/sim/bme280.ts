// Register-level model of the Bosch BME280 (chip id 0x60) and BMP280 (0x58): a 256-byte register
// file with auto-increment reads and (register, value) pair writes, soft reset (0xE0 ← 0xB6) with an
// NVM copy (status bit 0), ctrl_hum latched only by a ctrl_meas write, forced mode with a busy time
// from the oversampling (status bit 3), skipped measurements reading 0x80000 / 0x8000, and raw ADC
// values found by inverting the datasheet's floating-point compensation (BME280 §8.1) — a formula
// independent of the driver's integer one, so driver-vs-model tests cross-check the two.
import type { Clock } from "../../../hub/contracts.js";
import type { Environment } from "./environment.js";
import { invertMonotonic } from "./environment.js";
import { type ChipFaults, nack, noFaults, type SimChip } from "./i2c-bus.js";

export interface Bme280Calibration {
  T1: number; T2: number; T3: number;
  P1: number; P2: number; P3: number; P4: number; P5: number; P6: number; P7: number; P8: number; P9: number;
  H1: number; H2: number; H3: number; H4: number; H5: number; H6: number;
}

/** T and P from the BMP280 datasheet's worked example (§3.12); H from a real BME280. */
export const EXAMPLE_CALIBRATION: Bme280Calibration = {
  T1: 27504, T2: 26435, T3: -1000,
  P1: 36477, P2: -10685, P3: 3024, P4: 2855, P5: 140, P6: -7, P7: 15500, P8: -14600, P9: 6000,
  H1: 75, H2: 362, H3: 0, H4: 313, H5: 50, H6: 30,
};

export interface RawAdc {
  t: number;
  p: number;
  h: number;
}

export interface Bme280Model extends SimChip {
  readonly registers: Uint8Array;
  /** Forces the ADC values of the next conversions (datasheet vectors); undefined goes back to the environment. */
  setRaw(raw: Partial<RawAdc> | undefined): void;
  /** Forced conversions started so far. */
  conversions: number;
}

export interface Bme280Options {
  clock: Clock;
  env: Environment;
  variant?: "bme280" | "bmp280";
  calibration?: Bme280Calibration;
}

/** After a soft reset: no acknowledge for BOOT_MS, then im_update (status bit 0) until NVM_COPY_MS. */
const BOOT_MS = 1;
const NVM_COPY_MS = 2;
const OVERSAMPLING = [0, 1, 2, 4, 8, 16, 16, 16];

/** Datasheet §8.1 (double precision): raw → °C, t_fine. */
export function floatTemperature(c: Bme280Calibration, adcT: number): { t: number; tFine: number } {
  const v1 = (adcT / 16384 - c.T1 / 1024) * c.T2;
  const v2 = (adcT / 131072 - c.T1 / 8192) * (adcT / 131072 - c.T1 / 8192) * c.T3;
  const tFine = v1 + v2;
  return { t: tFine / 5120, tFine };
}

/** Datasheet §8.1: raw → Pa. */
export function floatPressure(c: Bme280Calibration, adcP: number, tFine: number): number {
  let v1 = tFine / 2 - 64000;
  let v2 = (v1 * v1 * c.P6) / 32768;
  v2 = v2 + v1 * c.P5 * 2;
  v2 = v2 / 4 + c.P4 * 65536;
  v1 = ((c.P3 * v1 * v1) / 524288 + c.P2 * v1) / 524288;
  v1 = (1 + v1 / 32768) * c.P1;
  if (v1 === 0) return 0;
  let p = 1048576 - adcP;
  p = ((p - v2 / 4096) * 6250) / v1;
  v1 = (c.P9 * p * p) / 2147483648;
  v2 = (p * c.P8) / 32768;
  return p + (v1 + v2 + c.P7) / 16;
}

/** Datasheet §8.1: raw → %RH (unclamped, so the inversion stays monotonic). */
export function floatHumidity(c: Bme280Calibration, adcH: number, tFine: number): number {
  let h = tFine - 76800;
  h = (adcH - (c.H4 * 64 + (c.H5 / 16384) * h)) * ((c.H2 / 65536) * (1 + (c.H6 / 67108864) * h * (1 + (c.H3 / 67108864) * h)));
  return h * (1 - (c.H1 * h) / 524288);
}

function putLe16(r: Uint8Array, at: number, v: number): void {
  r[at] = v & 0xff;
  r[at + 1] = (v >> 8) & 0xff;
}

/** Writes the calibration into the NVM registers, in the datasheet's (odd) layout for H4/H5. */
export function encodeCalibration(r: Uint8Array, c: Bme280Calibration, humidity: boolean): void {
  const words = [c.T1, c.T2, c.T3, c.P1, c.P2, c.P3, c.P4, c.P5, c.P6, c.P7, c.P8, c.P9];
  words.forEach((w, i) => {
    putLe16(r, 0x88 + 2 * i, w);
  });
  if (!humidity) return;
  r[0xa1] = c.H1 & 0xff;
  putLe16(r, 0xe1, c.H2);
  r[0xe3] = c.H3 & 0xff;
  r[0xe4] = (c.H4 >> 4) & 0xff;
  r[0xe5] = (c.H4 & 0x0f) | ((c.H5 & 0x0f) << 4);
  r[0xe6] = (c.H5 >> 4) & 0xff;
  r[0xe7] = c.H6 & 0xff;
}

export function createBme280(o: Bme280Options): Bme280Model {
  const humidity = (o.variant ?? "bme280") === "bme280";
  const chipId = humidity ? 0x60 : 0x58;
  const cal = o.calibration ?? EXAMPLE_CALIBRATION;
  const faults: ChipFaults = noFaults();
  const r = new Uint8Array(256);
  let pointer = 0;
  let ctrlHumLatched = 0;
  let resetAt = -Infinity;
  let pending: { at: number; data: number[] } | undefined;
  let forced: Partial<RawAdc> | undefined;

  const powerOn = () => {
    r.fill(0);
    r[0xd0] = chipId;
    encodeCalibration(r, cal, humidity);
    r.set([0x80, 0x00, 0x00, 0x80, 0x00, 0x00], 0xf7); // reset values: 0x80000 = no data
    if (humidity) r.set([0x80, 0x00], 0xfd);
    ctrlHumLatched = 0;
    pending = undefined;
  };
  powerOn();

  /** The ADC values a conversion of the current environment gives, quantised to the oversampling's resolution. */
  const convert = (osT: number, osP: number, osH: number): number[] => {
    const e = o.env();
    const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));
    let t = forced?.t ?? invertMonotonic((x) => floatTemperature(cal, x).t, clamp(e.temperature, -40, 85), 0, 0xfffff);
    const tFine = floatTemperature(cal, t).tFine;
    let p = forced?.p ?? invertMonotonic((x) => floatPressure(cal, x, tFine), clamp(e.pressure, 30000, 110000), 0, 0xfffff);
    let h = forced?.h ?? invertMonotonic((x) => floatHumidity(cal, x, tFine), clamp(e.humidity, 0, 100), 0, 0xffff);
    // Without the IIR filter the resolution is 16 + (oversampling bits - 1): the low bits read 0 (§3.4.3).
    const quantise = (v: number, os: number) => (forced ? v : v & ~((1 << (4 - Math.log2(os))) - 1) & 0xfffff);
    t = OVERSAMPLING[osT] ? quantise(t, OVERSAMPLING[osT]!) : 0x80000;
    p = OVERSAMPLING[osP] ? quantise(p, OVERSAMPLING[osP]!) : 0x80000;
    h = OVERSAMPLING[osH] ? h : 0x8000;
    const data = [p >> 12, (p >> 4) & 0xff, (p & 0x0f) << 4, t >> 12, (t >> 4) & 0xff, (t & 0x0f) << 4];
    if (humidity) data.push(h >> 8, h & 0xff);
    return data;
  };

  /** Datasheet §9.1 typical measurement time, in ms. */
  const measureMs = (osT: number, osP: number, osH: number) => {
    const n = (os: number) => OVERSAMPLING[os]!;
    return 1 + 2 * n(osT) + (n(osP) ? 2 * n(osP) + 0.5 : 0) + (humidity && n(osH) ? 2 * n(osH) + 0.5 : 0);
  };

  const settle = () => {
    if (pending && !faults.stuckBusy && o.clock.monotonic() >= pending.at) {
      r.set(pending.data, 0xf7);
      pending = undefined;
      r[0xf4]! &= 0xfc; // forced mode returns to sleep
    }
  };

  const writeRegister = (reg: number, value: number) => {
    if (reg === 0xe0) {
      if (value === 0xb6) {
        powerOn();
        resetAt = o.clock.monotonic();
      }
      return;
    }
    if (reg === 0xf2 && humidity) r[0xf2] = value & 0x07;
    else if (reg === 0xf5) r[0xf5] = value & 0xfd;
    else if (reg === 0xf4) {
      r[0xf4] = value;
      ctrlHumLatched = humidity ? r[0xf2]! : 0; // ctrl_hum takes effect only after a ctrl_meas write (§5.4.3)
      const mode = value & 0x03;
      const osT = value >> 5;
      const osP = (value >> 2) & 0x07;
      if (mode === 0x01 || mode === 0x02) {
        model.conversions++;
        pending = { at: o.clock.monotonic() + measureMs(osT, osP, ctrlHumLatched), data: convert(osT, osP, ctrlHumLatched) };
      }
    }
  };

  const readRegister = (reg: number): number => {
    if (reg === 0xd0 && faults.wrongId) return 0x55;
    if (reg === 0xf3) {
      const now = o.clock.monotonic();
      const r3 = (r[0xf4]! & 0x03) === 0x03;
      return (pending || r3 ? 0x08 : 0) | (now < resetAt + NVM_COPY_MS ? 0x01 : 0);
    }
    if (reg >= 0xf7 && reg <= 0xfe && (r[0xf4]! & 0x03) === 0x03) {
      // Normal mode: a fresh conversion is always there.
      const v = r[0xf4]!;
      r.set(convert(v >> 5, (v >> 2) & 0x07, ctrlHumLatched), 0xf7);
    }
    return r[reg & 0xff]!;
  };

  // Right after a reset the chip is starting up and does not acknowledge (start-up time, §1).
  const booting = (what: string) => {
    if (o.clock.monotonic() < resetAt + BOOT_MS) throw nack(what);
  };

  const model: Bme280Model = {
    faults,
    registers: r,
    conversions: 0,
    setRaw(raw) {
      forced = raw;
    },
    write(bytes) {
      booting("write");
      if (bytes.length === 0) return;
      settle();
      pointer = bytes[0]!;
      // Writes are (register, value) pairs; no auto-increment (§6.2.1).
      for (let i = 0; i + 1 < bytes.length; i += 2) writeRegister(bytes[i]!, bytes[i + 1]!);
    },
    read(length) {
      booting("read");
      settle();
      const out = new Uint8Array(length);
      for (let i = 0; i < length; i++) out[i] = readRegister((pointer + i) & 0xff);
      pointer = (pointer + length) & 0xff;
      return out;
    },
  };
  return model;
}

// Model of the TI ADS1115 16-bit ADC (0x48..0x4B): a pointer register selects one of four 16-bit
// registers (conversion 0x00, config 0x01, thresholds 0x02/0x03), all MSB first; writing config with
// OS=1 in single-shot mode starts a conversion lasting 1/DR, during which OS reads 0 and the
// conversion register keeps the old result; results are clipped at 0x7FFF / 0x8000 (§9.3.3).
// Inputs are the environment's four analog voltages.
import type { Clock } from "../../../hub/contracts.js";
import type { Environment } from "./environment.js";
import { noFaults, type SimChip } from "./i2c-bus.js";

export interface Ads1115Model extends SimChip {
  conversions: number;
  readonly registers: Uint16Array;
}

/** Full-scale range in volts per PGA code (§9.3.3). */
export const FSR = [6.144, 4.096, 2.048, 1.024, 0.512, 0.256, 0.256, 0.256];
/** Samples per second per DR code. */
export const DATA_RATE = [8, 16, 32, 64, 128, 250, 475, 860];

/** The code the ADC gives for `volts` at full-scale `fsr`, clipped (§9.3.3, table 3). */
export function adcCode(volts: number, fsr: number): number {
  return Math.max(-32768, Math.min(32767, Math.round((volts / fsr) * 32768)));
}

export function createAds1115(o: { clock: Clock; env: Environment }): Ads1115Model {
  const faults = noFaults();
  const reg = Uint16Array.of(0x0000, 0x8583, 0x8000, 0x7fff); // power-on values
  let pointer = 0;
  let pending: { at: number; value: number } | undefined;
  const now = () => o.clock.monotonic();

  const input = (config: number): number => {
    const a = o.env().analog;
    const mux = (config >> 12) & 0x07;
    // 0..3 differential (AIN0-AIN1, AIN0-AIN3, AIN1-AIN3, AIN2-AIN3); 4..7 single-ended AINx - GND.
    const diff: Array<[number, number]> = [[0, 1], [0, 3], [1, 3], [2, 3]];
    if (mux >= 4) return a[mux - 4]!;
    const [p, n] = diff[mux]!;
    return a[p]! - a[n]!;
  };
  const sample = (config: number) => adcCode(input(config), FSR[(config >> 9) & 0x07]!) & 0xffff;
  const settle = () => {
    if (pending && !faults.stuckBusy && now() >= pending.at) {
      reg[0] = pending.value;
      pending = undefined;
    }
  };

  const model: Ads1115Model = {
    faults,
    conversions: 0,
    registers: reg,
    write(bytes) {
      settle();
      if (bytes.length === 0) return;
      pointer = bytes[0]! & 0x03;
      if (bytes.length < 3) return;
      const value = (bytes[1]! << 8) | bytes[2]!;
      if (pointer === 0) return; // the conversion register is read-only
      if (pointer !== 1) {
        reg[pointer] = value;
        return;
      }
      reg[1] = value & 0x7fff;
      const singleShot = (value & 0x0100) !== 0;
      if (singleShot && value & 0x8000) {
        model.conversions++;
        const ms = 1000 / DATA_RATE[(value >> 5) & 0x07]!;
        pending = { at: now() + ms, value: sample(value) };
      }
    },
    read(length) {
      settle();
      let v: number;
      if (pointer === 1) v = reg[1]! | (pending ? 0 : 0x8000); // OS: 0 while converting
      else if (pointer === 0 && !(reg[1]! & 0x0100)) v = sample(reg[1]!); // continuous mode
      else v = reg[pointer]!;
      const out = new Uint8Array(length);
      for (let i = 0; i < length; i++) out[i] = i % 2 === 0 ? v >> 8 : v & 0xff;
      return out;
    },
  };
  return model;
}

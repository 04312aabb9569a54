// TI ADS1115 four-channel 16-bit ADC on I2C (0x48..0x4B): each configured channel is converted in
// single-shot mode (OS=1, single-ended MUX 0x4000..0x7000, a PGA range per channel, 128 SPS,
// comparator off), waited for through the clock and polled on OS, then read as a signed 16-bit value
// MSB first: V = raw·FSR/32768. A result at either clipping code means the input is out of range and
// is refused rather than published. An optional linear scale maps two voltages to two values.
import type { Device, DriverContext, DriverDefinition, QuantityInfo, Reading } from "./types.js";
import { BAD_DATA, BUSY, chipName, command, hwError, type I2cBus, openBus, wait, withRetry } from "./io/i2c.js";

export type Ads1115Range = 6.144 | 4.096 | 2.048 | 1.024 | 0.512 | 0.256;

export interface Ads1115Channel {
  /** AIN0..AIN3, measured against GND. */
  input: number;
  /** Full-scale range in volts (the PGA setting). */
  range: Ads1115Range;
  /** Linear map from volts to a value: volts[0] → values[0], volts[1] → values[1]. */
  scale?: { volts: [number, number]; values: [number, number] };
  unit?: string;
  precision: number;
}

export interface Ads1115Options {
  bus: number;
  address: number;
  channels: Record<string, Ads1115Channel>;
}

const PGA: Record<string, number> = { "6.144": 0, "4.096": 1, "2.048": 2, "1.024": 3, "0.512": 4, "0.256": 5 };
/** 128 SPS: a conversion takes 7.8 ms; the oscillator may be 10 % slow. */
const DR_128 = 0x04;
const CONVERSION_MS = 9;
const POLL_MS = 2;
const POLLS = 5;

/** Config word for one single-shot, single-ended conversion (§9.6.3). */
export function configWord(input: number, range: Ads1115Range): number {
  return 0x8000 | ((4 + input) << 12) | (PGA[String(range)]! << 9) | 0x0100 | (DR_128 << 5) | 0x0003;
}

export function volts(raw: number, range: Ads1115Range): number {
  return ((raw << 16) >> 16) * (range / 32768);
}

export function scaled(v: number, scale: Ads1115Channel["scale"]): number {
  if (!scale) return v;
  const [v0, v1] = scale.volts;
  const [y0, y1] = scale.values;
  return y0 + ((v - v0) * (y1 - y0)) / (v1 - v0);
}

async function register(bus: I2cBus, address: number, pointer: number): Promise<number> {
  const buf = Buffer.alloc(2);
  const { bytesRead } = await bus.readI2cBlock(address, pointer, 2, buf);
  if (bytesRead !== 2) throw hwError(`short read: ${bytesRead} of 2 bytes`, BAD_DATA);
  return (buf[0]! << 8) | buf[1]!;
}

export const ads1115: DriverDefinition<Ads1115Options> = {
  kind: "ads1115",
  quantities(o) {
    const q: Record<string, QuantityInfo> = {};
    for (const [name, c] of Object.entries(o.channels)) q[name] = { unit: c.unit ?? (c.scale ? undefined : "V"), precision: c.precision };
    return q;
  },
  async open(o, ctx: DriverContext): Promise<Device> {
    const who = chipName("ADS1115", o.address, o.bus);
    const bus = await openBus(ctx.i2c, o.bus);
    // No id register: an acknowledged read of the config register is the presence check.
    await withRetry(ctx.clock, who, () => register(bus, o.address, 0x01));
    return {
      async read() {
        const r: Reading = {};
        for (const [name, c] of Object.entries(o.channels)) {
          r[name] = await withRetry(ctx.clock, `${who} AIN${c.input}`, async () => {
            const cfg = configWord(c.input, c.range);
            await command(bus, o.address, 0x01, cfg >> 8, cfg & 0xff);
            await wait(ctx.clock, CONVERSION_MS);
            for (let i = 0; !((await register(bus, o.address, 0x01)) & 0x8000); i++) {
              if (i >= POLLS) throw hwError(`still converting after ${CONVERSION_MS + POLLS * POLL_MS} ms (OS bit stuck)`, BUSY);
              await wait(ctx.clock, POLL_MS);
            }
            const raw = await register(bus, o.address, 0x00);
            if (raw === 0x7fff || raw === 0x8000) {
              throw hwError(`input at the end of the ±${c.range} V range (clipped): choose a larger range`, BAD_DATA);
            }
            return scaled(volts(raw, c.range), c.scale);
          });
        }
        return r;
      },
      async close() {},
    };
  },
};

// Model of the ROHM BH1750FVI light sensor (0x23 with ADDR low, 0x5C high): one-byte opcodes,
// power-down at start, power on 0x01, reset 0x07 (only when powered), continuous and one-time modes
// (one-time returns to power-down when done), the measurement time register MTreg (0x40|hi3,
// 0x60|lo5; default 69) scaling both sensitivity and time, and a 2-byte big-endian result. Like the
// real chip, a read during a conversion returns the previous result, not an error: only waiting
// long enough gives a fresh value.
import type { Clock } from "../../../hub/contracts.js";
import type { Environment } from "./environment.js";
import { noFaults, type SimChip } from "./i2c-bus.js";

export interface Bh1750Model extends SimChip {
  measurements: number;
  readonly powered: boolean;
  readonly mtreg: number;
}

/** Typical conversion times at MTreg 69 (datasheet p.2): H-res modes 120 ms, L-res 16 ms. */
const MODES = new Map<number, { ms: number; half: boolean; once: boolean }>([
  [0x10, { ms: 120, half: false, once: false }],
  [0x11, { ms: 120, half: true, once: false }],
  [0x13, { ms: 16, half: false, once: false }],
  [0x20, { ms: 120, half: false, once: true }],
  [0x21, { ms: 120, half: true, once: true }],
  [0x23, { ms: 16, half: false, once: true }],
]);

export function createBh1750(o: { clock: Clock; env: Environment }): Bh1750Model {
  const faults = noFaults();
  let powered = false;
  let mt = 69;
  let data = 0;
  let conversion: { until: number; value: number; once: boolean; mode: number } | undefined;
  const now = () => o.clock.monotonic();

  const sample = (half: boolean) => {
    const counts = o.env().lux * 1.2 * (mt / 69) * (half ? 2 : 1);
    return Math.max(0, Math.min(0xffff, Math.floor(counts)));
  };
  const settle = () => {
    if (!conversion || faults.stuckBusy || now() < conversion.until) return;
    data = conversion.value;
    if (conversion.once) {
      conversion = undefined;
      powered = false; // one-time modes power down after the measurement
    } else {
      const m = MODES.get(conversion.mode)!;
      conversion = { ...conversion, until: now() + (m.ms * mt) / 69, value: sample(m.half) };
    }
  };

  const model: Bh1750Model = {
    faults,
    measurements: 0,
    get powered() {
      return powered;
    },
    get mtreg() {
      return mt;
    },
    write(bytes) {
      settle();
      for (const op of bytes) {
        if (op === 0x00) {
          powered = false;
          conversion = undefined;
        } else if (op === 0x01) powered = true;
        else if (op === 0x07) {
          if (powered) data = 0; // reset clears the data register; ignored in power-down
        } else if ((op & 0xf8) === 0x40) mt = (mt & 0x1f) | ((op & 0x07) << 5);
        else if ((op & 0xe0) === 0x60) mt = (mt & 0xe0) | (op & 0x1f);
        else {
          const m = MODES.get(op);
          if (m && powered) {
            model.measurements++;
            conversion = { until: now() + (m.ms * mt) / 69, value: sample(m.half), once: m.once, mode: op };
          }
        }
      }
    },
    read(length) {
      settle();
      const out = new Uint8Array(length).fill(0xff);
      out.set([data >> 8, data & 0xff].slice(0, length));
      return out;
    },
  };
  return model;
}

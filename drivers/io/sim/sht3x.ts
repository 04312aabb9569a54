// Model of the Sensirion SHT3x-DIS (0x44/0x45) in single-shot mode without clock stretching: 16-bit
// commands (MSB first), a conversion during which every transfer is NACKed, a 6-byte result
// (T, CRC, RH, CRC) read once, a NACK when no data is waiting, soft reset 0x30A2, status register
// 0xF32D with its CRC. Unknown commands are NACKed. Times are the datasheet's typical ones.
import type { Clock } from "../../../hub/contracts.js";
import { crc8 } from "../i2c.js";
import type { Environment } from "./environment.js";
import { type ChipFaults, nack, noFaults, type SimChip } from "./i2c-bus.js";

export interface SensirionModel extends SimChip {
  /** Conversions started so far. */
  measurements: number;
}

/** Word + CRC, with the CRC corrupted when the fault is on. */
export function sensirionWord(word: number, faults: ChipFaults): number[] {
  const b = [(word >> 8) & 0xff, word & 0xff];
  return [...b, crc8(b) ^ (faults.badCrc ? 0x01 : 0)];
}

export const clampWord = (v: number) => Math.max(0, Math.min(0xffff, Math.round(v)));

/** Single shot, no clock stretching (and the stretching variants, treated alike): typical ms. */
const SINGLE_SHOT = new Map<number, number>([
  [0x2400, 12.5], [0x240b, 4.5], [0x2416, 2.5],
  [0x2c06, 12.5], [0x2c0d, 4.5], [0x2c10, 2.5],
]);

export function createSht3x(o: { clock: Clock; env: Environment }): SensirionModel {
  const faults = noFaults();
  let busyUntil = -Infinity;
  let output: number[] | undefined;
  let status = 0x8010; // alert pending + reset detected, as after power-up
  let converting = false;
  const busy = () => (faults.stuckBusy && converting) || o.clock.monotonic() < busyUntil;

  const model: SensirionModel = {
    faults,
    measurements: 0,
    write(bytes) {
      if (busy()) throw nack("write");
      if (bytes.length < 2) return; // an address probe, or half a command: ignored
      const cmd = (bytes[0]! << 8) | bytes[1]!;
      const ms = SINGLE_SHOT.get(cmd);
      if (ms !== undefined) {
        const e = o.env();
        model.measurements++;
        output = [
          ...sensirionWord(clampWord(((e.temperature + 45) * 65535) / 175), faults),
          ...sensirionWord(clampWord((e.humidity * 65535) / 100), faults),
        ];
        busyUntil = o.clock.monotonic() + ms;
        converting = true;
        return;
      }
      switch (cmd) {
        case 0x30a2: // soft reset
          output = undefined;
          converting = false;
          status = 0x0010;
          busyUntil = o.clock.monotonic() + 1;
          return;
        case 0xf32d: // read status
          output = sensirionWord(status, faults);
          return;
        case 0x3041: // clear status
          status = 0;
          return;
        case 0x3093: // break (stops periodic mode; nothing to stop here)
          return;
        default:
          throw nack("write");
      }
    },
    read(length) {
      // While measuring, and when no data is waiting, the read header is not acknowledged (§4.4).
      if (busy() || output === undefined) throw nack("read");
      const out = new Uint8Array(length).fill(0xff);
      out.set(output.slice(0, length));
      output = undefined;
      converting = false;
      return out;
    },
  };
  return model;
}

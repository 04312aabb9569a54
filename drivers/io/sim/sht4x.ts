// Model of the Sensirion SHT4x (SHT40/41/45; 0x44, 0x45 or 0x46): one-byte commands, measurement
// with three precisions, soft reset 0x94, serial number 0x89, every transfer NACKed while busy, a
// 6-byte result (T, CRC, RH, CRC) read once. RH is encoded as −6 + 125·raw/65535 (§4.6), so values
// near 0 or 100 %RH fall outside 0..100 and the driver must clamp.
import type { Clock } from "../../../hub/contracts.js";
import type { Environment } from "./environment.js";
import { nack, noFaults } from "./i2c-bus.js";
import { clampWord, type SensirionModel, sensirionWord } from "./sht3x.js";

/** Measurement commands: typical duration in ms (§3.1 table 3). */
const MEASURE = new Map<number, number>([
  [0xfd, 6.9],
  [0xf6, 3.7],
  [0xe0, 1.3],
]);

export function createSht4x(o: { clock: Clock; env: Environment; serial?: number }): SensirionModel {
  const faults = noFaults();
  const serial = o.serial ?? 0x0e5a2c41;
  let busyUntil = -Infinity;
  let output: number[] | undefined;
  let converting = false;
  const busy = () => (faults.stuckBusy && converting) || o.clock.monotonic() < busyUntil;

  const model: SensirionModel = {
    faults,
    measurements: 0,
    write(bytes) {
      if (busy()) throw nack("write");
      if (bytes.length === 0) return;
      const cmd = bytes[0]!;
      const ms = MEASURE.get(cmd);
      if (ms !== undefined) {
        const e = o.env();
        model.measurements++;
        // Raw RH may exceed 0..100 %RH after conversion; the chip does not clamp (§4.6).
        output = [
          ...sensirionWord(clampWord(((e.temperature + 45) * 65535) / 175), faults),
          ...sensirionWord(clampWord(((e.humidity + 6) * 65535) / 125), faults),
        ];
        busyUntil = o.clock.monotonic() + ms;
        converting = true;
      } else if (cmd === 0x94) {
        output = undefined;
        converting = false;
        busyUntil = o.clock.monotonic() + 1;
      } else if (cmd === 0x89) {
        const s = faults.wrongId ? 0 : serial;
        output = [...sensirionWord(s >>> 16, faults), ...sensirionWord(s & 0xffff, faults)];
        busyUntil = o.clock.monotonic() + 0.5;
      } else throw nack("write");
    },
    read(length) {
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

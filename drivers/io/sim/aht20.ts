// Model of the Aosong AHT20 (0x38): a status byte (bit 7 busy, bit 3 calibrated) at the start of
// every read, initialisation 0xBE 0x08 0x00, trigger 0xAC 0x33 0x00 with ~80 ms busy during which
// reads are ACKed but carry the old data, soft reset 0xBA, 20-bit RH and T packed into five bytes
// and a CRC-8 (0x31, init 0xFF) over the first six.
import type { Clock } from "../../../hub/contracts.js";
import { crc8 } from "../i2c.js";
import type { Environment } from "./environment.js";
import { noFaults, type SimChip } from "./i2c-bus.js";

export interface Aht20Model extends SimChip {
  measurements: number;
  calibrated: boolean;
}

const MEASURE_MS = 75;

export function createAht20(o: { clock: Clock; env: Environment; calibrated?: boolean }): Aht20Model {
  const faults = noFaults();
  let busyUntil = -Infinity;
  let data = [0, 0, 0, 0, 0];
  let pending: number[] | undefined;
  const now = () => o.clock.monotonic();
  const settle = () => {
    if (pending && !faults.stuckBusy && now() >= busyUntil) {
      data = pending;
      pending = undefined;
    }
  };
  const busy = () => (faults.stuckBusy && pending !== undefined) || now() < busyUntil;

  const model: Aht20Model = {
    faults,
    measurements: 0,
    calibrated: o.calibrated ?? true,
    write(bytes) {
      settle();
      if (bytes.length === 0) return;
      if (bytes[0] === 0xbe && bytes[1] === 0x08 && bytes[2] === 0x00) {
        model.calibrated = true;
        busyUntil = now() + 10;
      } else if (bytes[0] === 0xac && bytes[1] === 0x33 && bytes[2] === 0x00) {
        const e = o.env();
        model.measurements++;
        const clamp20 = (v: number) => Math.max(0, Math.min(0xfffff, Math.round(v)));
        const rh = clamp20((e.humidity / 100) * 2 ** 20);
        const t = clamp20(((e.temperature + 50) / 200) * 2 ** 20);
        pending = [rh >> 12, (rh >> 4) & 0xff, ((rh & 0x0f) << 4) | (t >> 16), (t >> 8) & 0xff, t & 0xff];
        busyUntil = now() + MEASURE_MS;
      } else if (bytes[0] === 0xba) {
        pending = undefined;
        data = [0, 0, 0, 0, 0];
        busyUntil = now() + 20;
      }
      // 0x71 (read status) and anything else: the next read starts with the status byte anyway.
    },
    read(length) {
      settle();
      const status = (busy() ? 0x80 : 0) | (model.calibrated && !faults.wrongId ? 0x08 : 0) | 0x10;
      const frame = [status, ...data];
      frame.push(crc8(frame) ^ (faults.badCrc ? 0x01 : 0));
      const out = new Uint8Array(length).fill(0xff);
      out.set(frame.slice(0, length));
      return out;
    },
  };
  return model;
}

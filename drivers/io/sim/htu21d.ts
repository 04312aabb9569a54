// Register-level model of the TE HTU21D(F) at 0x40 (HTU21D(F) datasheet, TE HPC199_6): one-byte
// commands; "no hold master" measurements 0xF3 (T) / 0xF5 (RH) during which the read header is
// NACKed (conversion time from the user register's resolution bits), an answer of MSB, LSB (the two
// status bits: bit 1 = 1 for humidity) and CRC-8 (0x31, init 0x00); the user register (0xE7 read,
// 0xE6 write, default 0x02); soft reset 0xFE (NACKs for 15 ms). The hold-master commands 0xE3/0xE5
// need clock stretching, which the simulated bus has not: they are NACKed. Fault injection as every model.
import type { Clock } from "../../../hub/contracts.js";
import type { Environment } from "./environment.js";
import { nack, noFaults, type SimChip } from "./i2c-bus.js";

export interface Htu21dModel extends SimChip {
  /** Conversions started so far. */
  measurements: number;
  /** The user register (resolution bits 7 and 0, heater bit 2). */
  readonly userRegister: number;
}

/**
 * Per resolution bits 7,0: typical conversion times in ms (below the datasheet maxima the driver
 * waits) and the signal bits kept (lower bits read 0), RH and T.
 */
const RESOLUTION = new Map<number, { rhMs: number; tMs: number; rhBits: number; tBits: number }>([
  [0x00, { rhMs: 14, tMs: 44, rhBits: 12, tBits: 14 }],
  [0x01, { rhMs: 2, tMs: 11, rhBits: 8, tBits: 12 }],
  [0x80, { rhMs: 4, tMs: 22, rhBits: 10, tBits: 13 }],
  [0x81, { rhMs: 7, tMs: 6, rhBits: 11, tBits: 11 }],
]);
const USER_DEFAULT = 0x02;
const RESET_MS = 15;

function crc(bytes: number[]): number {
  let c = 0;
  for (const byte of bytes) {
    c ^= byte;
    for (let b = 0; b < 8; b++) c = c & 0x80 ? ((c << 1) ^ 0x31) & 0xff : (c << 1) & 0xff;
  }
  return c;
}

export function createHtu21d(o: { clock: Clock; env: Environment }): Htu21dModel {
  const faults = noFaults();
  let user = USER_DEFAULT;
  let busyUntil = -Infinity;
  let converting = false;
  let output: number[] | undefined;
  const busy = () => (faults.stuckBusy && converting) || o.clock.monotonic() < busyUntil;

  const answer = (signal: number, humidity: boolean, bits: number): number[] => {
    const keep = (0xffff << (16 - bits)) & 0xfffc;
    const word = (Math.max(0, Math.min(0xffff, Math.round(signal))) & keep) | (humidity ? 0x02 : 0x00);
    const b = [word >> 8, word & 0xff];
    return [...b, crc(b) ^ (faults.badCrc ? 0x01 : 0)];
  };

  const model: Htu21dModel = {
    faults,
    measurements: 0,
    get userRegister() {
      return user;
    },
    write(bytes) {
      if (busy()) throw nack("write");
      if (bytes.length === 0) return; // an address probe
      const res = RESOLUTION.get(user & 0x81)!;
      switch (bytes[0]) {
        case 0xf3:
        case 0xf5: {
          const humidity = bytes[0] === 0xf5;
          const e = o.env();
          model.measurements++;
          // The datasheet's formulas, inverted: S = (T + 46.85) · 2^16 / 175.72, S = (RH + 6) · 2^16 / 125.
          output = humidity
            ? answer(((e.humidity + 6) * 65536) / 125, true, res.rhBits)
            : answer(((e.temperature + 46.85) * 65536) / 175.72, false, res.tBits);
          busyUntil = o.clock.monotonic() + (humidity ? res.rhMs : res.tMs);
          converting = true;
          return;
        }
        case 0xe7:
          output = [faults.wrongId ? 0xff : user];
          return;
        case 0xe6:
          if (bytes.length < 2) throw nack("write");
          // Reserved bits 5..3 are not writable; the heater (bit 2) and resolution bits are.
          if (!faults.wrongId) user = (user & 0x38) | (bytes[1]! & 0xc7);
          return;
        case 0xfe:
          user = (user & 0x04) | USER_DEFAULT; // soft reset keeps the heater bit
          output = undefined;
          converting = false;
          busyUntil = o.clock.monotonic() + RESET_MS - 1;
          return;
        default:
          throw nack("write"); // hold-master 0xE3/0xE5 need clock stretching; anything else is unknown
      }
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

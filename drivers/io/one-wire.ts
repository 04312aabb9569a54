// The 1-Wire seam: the kernel's w1 sysfs (/sys/bus/w1/devices/<family>-<serial>/w1_slave). Reading
// w1_slave makes the kernel run a conversion (~750 ms for a DS18B20) inside a blocking read, which
// holds one of libuv's four threads: reads are queued so only one runs at a time (hardware notes).
// The base directory is a parameter, so a directory of plain files is a faithful simulator.
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";

export const W1_SYSFS = "/sys/bus/w1/devices";

export interface OneWire {
  /** Directory holding one subdirectory per slave (the kernel's, or the simulator's). */
  readonly dir: string;
  /** Slave ids such as `28-0316a2794aff` of one family (`28` = DS18B20), sorted; [] if none. */
  list(family: string, dir?: string): Promise<string[]>;
  /** The text of `<dir>/<id>/w1_slave`. Rejects with ENOENT when the slave has gone. */
  read(id: string, dir?: string): Promise<string>;
}

/**
 * `dir` may be a function for a directory known only once the simulator has started. `read` is
 * injectable so tests can watch the queue.
 */
export function createOneWire(dir: string | (() => string), read: (path: string) => Promise<string> = (p) => readFile(p, "utf8")): OneWire {
  const base = typeof dir === "string" ? () => dir : dir;
  let tail: Promise<unknown> = Promise.resolve();
  const queued = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = tail.then(fn);
    tail = run.catch(() => {});
    return run;
  };
  return {
    get dir() {
      return base();
    },
    async list(family, d) {
      let names: string[];
      try {
        names = await readdir(d ?? base());
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
        throw err;
      }
      return names.filter((n) => n.startsWith(`${family}-`)).sort();
    },
    read: (id, d) => queued(() => read(join(d ?? base(), id, "w1_slave"))),
  };
}

export type W1Reading =
  | { ok: true; millidegrees: number; bytes: number[] }
  | { ok: false; reason: "crc" | "format"; bytes: number[] };

/**
 * Parses the two lines of w1_slave:
 *   `72 01 4b 46 7f ff 0e 10 57 : crc=57 YES`
 *   `72 01 4b 46 7f ff 0e 10 57 t=23125`
 * `ok` only with YES and a t= value; the caller decides about 85000 (the power-on value).
 */
export function parseW1Slave(text: string): W1Reading {
  const lines = text.split("\n").map((l) => l.trim());
  const first = /^((?:[0-9a-f]{2} ){9}): crc=([0-9a-f]{2}) (YES|NO)$/i.exec(lines[0] ?? "");
  const bytes = first ? first[1]!.trim().split(" ").map((b) => Number.parseInt(b, 16)) : [];
  if (!first) return { ok: false, reason: "format", bytes };
  if (first[3]!.toUpperCase() !== "YES") return { ok: false, reason: "crc", bytes };
  const t = /(?:^|\s)t=(-?\d+)$/.exec(lines[1] ?? "");
  if (!t) return { ok: false, reason: "format", bytes };
  return { ok: true, millidegrees: Number(t[1]), bytes };
}

/** Dallas/Maxim CRC-8 (polynomial x^8+x^5+x^4+1, reflected 0x8C, init 0): the scratchpad's byte 8. */
export function maximCrc8(bytes: ArrayLike<number>): number {
  let crc = 0;
  for (let i = 0; i < bytes.length; i++) {
    crc ^= bytes[i]!;
    for (let b = 0; b < 8; b++) crc = crc & 1 ? (crc >> 1) ^ 0x8c : crc >> 1;
  }
  return crc;
}

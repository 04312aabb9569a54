// A simulated w1 sysfs: a temporary directory laid out like /sys/bus/w1/devices (a bus master
// entry and one 28-xxxxxxxxxxxx/w1_slave file per DS18B20), rewritten every second from the
// environment in the kernel's exact format: the nine scratchpad bytes with their Maxim CRC,
// `crc=XX YES|NO`, and `t=<millidegrees>`. Files are replaced atomically (write, then rename), so a
// reader never sees half a file. Faults: CRC failure (NO), the 85 °C power-on value, an all-zero
// scratchpad, unreadable text, and the sensor vanishing.
import { mkdir, mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Cancel, Clock } from "../../../hub/contracts.js";
import { maximCrc8 } from "../one-wire.js";
import type { Environment } from "./environment.js";

export type W1Fault = "none" | "crc" | "power-on" | "zero" | "garbage";

export interface SimW1 {
  /** The directory to read (valid once started). */
  readonly dir: string;
  add(id: string, env: Environment): void;
  /** The sensor is unplugged: its directory disappears. */
  remove(id: string): Promise<void>;
  fault(id: string, fault: W1Fault): void;
  /** Rewrites every file now (the periodic update does this every second). */
  update(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

const hex2 = (b: number) => b.toString(16).padStart(2, "0");

/** The scratchpad a DS18B20 in 12-bit mode holds for `celsius` (datasheet fig. 7 layout). */
export function scratchpad(celsius: number): number[] {
  const raw = Math.max(-55 * 16, Math.min(125 * 16, Math.round(celsius * 16))) & 0xffff;
  const remain = 0x10 - (raw & 0x0f); // COUNT_REMAIN, as real chips report it
  const bytes = [raw & 0xff, raw >> 8, 0x4b, 0x46, 0x7f, 0xff, remain, 0x10];
  return [...bytes, maximCrc8(bytes)];
}

/** What the kernel's w1_therm prints for these scratchpad bytes (CRC verdict computed like the kernel). */
export function w1SlaveText(bytes: number[]): string {
  const hexes = bytes.map(hex2).join(" ");
  const crc = maximCrc8(bytes.slice(0, 8));
  const ok = crc === bytes[8];
  const raw = (((bytes[1]! << 8) | bytes[0]!) << 16) >> 16;
  const t = Math.trunc((raw * 1000) / 16);
  return `${hexes} : crc=${hex2(crc)} ${ok ? "YES" : "NO"}\n${hexes} t=${t}\n`;
}

export function createSimW1(o: { clock: Clock; periodMs?: number }): SimW1 {
  const sensors = new Map<string, { env: Environment; fault: W1Fault }>();
  let dir = "";
  let timer: Cancel | undefined;
  let writing: Promise<void> = Promise.resolve();

  const text = (s: { env: Environment; fault: W1Fault }): string => {
    switch (s.fault) {
      case "power-on":
        return w1SlaveText([0x50, 0x05, 0x4b, 0x46, 0x7f, 0xff, 0x0c, 0x10, maximCrc8([0x50, 0x05, 0x4b, 0x46, 0x7f, 0xff, 0x0c, 0x10])]);
      case "zero":
        return w1SlaveText([0, 0, 0, 0, 0, 0, 0, 0, 0]);
      case "garbage":
        return "ff ff ff ff\n";
      case "crc": {
        const b = scratchpad(s.env().temperature);
        b[8] = b[8]! ^ 0x01;
        return w1SlaveText(b);
      }
      default:
        return w1SlaveText(scratchpad(s.env().temperature));
    }
  };

  const writeOne = async (id: string, s: { env: Environment; fault: W1Fault }) => {
    const d = join(dir, id);
    await mkdir(d, { recursive: true });
    const tmp = join(d, ".w1_slave.tmp");
    await writeFile(tmp, text(s));
    await rename(tmp, join(d, "w1_slave"));
  };

  const update = (): Promise<void> => {
    if (!dir) return Promise.resolve();
    writing = writing.catch(() => {}).then(async () => {
      for (const [id, s] of sensors) await writeOne(id, s);
    });
    return writing;
  };

  return {
    get dir() {
      return dir;
    },
    add(id, env) {
      sensors.set(id, { env, fault: "none" });
    },
    async remove(id) {
      sensors.delete(id);
      await writing;
      if (dir) await rm(join(dir, id), { recursive: true, force: true });
    },
    fault(id, fault) {
      const s = sensors.get(id);
      if (s) s.fault = fault;
    },
    update,
    async start() {
      dir = await mkdtemp(join(tmpdir(), "hub-w1-"));
      await mkdir(join(dir, "w1_bus_master1"));
      await update();
      timer = o.clock.every(o.periodMs ?? 1000, () => {
        update().catch(() => {});
      });
    },
    async stop() {
      timer?.();
      timer = undefined;
      await writing.catch(() => {});
      if (dir) await rm(dir, { recursive: true, force: true });
    },
  };
}

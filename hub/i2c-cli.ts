// `hub i2c scan [--bus N] [--simulate] [--config FILE]`: which addresses answer on an I2C bus, as
// an i2cdetect-style grid, and the chips likely there (drivers/io/i2c-scan.ts, which reads Bosch
// chip ids). On the Pi it opens /dev/i2c-N through the same backend as the hub (so a missing node
// says "I2C is not enabled"); with --simulate it scans the simulated bus: the sensors and expanders
// of --config on that bus, or without a config one of every simulated chip.
import type { Clock } from "./contracts.js";
import type { Config } from "./config/schema.js";
import { hex, type I2cBus, i2cProvider, type RawI2cBus } from "../drivers/io/i2c.js";
import { scanBus, type ScanResult } from "../drivers/io/i2c-scan.js";
import { linuxI2c } from "../drivers/io/linux-i2c.js";
import { createSimulatedHardware, type SimDeviceDecl } from "../drivers/io/sim/hardware.js";

export interface I2cScanOptions {
  bus: number;
  simulate: boolean;
  /** With --simulate: the config whose devices make up the simulated bus. */
  config?: Config;
}

export interface I2cScanDeps {
  clock: Clock;
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  /** Opens the real bus; default: /dev/i2c-N through i2c-bus. */
  openLinux?: (bus: number) => Promise<RawI2cBus>;
}

/** One of each simulated chip, at its usual address, for `--simulate` without a config. */
export const DEMO_BUS: readonly SimDeviceDecl[] = [
  { type: "mcp23017", address: 0x20 },
  { type: "bh1750", address: 0x23 },
  { type: "aht20", address: 0x38 },
  { type: "htu21d", address: 0x40 },
  { type: "sht3x", address: 0x44 },
  { type: "ads1115", address: 0x48 },
  { type: "bme280", address: 0x76 },
];

/** The i2cdetect grid: rows of 16 addresses, `--` for silence, 0x03..0x77 probed. */
export function formatGrid(found: readonly number[]): string {
  const seen = new Set(found);
  const lines = [`    ${Array.from({ length: 16 }, (_, i) => ` ${i.toString(16)} `).join("").trimEnd()}`];
  for (let row = 0; row < 0x80; row += 0x10) {
    let line = `${hex(row)}:`;
    for (let a = row; a < row + 16; a++) {
      if (a < 0x03 || a > 0x77) line += "   ";
      else line += ` ${seen.has(a) ? hex(a) : "--"}`;
    }
    lines.push(line.trimEnd());
  }
  return lines.join("\n");
}

export function formatScan(bus: number, results: readonly ScanResult[], simulated: boolean): string {
  const where = `${simulated ? "simulated " : ""}bus ${bus}${simulated ? "" : ` (/dev/i2c-${bus})`}`;
  const out = [formatGrid(results.map((r) => r.address)), ""];
  if (results.length === 0) {
    out.push(`no device answered on ${where}: check power, SDA/SCL wiring and pull-ups (\`ls /dev/i2c-*\` lists the buses)`);
  } else {
    for (const r of results) out.push(`${r.hex}  ${r.likely.length > 0 ? r.likely.join(" or ") : "unknown chip"}`);
    out.push("", `${results.length} device${results.length === 1 ? "" : "s"} on ${where}`);
  }
  return out.join("\n");
}

/** Runs the scan; returns the exit code (0, or 1 when the bus cannot be opened). */
export async function i2cScanCommand(o: I2cScanOptions, deps: I2cScanDeps): Promise<number> {
  let bus: I2cBus;
  let close: () => Promise<void>;
  if (o.simulate) {
    const decls: SimDeviceDecl[] = o.config ? [...o.config.devices, ...o.config.gpio.expanders] : DEMO_BUS.map((d) => ({ ...d, bus: o.bus }));
    const sim = createSimulatedHardware(decls, { clock: deps.clock });
    bus = await sim.i2c(o.bus);
    close = () => sim.stop();
  } else {
    const provider = i2cProvider(deps.openLinux ?? linuxI2c());
    try {
      bus = await provider.bus(o.bus);
    } catch (err) {
      deps.stderr(`hub i2c scan: ${err instanceof Error ? err.message : String(err)}\n`);
      return 1;
    }
    close = () => provider.closeAll();
  }
  try {
    const results = await scanBus(bus);
    deps.stdout(`${formatScan(o.bus, results, o.simulate)}\n`);
    return 0;
  } catch (err) {
    deps.stderr(`hub i2c scan: bus ${o.bus}: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  } finally {
    await close();
  }
}

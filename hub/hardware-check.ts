// The hardware: linux start-up check (drivers/io/preflight.ts) wired to the config: which devices
// need GPIO, which I2C buses, which 1-Wire directories. A Service first in the lifecycle, so a
// machine without the interfaces fails to start (exit 1, every missing piece named) before the
// broker listens; devices whose chips merely do not answer still start offline and are retried.
import { access, readdir, readFile } from "node:fs/promises";
import type { Service } from "./contracts.js";
import type { Config } from "./config/schema.js";
import { importOnoff } from "../drivers/io/linux-gpio.js";
import { linuxI2c } from "../drivers/io/linux-i2c.js";
import { W1_SYSFS } from "../drivers/io/one-wire.js";
import { emptyNeeds, type HardwareNeeds, type PreflightDeps, preflight, preflightError } from "../drivers/io/preflight.js";

export function hardwareNeeds(config: Config, o: { gpio: boolean } = { gpio: true }): HardwareNeeds {
  const needs = emptyNeeds();
  const add = <K>(m: Map<K, string[]>, k: K, name: string) => m.set(k, [...(m.get(k) ?? []), name]);
  for (const d of config.devices) {
    if (d.type === "gpio_input" || d.type === "gpio_output") {
      if (d.expander === undefined && o.gpio) needs.gpio.push(d.name);
    } else if (d.type === "ds18b20") add(needs.w1, d.dir ?? W1_SYSFS, d.name);
    else if ("bus" in d && "address" in d) add(needs.i2c, d.bus, d.name);
  }
  config.gpio.expanders.forEach((e, i) => {
    const name = `gpio.expanders[${i}] (${e.name})`;
    add(needs.i2c, e.bus, name);
    if (e.interrupt_pin !== undefined && o.gpio) needs.gpio.push(name);
  });
  return needs;
}

export function hardwareCheck(config: Config, o: { gpio: boolean; deps?: Partial<PreflightDeps> }): Service {
  const deps: PreflightDeps = {
    gpioFs: { readdir: (p) => readdir(p), readFile: (p) => readFile(p, "utf8") },
    gpioLabels: config.gpio.chip_labels,
    loadGpio: importOnoff,
    openI2c: linuxI2c(),
    dirExists: (p) => access(p).then(() => true, () => false),
    ...o.deps,
  };
  return {
    name: "hardware-check",
    async start() {
      const problems = await preflight(hardwareNeeds(config, o), deps);
      if (problems.length > 0) throw preflightError(problems);
    },
    async stop() {},
  };
}

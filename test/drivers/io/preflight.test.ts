// The hardware: linux start-up check on fixture machines: every missing interface named with the
// devices needing it (a Pi without I2C, a PC without sysfs GPIO, 1-Wire off), nothing when all exist.
import t from "tap";
import { emptyNeeds, preflight, preflightError, type PreflightDeps } from "../../../drivers/io/preflight.js";
import { linuxI2c } from "../../../drivers/io/linux-i2c.js";
import { createSimI2cBus } from "../../../drivers/io/sim/i2c-bus.js";

const enoent = (p: string) => Object.assign(new Error(`ENOENT: no such file or directory, ${p}`), { code: "ENOENT" });

/** A Pi 4 on kernel 6.6: gpiochip512 (pinctrl-bcm2711) and its 8-line expander; /dev/i2c-1 only. */
function pi4(over: Partial<PreflightDeps> = {}): PreflightDeps {
  const files: Record<string, string> = {
    "/sys/class/gpio/gpiochip512/label": "pinctrl-bcm2711\n",
    "/sys/class/gpio/gpiochip512/base": "512\n",
    "/sys/class/gpio/gpiochip512/ngpio": "58\n",
    "/sys/class/gpio/gpiochip570/label": "raspberrypi-exp-gpio\n",
    "/sys/class/gpio/gpiochip570/base": "570\n",
    "/sys/class/gpio/gpiochip570/ngpio": "8\n",
  };
  return {
    gpioFs: {
      readdir: async () => ["export", "gpiochip512", "gpiochip570", "unexport"],
      readFile: async (p) => files[p] ?? Promise.reject(enoent(p)),
    },
    loadGpio: async () => ({}),
    openI2c: linuxI2c({ access: (p) => { if (p !== "/dev/i2c-1") throw enoent(p); }, load: async () => ({ openPromisified: async () => createSimI2cBus() }) }),
    dirExists: async (p) => p === "/sys/bus/w1/devices",
    ...over,
  };
}

t.test("a Pi with everything the devices need: no problems", async (t) => {
  const needs = emptyNeeds();
  needs.gpio.push("button");
  needs.i2c.set(1, ["bathroom"]);
  needs.w1.set("/sys/bus/w1/devices", ["study"]);
  t.same(await preflight(needs, pi4()), []);
  t.same(await preflight(emptyNeeds(), pi4({ loadGpio: () => Promise.reject(new Error("never asked")) })), [], "nothing needed, nothing checked");
});

t.test("every missing interface, with the devices needing it", async (t) => {
  const needs = emptyNeeds();
  needs.gpio.push("button", "relay");
  needs.i2c.set(3, ["bathroom", "hall"]);
  needs.w1.set("/sys/bus/w1/devices", ["study"]);
  const pc = pi4({
    gpioFs: { readdir: async (p) => Promise.reject(enoent(p)), readFile: async (p) => Promise.reject(enoent(p)) },
    dirExists: async () => false,
  });
  const problems = await preflight(needs, pc);
  t.match(problems[0], /^devices button, relay \(GPIO\): \/sys\/class\/gpio does not exist: this kernel offers no sysfs GPIO/);
  t.match(problems[1], /^devices bathroom, hall \(I2C bus 3\): I2C is not enabled \(raspi-config → Interface → I2C\): \/dev\/i2c-3 does not exist/);
  t.match(problems[2], /^device study \(1-Wire\): 1-Wire is not enabled \(raspi-config → Interface → 1-Wire/);
  t.equal(problems.length, 3);
  t.match(preflightError(problems).message, /^hardware: linux, but this machine lacks what the configured devices need:\n {2}- devices button/);
});

t.test("GPIO present but onoff not built; a chip label the config does not list", async (t) => {
  const needs = emptyNeeds();
  needs.gpio.push("button");
  const noOnoff = await preflight(needs, pi4({ loadGpio: () => Promise.reject(new Error("the optional package onoff (GPIO) is not installed")) }));
  t.match(noOnoff, [/^device button \(GPIO\): the optional package onoff/]);
  const custom = await preflight(needs, pi4({ gpioLabels: ["my-soc"] }));
  t.same(custom, [], "falls back to the one chip with 54+ lines");
});

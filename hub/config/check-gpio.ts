// Cross-checks of the `gpio:` section against the devices (called by check.ts): expander names are
// unique and exist, expander pins are 0..15 and used once per expander, `pull_up` only where a chip
// can set it, an expander's I2C address is not a sensor's, and its interrupt pin is not a device's.
import type { CheckProblem } from "./check.js";
import type { Config } from "./schema.js";

export function checkGpio(config: Config): CheckProblem[] {
  const problems: CheckProblem[] = [];
  const expanders = new Map<string, number>();
  config.gpio.expanders.forEach((e, i) => {
    const first = expanders.get(e.name);
    if (first === undefined) expanders.set(e.name, i);
    else problems.push({ path: ["gpio", "expanders", i, "name"], expected: "an expander name not used by another expander", found: `${e.name} again (also expanders[${first}])` });
  });

  // Two devices on one expander pin would fight over it, as on the Pi's own pins (check.ts).
  const pins = new Map<string, number>();
  const piPins = new Map<number, number>();
  config.devices.forEach((d, i) => {
    if (d.type !== "gpio_input" && d.type !== "gpio_output") return;
    if (d.expander === undefined) {
      piPins.set(d.pin, i);
      if (d.type === "gpio_input" && d.pull_up !== undefined) {
        problems.push({
          path: ["devices", i, "pull_up"],
          expected: "pull_up only on an expander pin (the Pi's pulls are set in config.txt, e.g. gpio=17=ip,pu, or by a resistor)",
          found: String(d.pull_up),
        });
      }
      return;
    }
    if (!expanders.has(d.expander)) {
      const known = [...expanders.keys()].join(", ") || "none configured";
      problems.push({ path: ["devices", i, "expander"], expected: `the name of a gpio.expanders entry (${known})`, found: d.expander });
      return;
    }
    if (d.pin > 15) {
      problems.push({ path: ["devices", i, "pin"], expected: "an expander pin 0..15 (GPA0-7 = 0-7, GPB0-7 = 8-15)", found: String(d.pin) });
      return;
    }
    const key = `${d.expander}/${d.pin}`;
    const first = pins.get(key);
    if (first === undefined) pins.set(key, i);
    else problems.push({ path: ["devices", i, "pin"], expected: "an expander pin not used by another device", found: `${d.pin} of ${d.expander} again (also devices[${first}])` });
  });

  const i2c = new Map<string, string>();
  config.devices.forEach((d, i) => {
    if ("address" in d && "bus" in d) i2c.set(`${d.bus}/${d.address}`, `devices[${i}]`);
  });
  config.gpio.expanders.forEach((e, i) => {
    const key = `${e.bus}/${e.address}`;
    const other = i2c.get(key);
    if (other !== undefined) {
      problems.push({
        path: ["gpio", "expanders", i, "address"],
        expected: "an I2C bus and address not used by another device",
        found: `0x${e.address.toString(16)} on bus ${e.bus} again (also ${other})`,
      });
    } else i2c.set(key, `gpio.expanders[${i}]`);
    if (e.interrupt_pin !== undefined && piPins.has(e.interrupt_pin)) {
      problems.push({
        path: ["gpio", "expanders", i, "interrupt_pin"],
        expected: "a GPIO pin not used by a device",
        found: `${e.interrupt_pin} (also devices[${piPins.get(e.interrupt_pin)}])`,
      });
    }
  });
  return problems;
}

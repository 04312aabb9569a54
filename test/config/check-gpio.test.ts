// The gpio: section's cross-checks: expander names, pins 0..15 once per expander, pull_up only on
// expander pins, expander addresses against sensors, interrupt pins against devices; and defaults.
import t from "tap";
import { loadConfigText } from "../../hub/config/load.js";

const load = (lines: string[]) => loadConfigText(["hardware: simulate", ...lines].join("\n"), "t.yaml", { readFile: () => "", env: {} });

t.test("defaults: the SoC labels, no expanders; an expander's defaults", async (t) => {
  const r = load(["gpio:", "  expanders: [{ name: ext }]"]);
  if (!r.ok) return t.fail(JSON.stringify(r.problems));
  t.same(r.config.gpio.chip_labels, ["pinctrl-bcm2835", "pinctrl-bcm2711", "pinctrl-rp1"]);
  t.same(r.config.gpio.expanders, [{ name: "ext", type: "mcp23017", bus: 1, address: 0x20, poll_interval: 50 }]);
});

t.test("problems, each at its place", async (t) => {
  const r = load([
    "gpio:",
    "  expanders:",
    "    - { name: ext, address: 0x40, interrupt_pin: 17 }",
    "    - { name: ext, address: 0x21 }",
    "devices:",
    "  - { name: a, type: gpio_input, pin: 17, pull_up: true }",
    "  - { name: b, type: gpio_input, pin: 3, expander: ext }",
    "  - { name: c, type: gpio_output, pin: 3, expander: ext }",
    "  - { name: d, type: gpio_output, pin: 16, expander: ext }",
    "  - { name: e, type: gpio_output, pin: 1, expander: nope }",
    "  - { name: f, type: htu21d }",
    "  - { name: g, type: gpio_output, pin: 3 }",
  ]);
  t.notOk(r.ok);
  if (r.ok) return;
  t.same(
    r.problems.map((p) => `${p.line}: ${p.path}: ${p.message}`),
    [
      "4: gpio.expanders[0].address: expected one of 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, found 64",
    ],
    "schema problems first (the address), cross-checks need a valid config",
  );
  const r2 = load([
    "gpio:",
    "  expanders:",
    "    - { name: ext, address: 0x20, interrupt_pin: 17 }",
    "    - { name: ext, address: 0x21 }",
    "    - { name: clash, address: 0x22 }",
    "devices:",
    "  - { name: a, type: gpio_input, pin: 17, pull_up: true }",
    "  - { name: b, type: gpio_input, pin: 3, expander: ext }",
    "  - { name: c, type: gpio_output, pin: 3, expander: ext }",
    "  - { name: d, type: gpio_output, pin: 16, expander: ext }",
    "  - { name: e, type: gpio_output, pin: 1, expander: nope }",
    "  - { name: g, type: gpio_output, pin: 3 }",
    "  - { name: h, type: gpio_output, pin: 3, expander: clash }",
    "  - { name: i, type: bh1750, address: 0x23 }",
  ]);
  t.notOk(r2.ok);
  if (r2.ok) return;
  t.same(
    r2.problems.map((p) => `${p.path}: ${p.message}`).sort(),
    [
      "devices[0].pull_up: expected pull_up only on an expander pin (the Pi's pulls are set in config.txt, e.g. gpio=17=ip,pu, or by a resistor), found true",
      "devices[2].pin: expected an expander pin not used by another device, found 3 of ext again (also devices[1])",
      "devices[3].pin: expected an expander pin 0..15 (GPA0-7 = 0-7, GPB0-7 = 8-15), found 16",
      "devices[4].expander: expected the name of a gpio.expanders entry (ext, clash), found nope",
      "gpio.expanders[0].interrupt_pin: expected a GPIO pin not used by a device, found 17 (also devices[0])",
      "gpio.expanders[1].name: expected an expander name not used by another expander, found ext again (also expanders[0])",
    ],
    "g (Pi pin 3) and h (pin 3 of clash) do not clash with ext's pin 3",
  );
});

t.test("an expander at a sensor's address", async (t) => {
  const r = load(["gpio:", "  expanders: [{ name: ext, address: 0x23 }]", "devices:", "  - { name: i, type: bh1750 }"]);
  t.notOk(r.ok);
  if (r.ok) return;
  t.same(r.problems.map((p) => `${p.path}: ${p.message}`), ["gpio.expanders[0].address: expected an I2C bus and address not used by another device, found 0x23 on bus 1 again (also devices[0])"]);
});

// The config side of GPIO devices, report-on-change and Home Assistant discovery: defaults, what is
// refused (with file:line:col), and the cross-check that two devices cannot share a GPIO pin.
import t from "tap";
import { formatProblems, loadConfigText } from "../hub/config/load.js";
import { fakeDeps, yaml } from "./config/helpers.js";

const load = (...lines: string[]) => loadConfigText(yaml(...lines), "c.yaml", fakeDeps());

t.test("gpio_input and gpio_output defaults; homeassistant on by default", async (t) => {
  const r = load("devices:", "  - { name: b, type: gpio_input, pin: 17 }", "  - { name: r, type: gpio_output, pin: 27 }");
  if (!r.ok) return t.fail(formatProblems(r.problems));
  t.strictSame(r.config.devices[0], { name: "b", type: "gpio_input", pin: 17, active_low: false, debounce: 50 });
  t.strictSame(r.config.devices[1], { name: "r", type: "gpio_output", pin: 27, active_low: false, safe_state: "OFF" });
  t.strictSame(r.config.homeassistant, { enabled: true, prefix: "homeassistant" });
});

t.test("every option, durations in ms", async (t) => {
  const r = load(
    "devices:",
    "  - { name: pir, type: gpio_input, pin: 4, active_low: true, debounce: 0ms, device_class: motion, heartbeat: 5m }",
    "  - { name: r, type: gpio_output, pin: 23, active_low: true, safe_state: 'ON', initial: 'OFF', max_on: 30m, pulse: 500ms, device_class: outlet }",
    "  - { name: s, type: simulated_sensor, deadband: { t: 0.2 }, quantities: { t: { start: 1, min: 0, max: 2, step: 1 } } }",
    "homeassistant: { enabled: false, prefix: ha }",
  );
  if (!r.ok) return t.fail(formatProblems(r.problems));
  t.match(r.config.devices[0], { debounce: 0, device_class: "motion", heartbeat: 300_000, active_low: true });
  t.match(r.config.devices[1], { safe_state: "ON", initial: "OFF", max_on: 1_800_000, pulse: 500, device_class: "outlet" });
  t.match(r.config.devices[2], { deadband: { t: 0.2 } });
  t.strictSame(r.config.homeassistant, { enabled: false, prefix: "ha" });
});

t.test("what is refused, and where", async (t) => {
  const r = load(
    "devices:",
    "  - { name: a, type: gpio_input, pin: 64 }", // 2
    "  - { name: b, type: gpio_output, pin: 5, safe_state: off }", // 3: lowercase
    "  - { name: c, type: gpio_output, pin: 6, pulse: 0s }", // 4
    "  - { name: d, type: gpio_input, pin: 7, deadband: -1 }", // 5
    "  - { name: e, type: gpio_input, pin: 8, heartbeat: 0s }", // 6
    "  - { name: f, type: gpio_input, pin: 9, device_class: doorbell }", // 7
    "homeassistant: { prefix: 'ha/#' }", // 8
  );
  t.notOk(r.ok);
  if (r.ok) return;
  const text = formatProblems(r.problems);
  t.match(text, /c\.yaml:2:\d+: devices\[0\]\.pin: expected an integer 0\.\.63, found 64/);
  t.match(text, /c\.yaml:3:\d+: devices\[1\]\.safe_state: expected ON or OFF, found "off"/);
  t.match(text, /c\.yaml:4:\d+: devices\[2\]\.pulse: expected a duration > 0/);
  t.match(text, /c\.yaml:5:\d+: devices\[3\]\.deadband: expected a number >= 0, or a mapping of quantity names to numbers >= 0/);
  t.match(text, /c\.yaml:6:\d+: devices\[4\]\.heartbeat: expected a duration > 0/);
  t.match(text, /c\.yaml:7:\d+: devices\[5\]\.device_class: expected a Home Assistant binary sensor class/);
  t.match(text, /c\.yaml:8:\d+: homeassistant\.prefix: expected an MQTT topic without wildcards/);
});

t.test("two devices on one GPIO pin are refused", async (t) => {
  const r = load("devices:", "  - { name: a, type: gpio_input, pin: 17 }", "  - { name: b, type: gpio_output, pin: 18 }", "  - { name: c, type: gpio_output, pin: 17 }");
  t.notOk(r.ok);
  if (r.ok) return;
  t.equal(formatProblems(r.problems), "c.yaml:4:40: devices[2].pin: expected a GPIO pin not used by another device, found 17 again (also devices[0])");
});

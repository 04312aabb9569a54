// The BCM → sysfs resolver on fixture trees of real boards (hardware-notes.md "GPIO"): the SoC chip
// is found by label whatever its base, expanders are ignored, and out-of-range lines are refused.
import t from "tap";
import { gpioChip, listGpioChips, pickGpioChip, resolveGpioChip, type SysfsReader } from "../../drivers/io/gpio-chip.js";
import { memoryLogger } from "../../hub/log.js";

type Chip = [label: string, base: number, ngpio: number];

/** A fake /sys/class/gpio: gpiochip<base> directories plus the export/unexport files. */
function sysfs(chips: Chip[], root = "/sys/class/gpio"): SysfsReader {
  const files = new Map<string, string>();
  for (const [label, base, ngpio] of chips) {
    files.set(`${root}/gpiochip${base}/label`, `${label}\n`);
    files.set(`${root}/gpiochip${base}/base`, `${base}\n`);
    files.set(`${root}/gpiochip${base}/ngpio`, `${ngpio}\n`);
  }
  const enoent = (p: string) => Object.assign(new Error(`ENOENT: no such file or directory, open '${p}'`), { code: "ENOENT" });
  return {
    async readdir(p) {
      if (p !== root) throw enoent(p);
      return ["export", "unexport", ...chips.map(([, base]) => `gpiochip${base}`)];
    },
    async readFile(p) {
      const v = files.get(p);
      if (v === undefined) throw enoent(p);
      return v;
    },
  };
}

// Pi 3 B, kernel 6.1: SoC at 0, the firmware's 8-line expander allocated downwards from 512.
const PI3: Chip[] = [
  ["pinctrl-bcm2835", 0, 54],
  ["raspberrypi-exp-gpio", 504, 8],
];
// Pi 4 B, kernel 6.6+: bases allocated upwards from 512; the expander follows the SoC's 58 lines.
const PI4_NEW: Chip[] = [
  ["pinctrl-bcm2711", 512, 58],
  ["raspberrypi-exp-gpio", 570, 8],
];
// Pi 5, kernel 6.1: four brcmstb chips and RP1, allocated downwards from 512 (RP1 at 399).
const PI5_OLD: Chip[] = [
  ["pinctrl-rp1", 399, 54],
  ["gpio-brcmstb@107d517c20", 453, 6],
  ["gpio-brcmstb@107d517c00", 459, 17],
  ["gpio-brcmstb@107d508520", 476, 4],
  ["gpio-brcmstb@107d508500", 480, 32],
];
// Pi 5, kernel 6.6+: the same chips allocated upwards from 512, RP1 last at 571.
const PI5_NEW: Chip[] = [
  ["gpio-brcmstb@107d508500", 512, 32],
  ["gpio-brcmstb@107d508520", 544, 4],
  ["gpio-brcmstb@107d517c00", 548, 17],
  ["gpio-brcmstb@107d517c20", 565, 6],
  ["pinctrl-rp1", 571, 54],
];

t.test("BCM17 on each board", async (t) => {
  const cases: Array<[string, Chip[], string, number]> = [
    ["Pi 3 (base 0)", PI3, "gpiochip0", 17],
    ["Pi 4, kernel >= 6.6 (base 512, expander at 570)", PI4_NEW, "gpiochip512", 529],
    ["Pi 5, old kernel (base 399)", PI5_OLD, "gpiochip399", 416],
    ["Pi 5, kernel >= 6.6 (base 571)", PI5_NEW, "gpiochip571", 588],
  ];
  for (const [board, tree, name, n] of cases) {
    const chip = await resolveGpioChip(sysfs(tree));
    t.equal(chip.name, name, `${board}: chip`);
    t.equal(chip.sysfsNumber(17), n, `${board}: BCM17 -> ${n}`);
    t.equal(chip.sysfsNumber(0), chip.base, `${board}: BCM0 is the base`);
  }
});

t.test("the mapping is logged", async (t) => {
  const log = memoryLogger();
  await resolveGpioChip(sysfs(PI4_NEW), { log });
  t.equal(log.lines.length, 1);
  t.match(log.lines[0], /INFO .*GPIO chip chip=gpiochip512 label=pinctrl-bcm2711 base=512 ngpio=58 mapping="BCM n -> sysfs 512 \+ n"/);
});

t.test("lines beyond the chip are refused, naming the range", async (t) => {
  const chip = await resolveGpioChip(sysfs(PI5_NEW));
  t.throws(() => chip.sysfsNumber(54), /GPIO 54 does not exist: gpiochip571 \("pinctrl-rp1"\) has lines 0\.\.53/);
  t.throws(() => chip.sysfsNumber(-1), /does not exist/);
  t.throws(() => chip.sysfsNumber(1.5), /does not exist/);
  t.equal(chip.sysfsNumber(53), 624, "the last line is fine");
  // Pi 4's SoC has 58 lines, so BCM 54..57 exist there.
  t.equal(gpioChip({ name: "gpiochip512", label: "pinctrl-bcm2711", base: 512, ngpio: 58 }).sysfsNumber(57), 569);
});

t.test("chips are listed sorted by base, non-chip entries ignored", async (t) => {
  const chips = await listGpioChips(sysfs(PI5_OLD));
  t.same(
    chips.map((c) => [c.name, c.label, c.base, c.ngpio]),
    PI5_OLD.map(([label, base, n]) => [`gpiochip${base}`, label, base, n]),
  );
});

t.test("fallback: an unknown label is accepted when exactly one chip has >= 54 lines, with a warning", async (t) => {
  const log = memoryLogger();
  const chip = await resolveGpioChip(sysfs([["some-future-pinctrl", 600, 54], ["raspberrypi-exp-gpio", 654, 8]]), { log });
  t.equal(chip.sysfsNumber(17), 617);
  t.match(log.lines[0], /WARN .*chosen by line count/);
  t.throws(() => pickGpioChip([{ name: "gpiochip0", label: "x", base: 0, ngpio: 8 }]), /none with >= 54 lines.*found: gpiochip0 "x" \(8 lines\)/);
  t.throws(
    () =>
      pickGpioChip([
        { name: "gpiochip0", label: "a", base: 0, ngpio: 54 },
        { name: "gpiochip54", label: "b", base: 54, ngpio: 64 },
      ]),
    /several with >= 54 lines/,
  );
});

t.test("labels are configurable and tried in order", async (t) => {
  const chip = await resolveGpioChip(sysfs(PI5_NEW), { labels: ["gpio-brcmstb@107d508500"] });
  t.equal(chip.base, 512);
});

t.test("no /sys/class/gpio: a message that says what it means", async (t) => {
  await t.rejects(resolveGpioChip(sysfs(PI3, "/elsewhere")), /\/sys\/class\/gpio does not exist: this kernel offers no sysfs GPIO.*hardware: simulate/);
});

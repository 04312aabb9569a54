// The sysfs backend with onoff replaced by a recording fake and /sys/class/gpio by a fixture: the
// BCM → sysfs mapping reaches onoff, raw direction levels honour active_low, debouncing runs on the
// injected clock, and failures say what to do (the gpio group, a missing /sys/class/gpio, no onoff).
import { existsSync } from "node:fs";
import t from "tap";
import type { SysfsReader } from "../../drivers/io/gpio-chip.js";
import { linuxGpio, type OnoffGpio, type OnoffGpioClass } from "../../drivers/io/linux-gpio.js";
import { memoryLogger } from "../../hub/log.js";
import { fakeClock } from "../support/fake-clock.js";

const PI4: SysfsReader = {
  async readdir(p) {
    if (p !== "/sys/class/gpio") throw Object.assign(new Error("ENOENT"), { code: "ENOENT" });
    return ["export", "gpiochip512", "gpiochip570", "unexport"];
  },
  async readFile(p) {
    const m = /gpiochip(\d+)\/(\w+)$/.exec(p)!;
    const chip = m[1] === "512" ? { label: "pinctrl-bcm2711", base: "512", ngpio: "58" } : { label: "raspberrypi-exp-gpio", base: "570", ngpio: "8" };
    return `${chip[m[2] as keyof typeof chip]}\n`;
  },
};

interface FakeLine extends OnoffGpio {
  args: unknown[];
  value: 0 | 1;
  interrupt?: (err: Error | null | undefined, v: 0 | 1) => void;
  unexported: boolean;
  writes: number[];
}

function fakeOnoff(opts: { throwCode?: string } = {}) {
  const made: FakeLine[] = [];
  const Gpio = function (this: unknown, ...args: unknown[]) {
    if (opts.throwCode) throw Object.assign(new Error(`${opts.throwCode}: open '/sys/class/gpio/export'`), { code: opts.throwCode });
    const line: FakeLine = {
      args,
      value: args[1] === "high" ? 1 : 0,
      unexported: false,
      writes: [],
      read: async () => line.value,
      readSync: () => line.value,
      write: async (v) => {
        line.writes.push(v);
        line.value = v;
      },
      watch: (cb) => {
        line.interrupt = cb;
      },
      unwatchAll: () => {
        line.interrupt = undefined;
      },
      unexport: () => {
        line.unexported = true;
      },
    };
    made.push(line);
    return line;
  } as unknown as OnoffGpioClass;
  return { Gpio, made };
}

t.test("inputs: BCM17 is sysfs 529 on a Pi 4 (kernel 6.6), both edges, active_low to sysfs; debounced on the clock", async (t) => {
  const clock = fakeClock();
  const log = memoryLogger();
  const onoff = fakeOnoff();
  const gpio = linuxGpio({ clock, log, fs: PI4, loadGpio: async () => onoff.Gpio });
  const line = await gpio.openInput(17, { edge: "both", debounceMs: 30, activeLow: true });
  const g = onoff.made[0]!;
  t.same(g.args, [529, "in", "both", { activeLow: true }], "onoff's own (real-timer) debounce is not used");
  t.match(log.lines.join("\n"), /GPIO chip chip=gpiochip512.*\n.*GPIO input bcm=17 sysfs=529 active_low=true/);
  const got: boolean[] = [];
  line.watch((v) => got.push(v));
  g.value = 1;
  g.interrupt!(null, 1);
  g.value = 0;
  g.interrupt!(null, 0);
  g.value = 1;
  g.interrupt!(null, 1);
  clock.advance(29);
  t.same(got, []);
  clock.advance(1);
  t.same(got, [true], "one change after 30 ms of quiet");
  t.equal(await line.read(), true);
  await line.close();
  t.ok(g.unexported, "inputs are unexported at close");
  t.equal(clock.pending(), 0);
});

t.test("outputs: the raw direction level is the initial value through active_low; not unexported at close", async (t) => {
  const cases: Array<[boolean, boolean, string]> = [
    [false, false, "low"],
    [true, false, "high"],
    [false, true, "high"],
    [true, true, "low"],
  ];
  for (const [initial, activeLow, dir] of cases) {
    const onoff = fakeOnoff();
    const gpio = linuxGpio({ clock: fakeClock(), log: memoryLogger(), fs: PI4, loadGpio: async () => onoff.Gpio });
    const line = await gpio.openOutput(27, { initial, activeLow });
    t.same(onoff.made[0]!.args, [539, dir, undefined, { activeLow }], `initial ${initial}, active_low ${activeLow} -> direction ${dir}`);
    await line.write(true);
    t.same(onoff.made[0]!.writes, [1], "writes are logical (sysfs applies active_low)");
    await line.close();
    t.notOk(onoff.made[0]!.unexported, "stays exported so the pin keeps driving the safe level");
  }
});

t.test("permission denied names the gpio group", async (t) => {
  const gpio = linuxGpio({ clock: fakeClock(), log: memoryLogger(), fs: PI4, loadGpio: async () => fakeOnoff({ throwCode: "EACCES" }).Gpio });
  await t.rejects(gpio.openInput(17, {}), /GPIO BCM 17 \(sysfs 529\): permission denied on \/sys\/class\/gpio: add the user running the hub to the gpio group/);
});

t.test("busy lines and lines beyond the chip", async (t) => {
  const busy = linuxGpio({ clock: fakeClock(), log: memoryLogger(), fs: PI4, loadGpio: async () => fakeOnoff({ throwCode: "EBUSY" }).Gpio });
  await t.rejects(busy.openOutput(4, { initial: false }), /GPIO BCM 4 \(sysfs 516\) is in use by another driver/);
  const gpio = linuxGpio({ clock: fakeClock(), log: memoryLogger(), fs: PI4, loadGpio: async () => fakeOnoff().Gpio });
  await t.rejects(gpio.openInput(58, {}), /GPIO 58 does not exist: gpiochip512 \("pinctrl-bcm2711"\) has lines 0\.\.57/);
});

t.test("no /sys/class/gpio: a clear message, and onoff is never loaded", async (t) => {
  let loaded = false;
  const gpio = linuxGpio({
    clock: fakeClock(),
    log: memoryLogger(),
    fs: PI4,
    root: "/nonexistent/gpio",
    loadGpio: async () => {
      loaded = true;
      return fakeOnoff().Gpio;
    },
  });
  await t.rejects(gpio.openInput(17, {}), /\/nonexistent\/gpio does not exist: this kernel offers no sysfs GPIO/);
  t.notOk(loaded);
});

t.test("onoff missing: the message says so; a later open tries again", async (t) => {
  let attempts = 0;
  const onoff = fakeOnoff();
  const gpio = linuxGpio({
    clock: fakeClock(),
    log: memoryLogger(),
    fs: PI4,
    loadGpio: async () => {
      attempts++;
      if (attempts === 1) throw new Error("the optional package onoff (GPIO) is not installed");
      return onoff.Gpio;
    },
  });
  await t.rejects(gpio.openInput(17, {}), /onoff \(GPIO\) is not installed/);
  const line = await gpio.openInput(17, {});
  t.equal(attempts, 2, "the failure was not cached");
  await line.close();
});

// Only where sysfs GPIO is absent (like CI): on a Pi this would really export a pin.
t.test("the real onoff loads lazily and fails cleanly without sysfs", { skip: existsSync("/sys/class/gpio") ? "a real /sys/class/gpio exists" : false }, async (t) => {
  const gpio = linuxGpio({ clock: fakeClock(), log: memoryLogger(), fs: PI4 });
  await t.rejects(gpio.openInput(17, {}), /GPIO BCM 17 \(sysfs 529\): \/sys\/class\/gpio is missing|onoff \(GPIO\) is not installed/);
  const plain = linuxGpio({ clock: fakeClock(), log: memoryLogger() });
  await t.rejects(plain.openOutput(27, { initial: false }), /\/sys\/class\/gpio does not exist/);
});

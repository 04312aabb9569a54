// GPIO inputs and outputs against the simulated chip, timing through a fake clock: debounce,
// active_low, edges, safe_state at start and stop, initial, max_on, pulse, and the chip's faults.
import t from "tap";
import { gpioInput, type GpioInputConfig } from "../../drivers/gpio-input.js";
import { gpioOutput, type GpioOutputConfig } from "../../drivers/gpio-output.js";
import { debouncer, type GpioOutputOptions, type GpioProvider } from "../../drivers/io/gpio.js";
import { autoPress, createSimGpioChip } from "../../drivers/io/sim/gpio.js";
import type { DriverContext, Reading } from "../../drivers/types.js";
import { memoryLogger } from "../../hub/log.js";
import { fakeClock, type FakeClock } from "../support/fake-clock.js";

const flush = () => new Promise((r) => setImmediate(r));

function setup() {
  const clock = fakeClock();
  const log = memoryLogger();
  const chip = createSimGpioChip({ clock });
  const ctx: DriverContext = { clock, log, random: () => 0.5, gpio: chip.provider };
  return { clock, log, chip, ctx };
}

const input = (o: Partial<GpioInputConfig> = {}): GpioInputConfig => ({ pin: 17, active_low: false, debounce: 50, ...o });
const output = (o: Partial<GpioOutputConfig> = {}): GpioOutputConfig => ({ pin: 27, active_low: false, safe_state: "OFF", ...o });

t.test("debouncer: one report per settled change, none for a glitch", async (t) => {
  const clock = fakeClock();
  let level = false;
  const got: boolean[] = [];
  const d = debouncer(clock, 20, () => level, false, (v) => got.push(v));
  level = true;
  d.edge();
  clock.advance(5);
  level = false; // bounce
  d.edge();
  clock.advance(5);
  level = true;
  d.edge();
  clock.advance(19);
  t.same(got, [], "not before the level held 20 ms");
  clock.advance(1);
  t.same(got, [true]);
  level = false;
  d.edge();
  clock.advance(10);
  level = true; // back before 20 ms: a glitch
  d.edge();
  clock.advance(50);
  t.same(got, [true], "a glitch shorter than the debounce time is not reported");
  d.cancel();
  t.equal(clock.pending(), 0);
});

t.test("button: a bouncy press and release give exactly ON then OFF after the debounce time", async (t) => {
  const { clock, chip, ctx } = setup();
  const dev = await gpioInput.open(input({ debounce: 50 }), ctx);
  const got: Reading[] = [];
  dev.watch!((r) => got.push(r));
  t.same(await dev.read!(), { state: false }, "idle");
  chip.bounce(17, 1, { count: 5, spacingMs: 2 }); // 1,0,1,0,1 over 8 ms
  clock.advance(8 + 49);
  t.same(got, [], "chatter and the first 49 ms after it: nothing");
  clock.advance(1);
  t.same(got, [{ state: true }], "one ON");
  t.same(await dev.read!(), { state: true });
  chip.bounce(17, 0, { count: 3, spacingMs: 1 });
  clock.advance(100);
  t.same(got, [{ state: true }, { state: false }], "one OFF");
  await dev.close();
  t.equal(chip.mode(17), undefined, "released");
});

t.test("debounce 0 reports every edge", async (t) => {
  const { chip, ctx } = setup();
  const dev = await gpioInput.open(input({ debounce: 0 }), ctx);
  const got: unknown[] = [];
  dev.watch!((r) => got.push(r.state));
  chip.drive(17, 1);
  chip.drive(17, 0);
  chip.drive(17, 0); // no change, no interrupt
  chip.drive(17, 1);
  t.same(got, [true, false, true]);
  await dev.close();
});

t.test("active_low input: low is ON; the idle level is high (pull-up)", async (t) => {
  const { clock, chip, ctx } = setup();
  const dev = await gpioInput.open(input({ active_low: true, debounce: 10 }), ctx);
  const got: unknown[] = [];
  dev.watch!((r) => got.push(r.state));
  t.equal(chip.level(17), 1, "idle high");
  t.same(await dev.read!(), { state: false });
  chip.press(17, 100);
  t.equal(chip.level(17), 0, "pressing pulls it low");
  clock.advance(20);
  t.same(got, [true]);
  clock.advance(200);
  t.same(got, [true, false], "released after 100 ms");
  t.equal(chip.level(17), 1);
  await dev.close();
});

t.test("edge filter at the seam: rising only", async (t) => {
  const { chip } = setup();
  const line = await chip.provider.openInput(5, { edge: "rising" });
  const got: boolean[] = [];
  line.watch((v) => got.push(v));
  chip.drive(5, 1);
  chip.drive(5, 0);
  chip.drive(5, 1);
  t.same(got, [true, true]);
  await line.close();
});

/** Records what a driver asks of the provider, in order, on top of the simulator. */
function recording(p: GpioProvider, calls: string[]): GpioProvider {
  return {
    name: "recording",
    openInput: (bcm, o) => p.openInput(bcm, o),
    async openOutput(bcm: number, o: GpioOutputOptions) {
      calls.push(`open ${bcm} initial=${o.initial} activeLow=${o.activeLow}`);
      const line = await p.openOutput(bcm, o);
      return {
        ...line,
        write: async (v: boolean) => {
          calls.push(`write ${v}`);
          await line.write(v);
        },
        close: async () => {
          calls.push("close");
          await line.close();
        },
      };
    },
  };
}

t.test("relay: opened at safe_state, then set to initial; back to safe_state at stop", async (t) => {
  const { chip, ctx } = setup();
  const calls: string[] = [];
  const c = { ...ctx, gpio: recording(chip.provider, calls) };
  const dev = await gpioOutput.open(output({ initial: "ON" }), c);
  t.same(calls, ["open 27 initial=false activeLow=false", "write true"], "safe first (glitch-free open), then initial");
  t.equal(chip.level(27), 1);
  t.same(await dev.read!(), { state: true });
  const emitted: Reading[] = [];
  dev.watch!((r) => emitted.push(r));
  await dev.close();
  t.same(calls.slice(2), ["write false", "close"], "safe state written before the line is released");
  t.equal(chip.level(27), 0);
  t.same(emitted, [{ state: false }], "the host is told about the safe state");
});

t.test("relay without initial stays at safe_state; safe_state ON is honoured", async (t) => {
  const { chip, ctx } = setup();
  const off = await gpioOutput.open(output(), ctx);
  t.equal(chip.level(27), 0);
  t.same(await off.read!(), { state: false });
  await off.close();
  const on = await gpioOutput.open(output({ pin: 22, safe_state: "ON", initial: "OFF" }), ctx);
  t.equal(chip.level(22), 0, "initial OFF after the safe ON");
  await on.close();
  t.equal(chip.level(22), 1, "safe ON at stop");
});

t.test("active_low output: ON drives the pin low, including at open", async (t) => {
  const { chip, ctx } = setup();
  const dev = await gpioOutput.open(output({ active_low: true }), ctx);
  t.equal(chip.level(27), 1, "OFF (safe) is high on an active-low relay board");
  t.same(await dev.write!({ state: true }), { state: true });
  t.equal(chip.level(27), 0);
  await dev.close();
  t.equal(chip.level(27), 1);
});

t.test("max_on: the hub turns it off, repeated ON does not extend it, OFF cancels it", async (t) => {
  const { clock, chip, ctx, log } = setup();
  const dev = await gpioOutput.open(output({ max_on: 60_000 }), ctx);
  const emitted: Reading[] = [];
  dev.watch!((r) => emitted.push(r));
  await dev.write!({ state: true });
  clock.advance(59_000);
  await dev.write!({ state: true }); // the sender insists
  clock.advance(999);
  await flush();
  t.equal(chip.level(27), 1);
  clock.advance(1);
  await flush();
  t.equal(chip.level(27), 0, "off 60 s after switching on, whatever the sender did");
  t.same(emitted, [{ state: false }]);
  t.match(log.lines.join("\n"), /WARN .*turned off: on for max_on max_on_ms=60000/);
  await dev.write!({ state: true });
  await dev.write!({ state: false });
  clock.advance(120_000);
  await flush();
  t.same(emitted, [{ state: false }], "no late switch-off after a manual OFF");
  t.equal(clock.pending(), 0);
  await dev.close();
});

t.test("pulse: each ON is a pulse; initial ON pulses too", async (t) => {
  const { clock, chip, ctx } = setup();
  const dev = await gpioOutput.open(output({ pulse: 500, initial: "ON" }), ctx);
  t.equal(chip.level(27), 1);
  clock.advance(500);
  await flush();
  t.equal(chip.level(27), 0, "initial ON ended after the pulse");
  const emitted: Reading[] = [];
  dev.watch!((r) => emitted.push(r));
  await dev.write!({ state: true });
  clock.advance(499);
  await flush();
  t.equal(chip.level(27), 1);
  clock.advance(1);
  await flush();
  t.equal(chip.level(27), 0);
  t.same(emitted, [{ state: false }]);
  await dev.close();
});

t.test("pulse shorter than max_on wins; close cancels pending timers", async (t) => {
  const { clock, chip, ctx } = setup();
  const dev = await gpioOutput.open(output({ pulse: 200, max_on: 1_000 }), ctx);
  await dev.write!({ state: true });
  clock.advance(200);
  await flush();
  t.equal(chip.level(27), 0);
  await dev.write!({ state: true });
  await dev.close();
  t.equal(clock.pending(), 0, "no timer outlives the device");
  t.equal(chip.level(27), 0);
});

t.test("a gpio_output refuses commands that are not { state: boolean }", async (t) => {
  const { ctx } = setup();
  const dev = await gpioOutput.open(output(), ctx);
  await t.rejects(dev.write!({ state: "ON" }), /takes \{ state: boolean \}/);
  await dev.close();
});

t.test("simulated chip faults: permission, busy, missing line; no gpio at all", async (t) => {
  const { chip, ctx } = setup();
  chip.failOpen(17, "EACCES");
  await t.rejects(gpioInput.open(input(), ctx), { code: "EACCES" });
  chip.failOpen(17, undefined);
  const a = await gpioInput.open(input(), ctx);
  await t.rejects(gpioOutput.open(output({ pin: 17 }), ctx), { code: "EBUSY" }, "one line, one user");
  await a.close();
  await t.rejects(gpioInput.open(input({ pin: 54 }), ctx), /GPIO 54 does not exist/);
  await t.rejects(gpioInput.open(input(), { ...ctx, gpio: undefined }), /no GPIO/);
});

t.test("autoPress presses every open input now and then, through the clock", async (t) => {
  const { clock, chip, ctx } = setup();
  const dev = await gpioInput.open(input({ active_low: true }), ctx);
  const got: unknown[] = [];
  dev.watch!((r) => got.push(r.state));
  const stop = autoPress(chip, { clock: clock as FakeClock, random: () => 0.5, everyMs: 10_000, holdMs: 300 });
  clock.advance(9_999);
  t.same(got, []);
  clock.advance(1_000);
  t.same(got, [true, false], "pressed at 10 s and released");
  clock.advance(10_000);
  t.same(got, [true, false, true, false]);
  stop();
  clock.advance(1_000);
  await dev.close();
  t.equal(clock.pending(), 0);
});

// MCP23017: the register model against the datasheet (reset values, BANK = 0 addresses, sequential
// and byte mode, GPIO reads pin levels and writes OLAT, IPOL, interrupt-on-change and its clearing),
// then the GPIO backend through it: glitch-free outputs, pulled-up inputs that are polled, debounced
// and woken by the INTA interrupt on a simulated Pi pin, gpio_input/gpio_output devices on expander
// pins, and the faults (no chip, wrong chip, a chip vanishing while polled).
import t from "tap";
import { gpioInput } from "../../drivers/gpio-input.js";
import { gpioOutput } from "../../drivers/gpio-output.js";
import { MCP, mcp23017Gpio } from "../../drivers/mcp23017.js";
import { createSimGpioChip } from "../../drivers/io/sim/gpio.js";
import { createMcp23017, REG } from "../../drivers/io/sim/mcp23017.js";
import { rig, settle, writes } from "./helpers.js";

const tick = () => new Promise<void>((r) => setImmediate(r));

t.test("model: reset state and BANK = 0 register map (table 3-5)", async (t) => {
  const { bus } = rig();
  const chip = createMcp23017();
  bus.attach(0x20, chip);
  const all = Buffer.alloc(22);
  await bus.readI2cBlock(0x20, 0x00, 22, all);
  t.same([...all.subarray(0, 2)], [0xff, 0xff], "IODIRA/B reset to 0xFF: all inputs");
  t.same([...all.subarray(2, 22)].filter((b) => b !== 0), [], "every other register 0");
  t.equal(REG.GPIOA, 0x12);
  t.equal(MCP.OLATA, REG.OLATA);
  await bus.writeByte(0x20, REG.IOCON, 0x40);
  t.equal(await bus.readByte(0x20, 0x0b), 0x40, "IOCON at 0x0A and 0x0B is one register");
  await t.rejects(bus.writeByte(0x20, 0x16, 0), { code: "EREMOTEIO" }, "no register 0x16");
});

t.test("model: GPIO reads pin levels, GPIO writes go to OLAT, IPOL inverts inputs", async (t) => {
  const { bus } = rig();
  const chip = createMcp23017();
  bus.attach(0x20, chip);
  await bus.writeByte(0x20, REG.IODIRA, 0xf0); // GPA0-3 outputs
  await bus.writeByte(0x20, REG.GPIOA, 0x05); // a write to GPIO lands in OLAT
  t.equal(await bus.readByte(0x20, REG.OLATA), 0x05);
  t.equal(chip.level(0), 1);
  t.equal(chip.level(1), 0);
  await bus.writeByte(0x20, REG.GPPUA, 0x10); // pull-up on GPA4
  chip.drive(5, 1);
  t.equal(await bus.readByte(0x20, REG.GPIOA), 0x35, "outputs from OLAT, GPA4 pulled up, GPA5 driven high, others floating low");
  await bus.writeByte(0x20, REG.IPOLA, 0x21); // IPOL on GPA5 (input) and GPA0 (output: no effect)
  t.equal(await bus.readByte(0x20, REG.GPIOA), 0x15, "IPOL inverts inputs only");
  chip.drive(9, 1);
  const two = Buffer.alloc(2);
  await bus.readI2cBlock(0x20, REG.GPIOA, 2, two);
  t.same([...two], [0x15, 0x02], "sequential mode: GPIOA then GPIOB");
});

t.test("model: byte mode toggles within the A/B pair; sequential mode wraps after 0x15", async (t) => {
  const { bus } = rig();
  const chip = createMcp23017();
  bus.attach(0x20, chip);
  await bus.i2cWrite(0x20, 3, Buffer.of(REG.OLATB, 0x11, 0x22));
  t.same([chip.registers[REG.OLATB], chip.registers[REG.IODIRA]], [0x11, 0x22], "0x15 then 0x00");
  await bus.writeByte(0x20, REG.IOCON, 0x20); // SEQOP = 1
  await bus.i2cWrite(0x20, 4, Buffer.of(REG.OLATA, 1, 2, 3));
  t.same([chip.registers[REG.OLATA], chip.registers[REG.OLATB]], [3, 2], "A, B, A");
});

t.test("model: interrupt on change, INTCAP, cleared by reading GPIO, INTA mirrored", async (t) => {
  const { bus } = rig();
  const chip = createMcp23017();
  bus.attach(0x20, chip);
  const ints: Array<0 | 1 | undefined> = [];
  chip.onInterrupt = (l) => ints.push(l);
  await bus.writeByte(0x20, REG.IOCON, 0x40); // MIRROR
  await bus.writeByte(0x20, REG.GPINTENB, 0x01);
  t.equal(chip.int("A"), 1, "idle: high (active-low push-pull)");
  chip.drive(8, 1);
  t.equal(chip.int("A"), 0, "GPB0 changed: INTA low through MIRROR");
  t.equal(await bus.readByte(0x20, REG.INTFB), 0x01);
  chip.drive(8, 0);
  t.equal(await bus.readByte(0x20, REG.INTCAPB), 0x01, "INTCAP holds the state at the interrupt");
  t.equal(chip.int("A"), 1, "reading INTCAP cleared it");
  chip.drive(8, 1);
  await bus.readByte(0x20, REG.GPIOB);
  t.same(ints, [0, 1, 0, 1], "INTA edges");
  chip.drive(3, 1);
  t.same(ints.length, 4, "GPINTEN clear: no interrupt");
});

t.test("backend: output latched before it drives; input pulled up, polled, debounced", async (t) => {
  const { clock, bus, ctx } = rig();
  const chip = createMcp23017();
  bus.attach(0x21, chip);
  const mcp = mcp23017Gpio({ name: "x", bus: 1, address: 0x21, pollMs: 20 }, { clock, log: ctx.log, i2c: ctx.i2c });
  const out = await settle(clock, mcp.openOutput(10, { initial: true, activeLow: true }));
  const w = writes(bus, 0x21);
  t.same(w.slice(-2), ["1500", "01fb"], "OLATB = 0 (active low ON) first, then IODIRB bit 2 (GPB2) cleared");
  t.equal(chip.level(10), 0, "active-low ON drives low");
  await out.write(false);
  t.equal(chip.level(10), 1);
  t.equal(await out.read(), false);

  const input = await settle(clock, mcp.openInput(3, { activeLow: true, debounceMs: 30 }));
  t.equal(chip.registers[REG.GPPUA]! & 0x08, 0x08, "pull-up on by default");
  t.equal(await input.read(), false, "pulled up, active low: OFF");
  const seen: boolean[] = [];
  input.watch((v) => seen.push(v));
  chip.drive(3, 0); // pressed
  clock.advance(5);
  chip.drive(3, 1); // bounce, shorter than a poll: unseen
  clock.advance(5);
  chip.drive(3, 0);
  for (let i = 0; i < 100; i++) {
    clock.advance(1);
    await tick();
  }
  t.same(seen, [true], "one debounced press");
  chip.drive(3, 1);
  for (let i = 0; i < 100; i++) {
    clock.advance(1);
    await tick();
  }
  t.same(seen, [true, false], "release");
  await t.rejects(mcp.openInput(3, {}), { code: "EBUSY" });
  await t.rejects(mcp.openOutput(16, { initial: false }), /pin 16 does not exist/);
  const plain = await settle(clock, mcp.openInput(4, { pullUp: false }));
  t.equal(chip.registers[REG.GPPUA]! & 0x10, 0, "pull_up: false leaves GPPU clear");
  await plain.close();
  await input.close();
});

t.test("backend: INTA on a Pi pin wakes a read at once", async (t) => {
  const { clock, bus, ctx } = rig();
  const chip = createMcp23017();
  bus.attach(0x20, chip);
  const pi = createSimGpioChip({ clock });
  chip.onInterrupt = (l) => pi.drive(22, l ?? 1);
  pi.drive(22, 1);
  const mcp = mcp23017Gpio({ name: "x", bus: 1, address: 0x20, pollMs: 60_000, interruptPin: 22 }, { clock, log: ctx.log, i2c: ctx.i2c, gpio: pi.provider });
  const input = await settle(clock, mcp.openInput(12, { debounceMs: 0 }));
  t.equal(chip.registers[REG.GPINTENB], 0x10, "GPINTEN set for GPB4");
  t.equal(chip.registers[REG.IOCON], 0x40, "MIRROR");
  t.equal(pi.mode(22), "in");
  const seen: boolean[] = [];
  input.watch((v) => seen.push(v));
  chip.drive(12, 0);
  for (let i = 0; i < 5; i++) await tick();
  t.same(seen, [false], "read on the interrupt, long before the next poll");
  t.equal(chip.int("A"), 1, "the read cleared the interrupt");
  await input.close();
  t.equal(pi.mode(22), undefined, "interrupt line released with the last input");
});

t.test("backend: a change first seen by another pin's read() still reaches its watchers", async (t) => {
  const { clock, bus, ctx } = rig();
  const chip = createMcp23017();
  bus.attach(0x20, chip);
  const mcp = mcp23017Gpio({ name: "x", bus: 1, address: 0x20, pollMs: 50 }, { clock, log: ctx.log, i2c: ctx.i2c });
  const door = await settle(clock, mcp.openInput(0, { debounceMs: 0 }));
  const other = await settle(clock, mcp.openInput(1, { debounceMs: 0 }));
  const seen: boolean[] = [];
  door.watch((v) => seen.push(v));
  chip.drive(0, 0); // the door opens between two polls...
  t.equal(await other.read(), true, "...and another device's heartbeat reads the port first");
  for (let i = 0; i < 100; i++) {
    clock.advance(1);
    await tick();
  }
  t.same(seen, [false], "the door's change is reported, not swallowed by the other read");
  chip.drive(0, 1);
  for (let i = 0; i < 100; i++) {
    clock.advance(1);
    await tick();
  }
  t.same(seen, [false, true], "and its debouncer is in step for the next change");
  await door.close();
  await other.close();
});

t.test("devices: gpio_input and gpio_output on expander pins", async (t) => {
  const { clock, bus, ctx } = rig();
  const chip = createMcp23017();
  bus.attach(0x20, chip);
  const mcp = mcp23017Gpio({ name: "ext", bus: 1, address: 0x20, pollMs: 10 }, { clock, log: ctx.log, i2c: ctx.i2c });
  const dctx = { ...ctx, expanders: (n: string) => (n === "ext" ? mcp : undefined) };
  const relay = await settle(clock, gpioOutput.open({ pin: 0, active_low: false, safe_state: "OFF", expander: "ext" }, dctx));
  t.same(await relay.write!({ state: true }), { state: true });
  t.equal(chip.level(0), 1, "relay on");
  await relay.close();
  t.equal(chip.level(0), 0, "safe state at stop");
  const button = await settle(clock, gpioInput.open({ pin: 15, active_low: true, debounce: 0, expander: "ext" }, dctx));
  const got: unknown[] = [];
  button.watch!((r) => got.push(r.state));
  chip.drive(15, 0);
  for (let i = 0; i < 20; i++) {
    clock.advance(1);
    await tick();
  }
  t.same(got, [true]);
  await button.close();
  await t.rejects(gpioInput.open({ pin: 1, active_low: false, debounce: 0, expander: "nope" }, dctx), /no GPIO expander named nope/);
});

t.test("faults: no chip, wrong chip, a chip vanishing while polled", async (t) => {
  const { clock, bus, ctx } = rig();
  const mcp = mcp23017Gpio({ name: "x", bus: 1, address: 0x27, pollMs: 10 }, { clock, log: ctx.log, i2c: ctx.i2c });
  await t.rejects(settle(clock, mcp.openInput(0, {})), /^MCP23017 at 0x27 on bus 1: no answer \(EREMOTEIO/);
  const chip = createMcp23017();
  chip.faults.wrongId = true;
  bus.attach(0x27, chip);
  await t.rejects(settle(clock, mcp.openInput(0, {})), { code: "EWRONGCHIP", message: /IOCON reads 0x00 at 0x0a and 0xff at 0x0b.*not an MCP23017/ });
  chip.faults.wrongId = false;
  const input = await settle(clock, mcp.openInput(0, {}), 1000);
  t.ok(input, "opens once the chip answers (a failed init is not cached)");
  chip.faults.nack = true;
  for (let i = 0; i < 50; i++) {
    clock.advance(1);
    await tick();
  }
  t.equal(ctx.log.lines.filter((l) => l.includes("input read failed")).length, 1, "logged once, not every poll");
  await t.rejects(input.read(), /MCP23017 at 0x27 on bus 1: no answer/, "a read reports it (device offline with a heartbeat)");
  chip.faults.nack = false;
  for (let i = 0; i < 20; i++) {
    clock.advance(1);
    await tick();
  }
  t.equal(ctx.log.lines.filter((l) => l.includes("answers again")).length, 1, "recovery logged");
  await input.close();
});

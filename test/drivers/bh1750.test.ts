// BH1750 against its model: one-time H-resolution (the chip powers down after), the wait scaled by
// MTreg, lux within one count, why the wait matters (no busy flag: early reads return old data).
import t from "tap";
import { bh1750, bh1750Lux, bh1750WaitMs } from "../../drivers/bh1750.js";
import { createBh1750 } from "../../drivers/io/sim/bh1750.js";
import { fixedEnvironment } from "../../drivers/io/sim/environment.js";
import { rig, settle, writes } from "./helpers.js";

t.test("conversion (datasheet p.11): lux = raw / 1.2 × 69/MTreg", async (t) => {
  // Datasheet p.7 example: high byte 1000_0011, low byte 1001_0000 → (2^15+2^9+2^8+2^7+2^4)/1.2 ≈ 28067 lx.
  t.equal(Math.round(bh1750Lux(0b1000_0011_1001_0000, 69, "high")), 28067);
  t.equal(bh1750Lux(120, 138, "high"), 50);
  t.equal(bh1750Lux(120, 69, "high2"), 50);
  t.equal(bh1750WaitMs(69), 180);
  t.equal(bh1750WaitMs(254), 663);
});

t.test("one-time H-res reading within one count; the chip is powered down afterwards", async (t) => {
  const { clock, bus, ctx } = rig();
  const env = fixedEnvironment({ lux: 432.1 });
  const chip = createBh1750({ clock, env });
  bus.attach(0x23, chip);
  const dev = await settle(clock, bh1750.open({ bus: 1, address: 0x23, mtreg: 69, resolution: "high" }, ctx));
  const r = await settle(clock, dev.read!());
  t.ok(Math.abs((r.lux as number) - 432.1) <= 1 / 1.2, `lux ${r.lux}`);
  t.notOk(chip.powered, "one-time mode powered down");
  t.same(writes(bus, 0x23), ["01", "01", "42", "65", "20"], "power on, MTreg 69 = 0x40|2, 0x60|5, one-time H-res");
  const sensitive = await settle(clock, bh1750.open({ bus: 1, address: 0x23, mtreg: 254, resolution: "high2" }, ctx));
  env.set({ lux: 3.3 });
  const dark = await settle(clock, sensitive.read!());
  t.equal(chip.mtreg, 254);
  t.ok(Math.abs((dark.lux as number) - 3.3) <= (69 / 254) / 1.2 / 2, `lux ${dark.lux} at MTreg 254 and H-res mode 2`);
});

t.test("the model has no busy flag: reading before the conversion ends gives the old value", async (t) => {
  const { clock, bus } = rig();
  const env = fixedEnvironment({ lux: 100 });
  bus.attach(0x5c, createBh1750({ clock, env }));
  for (const op of [0x01, 0x20]) await bus.i2cWrite(0x5c, 1, Buffer.of(op));
  clock.advance(200);
  const buf = Buffer.alloc(2);
  await bus.i2cRead(0x5c, 2, buf);
  t.equal(buf.readUInt16BE(0), 120);
  env.set({ lux: 500 });
  for (const op of [0x01, 0x20]) await bus.i2cWrite(0x5c, 1, Buffer.of(op));
  clock.advance(50);
  await bus.i2cRead(0x5c, 2, buf);
  t.equal(buf.readUInt16BE(0), 120, "still the previous result");
});

t.test("faults: NACK at open and mid-run", async (t) => {
  const { clock, bus, ctx } = rig();
  await t.rejects(settle(clock, bh1750.open({ bus: 1, address: 0x23, mtreg: 69, resolution: "high" }, ctx)), /BH1750 at 0x23 on bus 1: no answer/);
  const chip = createBh1750({ clock, env: fixedEnvironment() });
  bus.attach(0x23, chip);
  const dev = await settle(clock, bh1750.open({ bus: 1, address: 0x23, mtreg: 69, resolution: "high" }, ctx));
  chip.faults.nack = true;
  await t.rejects(settle(clock, dev.read!()), { code: "EREMOTEIO" });
});

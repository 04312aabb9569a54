// HTU21D against its model: the datasheet's CRC and conversion vectors as oracles, the byte
// sequence (reset, user register, 0xF3/0xF5 no-hold), waits per the resolution table, NACK while
// converting, status bits masked, and the faults: a bad CRC is retried once, counted and never
// published; stuck busy, a wrong chip and a missing address give clear errors.
import t from "tap";
import { htu21d, htu21dCrc, htu21dHumidity, htu21dTemperature, parseAnswer, type Htu21dDevice } from "../../drivers/htu21d.js";
import { fixedEnvironment } from "../../drivers/io/sim/environment.js";
import { createHtu21d } from "../../drivers/io/sim/htu21d.js";
import { rig, settle, writes } from "./helpers.js";

t.test("CRC-8 0x31 init 0x00: the datasheet's vectors", async (t) => {
  t.equal(htu21dCrc([0xdc]), 0x79);
  t.equal(htu21dCrc([0x68, 0x3a]), 0x7c);
  t.equal(htu21dCrc([0x4e, 0x85]), 0x6b);
});

t.test("conversion: the datasheet's examples (0x7C80 → 54.8 %RH, 0x683A → 24.7 °C), status bits masked", async (t) => {
  t.equal(htu21dHumidity(0x7c80).toFixed(1), "54.8");
  // 0x683A carries status bits 0b10 in its LSB: the signal is 0x6838.
  const s = parseAnswer(Uint8Array.of(0x68, 0x38, htu21dCrc([0x68, 0x38])), "temperature");
  t.equal(s, 0x6838);
  t.equal(htu21dTemperature(s).toFixed(1), "24.7");
  t.equal(parseAnswer(Uint8Array.of(0x7c, 0x82, htu21dCrc([0x7c, 0x82])), "humidity"), 0x7c80, "humidity status bit 1 masked");
  t.equal(htu21dHumidity(0), 0, "-6 %RH clamped");
  t.equal(htu21dHumidity(0xfffc), 100, "118.99 %RH clamped");
  t.throws(() => parseAnswer(Uint8Array.of(0x68, 0x38, 0x00), "temperature"), { code: "EBADCRC" });
  t.throws(() => parseAnswer(Uint8Array.of(0x7c, 0x82, htu21dCrc([0x7c, 0x82])), "temperature"), { code: "EBADDATA" }, "a humidity answer is not a temperature");
});

t.test("model: NACK while converting, one answer per measurement, user register", async (t) => {
  const { clock, bus } = rig();
  const chip = createHtu21d({ clock, env: fixedEnvironment({ temperature: 24.7 }) });
  bus.attach(0x40, chip);
  await bus.i2cWrite(0x40, 1, Buffer.of(0xf3));
  await t.rejects(bus.i2cRead(0x40, 3, Buffer.alloc(3)), { code: "EREMOTEIO" }, "converting: NACK");
  clock.advance(50);
  const b = Buffer.alloc(3);
  await bus.i2cRead(0x40, 3, b);
  t.equal(b[1]! & 0x03, 0, "temperature: status bits 00");
  t.equal(b[2], htu21dCrc([b[0]!, b[1]!]), "CRC");
  t.equal(htu21dTemperature(((b[0]! << 8) | b[1]!) & 0xfffc).toFixed(1), "24.7");
  await t.rejects(bus.i2cRead(0x40, 3, Buffer.alloc(3)), { code: "EREMOTEIO" }, "nothing waiting: NACK");
  await t.rejects(bus.i2cWrite(0x40, 1, Buffer.of(0xe3)), { code: "EREMOTEIO" }, "hold master needs clock stretching");
  t.equal(chip.userRegister, 0x02, "default user register");
});

t.test("driver: reset, resolution, no-hold T then RH, values within one step", async (t) => {
  const { clock, bus, ctx } = rig();
  const env = fixedEnvironment({ temperature: 22.37, humidity: 41.2 });
  const chip = createHtu21d({ clock, env });
  bus.attach(0x40, chip);
  const dev = (await settle(clock, htu21d.open({ bus: 1, address: 0x40, resolution: "rh12_t14" }, ctx))) as Htu21dDevice;
  t.same(writes(bus, 0x40), ["fe", "e7"], "soft reset, read user register (already 12/14 bit: no write)");
  const t0 = clock.monotonic();
  const r = await settle(clock, dev.read!());
  t.ok(clock.monotonic() - t0 >= 50 + 16, "waited the 14-bit T (50 ms) and 12-bit RH (16 ms) maxima");
  t.ok(Math.abs((r.temperature as number) - 22.37) <= (175.72 * 4) / 65536, `temperature ${r.temperature}`);
  t.ok(Math.abs((r.humidity as number) - 41.2) <= (125 * 16) / 65536, `humidity ${r.humidity}`);
  t.same(writes(bus, 0x40).slice(2), ["f3", "f5"]);

  const fast = await settle(clock, htu21d.open({ bus: 1, address: 0x40, resolution: "rh8_t12" }, ctx));
  t.same(writes(bus, 0x40).slice(-4), ["fe", "e7", "e603", "e7"], "user register written with the reserved bits kept");
  t.equal(chip.userRegister, 0x03);
  const t1 = clock.monotonic();
  const r2 = await settle(clock, fast.read!());
  t.ok(clock.monotonic() - t1 < 50, "8/12-bit conversions are shorter");
  t.ok(Math.abs((r2.humidity as number) - 41.2) <= (125 * 256) / 65536, "8-bit humidity within one step");
});

t.test("faults: bad CRC retried once, counted, never published; stuck busy; wrong chip; no chip", async (t) => {
  const { clock, bus, ctx } = rig();
  const chip = createHtu21d({ clock, env: fixedEnvironment() });
  bus.attach(0x40, chip);
  const dev = (await settle(clock, htu21d.open({ bus: 1, address: 0x40, resolution: "rh12_t14" }, ctx))) as Htu21dDevice;
  chip.faults.badCrc = true;
  const before = chip.measurements;
  await t.rejects(settle(clock, dev.read!()), { code: "EBADCRC", message: /^HTU21D at 0x40 on bus 1: CRC mismatch on temperature/ });
  t.equal(chip.measurements - before, 2, "measured twice: one retry");
  t.equal(dev.crcErrors, 2, "both refused answers counted");
  chip.faults.badCrc = false;
  t.ok((await settle(clock, dev.read!())).humidity !== undefined, "recovers");

  chip.faults.stuckBusy = true;
  await t.rejects(settle(clock, dev.read!()), { code: "EBUSY", message: /^HTU21D at 0x40 on bus 1: no result after 10 ms/ });
  chip.faults.stuckBusy = false;

  chip.faults.wrongId = true;
  await t.rejects(settle(clock, htu21d.open({ bus: 1, address: 0x40, resolution: "rh12_t14" }, ctx)), { code: "EWRONGCHIP", message: /not an HTU21D/ });
  chip.faults.wrongId = false;

  bus.detach(0x40);
  await t.rejects(settle(clock, dev.read!()), /HTU21D at 0x40 on bus 1: no answer \(EREMOTEIO, the chip did not acknowledge\)/);
  await t.rejects(settle(clock, htu21d.open({ bus: 1, address: 0x41, resolution: "rh12_t14" }, ctx)), /HTU21D at 0x41 on bus 1: no answer/, "nothing at the address");
});

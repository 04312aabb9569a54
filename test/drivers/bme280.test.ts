// BME280/BMP280: the datasheet's worked example as oracle (BMP280 datasheet §3.12), byte-level
// runs against the register model, the traps (ctrl_hum order, split H4/H5, skipped values), and
// faults: wrong chip, NACK, stuck busy, a vanishing chip.
import t from "tap";
import {
  bme280,
  bmp280,
  type Calibration,
  compensate,
  compensatePressure,
  compensateTemperature,
  parseCalibration,
  parseRaw,
} from "../../drivers/bme280.js";
import { createBme280, EXAMPLE_CALIBRATION } from "../../drivers/io/sim/bme280.js";
import { fixedEnvironment } from "../../drivers/io/sim/environment.js";
import { rig, settle, writes } from "./helpers.js";

const DATASHEET: Calibration = { ...EXAMPLE_CALIBRATION, H1: 0, H2: 0, H3: 0, H4: 0, H5: 0, H6: 0 };

t.test("datasheet worked example: adc_T 519888, adc_P 415148 → t_fine 128422, 25.08 °C, 100653 Pa", async (t) => {
  const { centi, tFine } = compensateTemperature(DATASHEET, 519888);
  t.equal(tFine, 128422);
  t.equal(centi, 2508);
  const pa = compensatePressure(DATASHEET, 415148, tFine) / 256;
  t.equal(Math.round(pa), 100653);
  // The table's 100653.27 is the double-precision result; the 64-bit integer one is 1/256-Pa steps off.
  t.ok(Math.abs(pa - 100653.27) < 0.05, `64-bit result ${pa} Pa agrees with the datasheet's 100653.27`);
});

t.test("the worked example end to end: a BMP280 model holding those ADC values, read by the driver", async (t) => {
  const { clock, bus, ctx } = rig();
  const chip = createBme280({ clock, env: fixedEnvironment(), variant: "bmp280" });
  chip.setRaw({ t: 519888, p: 415148 });
  bus.attach(0x77, chip);
  const dev = await settle(clock, bmp280.open({ bus: 1, address: 0x77 }, ctx));
  const r = await settle(clock, dev.read!());
  t.same(Object.keys(r), ["temperature", "pressure"], "no humidity on a BMP280");
  t.equal(r.temperature, 25.08);
  t.equal(Math.round((r.pressure as number) * 100), 100653, `${r.pressure} hPa = 100653 Pa`);
});

t.test("calibration decoding: little-endian words, unsigned T1/P1, H4/H5 sharing 0xE5, signed nibbles", async (t) => {
  const { clock } = rig();
  const cal = { ...EXAMPLE_CALIBRATION, H2: -300, H4: -1234, H5: -567, H6: -20, H1: 200 };
  const chip = createBme280({ clock, env: fixedEnvironment(), calibration: cal });
  const r = chip.registers;
  t.equal(r[0xe5], ((-1234 & 0x0f) | ((-567 & 0x0f) << 4)) & 0xff, "0xE5 holds H4[3:0] and H5[3:0]");
  t.same(parseCalibration(r.subarray(0x88, 0x88 + 26), r.subarray(0xe1, 0xe8)), cal);
});

t.test("the driver reads the model's environment within the ADC's quantisation", async (t) => {
  const { clock, bus, ctx } = rig();
  const env = fixedEnvironment({ temperature: 22.37, humidity: 41.2, pressure: 98_765 });
  bus.attach(0x76, createBme280({ clock, env }));
  const dev = await settle(clock, bme280.open({ bus: 1, address: 0x76 }, ctx));
  let r = await settle(clock, dev.read!());
  t.ok(Math.abs((r.temperature as number) - 22.37) <= 0.011, `temperature ${r.temperature}`);
  t.ok(Math.abs((r.humidity as number) - 41.2) <= 0.01, `humidity ${r.humidity}`);
  t.ok(Math.abs((r.pressure as number) - 987.65) <= 0.04, `pressure ${r.pressure} hPa (16-bit at x1: ~2.6 Pa steps)`);
  env.set({ temperature: -12.5, humidity: 88, pressure: 103_000 });
  r = await settle(clock, dev.read!());
  t.ok(Math.abs((r.temperature as number) + 12.5) <= 0.011, `temperature ${r.temperature}`);
  t.ok(Math.abs((r.humidity as number) - 88) <= 0.01, `humidity ${r.humidity}`);
  t.ok(Math.abs((r.pressure as number) - 1030) <= 0.04, `pressure ${r.pressure}`);
  // Forced mode: ctrl_hum (0xF2) is written before ctrl_meas (0xF4), as §5.4.3 requires.
  const w = writes(bus, 0x76).filter((x) => x.length === 4);
  t.same(w.slice(-2), ["f201", "f425"], "ctrl_hum x1, then ctrl_meas x1/x1/forced");
  t.equal(clock.pending(), 0, "no timers left behind");
});

t.test("model trap: ctrl_hum written after ctrl_meas is not applied, and the driver refuses the skipped value", async (t) => {
  const { clock, bus } = rig();
  bus.attach(0x76, createBme280({ clock, env: fixedEnvironment() }));
  await bus.writeByte(0x76, 0xf4, 0x25);
  await bus.writeByte(0x76, 0xf2, 0x01);
  clock.advance(20);
  const d = Buffer.alloc(8);
  await bus.readI2cBlock(0x76, 0xf7, 8, d);
  const raw = parseRaw(d);
  t.equal(raw.adcH, 0x8000, "humidity skipped");
  t.throws(() => compensate(EXAMPLE_CALIBRATION, raw), { code: "EBADDATA", message: /humidity not measured \(raw 0x8000\)/ });
  t.throws(() => compensate(EXAMPLE_CALIBRATION, { adcT: 0x80000, adcP: 0x80000 }), /temperature not measured/);
});

t.test("wrong chip id: a clear error, with a hint when it is the sibling chip", async (t) => {
  const { clock, bus, ctx } = rig();
  const chip = createBme280({ clock, env: fixedEnvironment() });
  chip.faults.wrongId = true;
  bus.attach(0x76, chip);
  await t.rejects(settle(clock, bme280.open({ bus: 1, address: 0x76 }, ctx)), {
    message: "BME280 at 0x76 on bus 1: chip id 0x55, expected 0x60",
  });
  bus.attach(0x77, createBme280({ clock, env: fixedEnvironment(), variant: "bmp280" }));
  await t.rejects(settle(clock, bme280.open({ bus: 1, address: 0x77 }, ctx)), /chip id 0x58, expected 0x60 \(a BMP280: use type bmp280\)/);
});

t.test("NACK, stuck busy and a vanishing chip make read() reject; nothing is returned", async (t) => {
  const { clock, bus, ctx } = rig();
  const chip = createBme280({ clock, env: fixedEnvironment() });
  bus.attach(0x76, chip);
  await t.rejects(settle(clock, bme280.open({ bus: 1, address: 0x77 }, ctx)), /BME280 at 0x77 on bus 1: no answer \(EREMOTEIO/);
  const dev = await settle(clock, bme280.open({ bus: 1, address: 0x76 }, ctx));
  chip.faults.stuckBusy = true;
  await t.rejects(settle(clock, dev.read!()), { code: "EBUSY", message: /still measuring after 30 ms \(status bit 3 stuck\)/ });
  chip.faults.stuckBusy = false;
  chip.faults.nack = true;
  await t.rejects(settle(clock, dev.read!()), { code: "EREMOTEIO" });
  chip.faults.nack = false;
  t.ok((await settle(clock, dev.read!())).temperature, "recovers once the wire is back");
  bus.detach(0x76);
  await t.rejects(settle(clock, dev.read!()), /no answer/);
});

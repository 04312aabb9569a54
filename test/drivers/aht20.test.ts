// AHT20 against its model: the init command when uncalibrated, the 20-bit packing, busy polling,
// CRC and stuck busy.
import t from "tap";
import { aht20, parseAht20 } from "../../drivers/aht20.js";
import { createAht20 } from "../../drivers/io/sim/aht20.js";
import { fixedEnvironment } from "../../drivers/io/sim/environment.js";
import { crc8 } from "../../drivers/io/i2c.js";
import { rig, settle, writes } from "./helpers.js";

t.test("packing: 20-bit RH then 20-bit T sharing the middle byte (datasheet §6.1)", async (t) => {
  const frame = [0x1c, 0x80, 0x00, 0x08, 0x00, 0x00];
  const r = parseAht20(Uint8Array.of(...frame, crc8(frame)));
  t.equal(r.humidity, 50, "RH raw 0x80000 = 50 %");
  t.equal(r.temperature, 0 * 200 - 50 + (0x80000 * 200) / 2 ** 20, "T raw 0x80000 = 50 °C");
  t.throws(() => parseAht20(Uint8Array.of(...frame, crc8(frame) ^ 1)), { code: "EBADCRC" });
});

t.test("an uncalibrated chip gets 0xBE 0x08 0x00, then measures within quantisation", async (t) => {
  const { clock, bus, ctx } = rig();
  const chip = createAht20({ clock, env: fixedEnvironment({ temperature: 24.2, humidity: 38.7 }), calibrated: false });
  bus.attach(0x38, chip);
  const dev = await settle(clock, aht20.open({ bus: 1, address: 0x38 }, ctx));
  t.ok(chip.calibrated);
  const r = await settle(clock, dev.read!());
  t.ok(Math.abs((r.temperature as number) - 24.2) < 0.001, `temperature ${r.temperature}`);
  t.ok(Math.abs((r.humidity as number) - 38.7) < 0.001, `humidity ${r.humidity}`);
  t.same(writes(bus, 0x38), ["71", "be0800", "71", "ac3300"]);
});

t.test("faults: stuck busy, bad CRC, NACK", async (t) => {
  const { clock, bus, ctx } = rig();
  const chip = createAht20({ clock, env: fixedEnvironment() });
  bus.attach(0x38, chip);
  const dev = await settle(clock, aht20.open({ bus: 1, address: 0x38 }, ctx));
  chip.faults.stuckBusy = true;
  await t.rejects(settle(clock, dev.read!()), { code: "EBUSY", message: /AHT20 at 0x38 on bus 1: still measuring after 130 ms/ });
  chip.faults.stuckBusy = false;
  chip.faults.badCrc = true;
  await t.rejects(settle(clock, dev.read!()), /CRC mismatch/);
  chip.faults.badCrc = false;
  chip.faults.nack = true;
  await t.rejects(settle(clock, dev.read!()), /no answer/);
});

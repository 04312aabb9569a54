// SHT3x and SHT4x against their models: conversion formulas at the datasheet's end points, values
// within one raw step, the CRC fault (retried once, then an error; a one-off is absorbed), the
// NACK-while-busy protocol, stuck busy, a vanishing chip, and SHT4x humidity clamping.
import t from "tap";
import { sht3x, sht3xHumidity, sht3xTemperature } from "../../drivers/sht3x.js";
import { sht4x, sht4xHumidity } from "../../drivers/sht4x.js";
import { fixedEnvironment } from "../../drivers/io/sim/environment.js";
import { createSht3x } from "../../drivers/io/sim/sht3x.js";
import { createSht4x } from "../../drivers/io/sim/sht4x.js";
import { rig, settle, writes } from "./helpers.js";

const STEP_T = 175 / 65535;
const STEP_RH = 100 / 65535;

t.test("SHT3x conversion end points (datasheet §4.13)", async (t) => {
  t.equal(sht3xTemperature(0), -45);
  t.equal(sht3xTemperature(65535), 130);
  t.equal(sht3xHumidity(65535), 100);
  t.equal(sht3xHumidity(0), 0);
});

t.test("SHT3x: single shot 0x2400, wait, 6 bytes with CRC, values within one raw step", async (t) => {
  const { clock, bus, ctx } = rig();
  const env = fixedEnvironment({ temperature: 23.456, humidity: 55.55 });
  const chip = createSht3x({ clock, env });
  bus.attach(0x44, chip);
  const dev = await settle(clock, sht3x.open({ bus: 1, address: 0x44, repeatability: "high" }, ctx));
  const r = await settle(clock, dev.read!());
  t.ok(Math.abs((r.temperature as number) - 23.456) <= STEP_T, `temperature ${r.temperature}`);
  t.ok(Math.abs((r.humidity as number) - 55.55) <= STEP_RH, `humidity ${r.humidity}`);
  t.same(writes(bus, 0x44), ["30a2", "f32d", "2400"], "soft reset, status, single shot high repeatability");
  t.equal(clock.monotonic() >= 16, true, "waited the 15.5 ms maximum");
  const low = await settle(clock, sht3x.open({ bus: 1, address: 0x44, repeatability: "low" }, ctx));
  await settle(clock, low.read!());
  t.equal(writes(bus, 0x44).at(-1), "2416");
});

t.test("SHT3x: a read while measuring is NACKed by the model, and the driver polls past it", async (t) => {
  const { clock, bus } = rig();
  bus.attach(0x44, createSht3x({ clock, env: fixedEnvironment() }));
  await bus.i2cWrite(0x44, 2, Buffer.of(0x24, 0x00));
  await t.rejects(bus.i2cRead(0x44, 6, Buffer.alloc(6)), { code: "EREMOTEIO" }, "busy: NACK");
  clock.advance(13);
  t.equal((await bus.i2cRead(0x44, 6, Buffer.alloc(6))).bytesRead, 6);
  await t.rejects(bus.i2cRead(0x44, 6, Buffer.alloc(6)), { code: "EREMOTEIO" }, "no data waiting: NACK");
});

t.test("SHT3x faults: bad CRC retried once then an error; stuck busy; NACK; vanished", async (t) => {
  const { clock, bus, ctx } = rig();
  const chip = createSht3x({ clock, env: fixedEnvironment() });
  bus.attach(0x45, chip);
  const dev = await settle(clock, sht3x.open({ bus: 1, address: 0x45, repeatability: "high" }, ctx));
  chip.faults.badCrc = true;
  const before = chip.measurements;
  await t.rejects(settle(clock, dev.read!()), { code: "EBADCRC", message: /^SHT3x at 0x45 on bus 1: CRC mismatch on temperature/ });
  t.equal(chip.measurements - before, 2, "one retry");
  // A one-off corruption is absorbed by the retry.
  const read = dev.read!();
  await new Promise((r) => setImmediate(r));
  chip.faults.badCrc = false;
  t.ok((await settle(clock, read)).temperature !== undefined);
  chip.faults.stuckBusy = true;
  await t.rejects(settle(clock, dev.read!()), { code: "EBUSY", message: /^SHT3x at 0x45 on bus 1: no result after 10 ms more than the datasheet's maximum \(NACK\)/ });
  chip.faults.stuckBusy = false;
  t.ok((await settle(clock, dev.read!())).humidity !== undefined, "recovers when the chip does");
  bus.detach(0x45);
  await t.rejects(settle(clock, dev.read!()), /no answer \(EREMOTEIO/);
  await t.rejects(settle(clock, sht3x.open({ bus: 1, address: 0x45, repeatability: "high" }, ctx)), /no answer/, "open fails without a chip");
});

t.test("SHT4x: 0xFD, serial check, RH = -6 + 125·raw/65535 clamped", async (t) => {
  t.equal(sht4xHumidity(0), 0, "-6 % clamped to 0");
  t.equal(sht4xHumidity(65535), 100, "119 % clamped to 100");
  t.equal(sht4xHumidity(Math.round((56 * 65535) / 125)), -6 + (125 * Math.round((56 * 65535) / 125)) / 65535);
  const { clock, bus, ctx } = rig();
  const env = fixedEnvironment({ temperature: 19.9, humidity: 63.3 });
  const chip = createSht4x({ clock, env });
  bus.attach(0x44, chip);
  const dev = await settle(clock, sht4x.open({ bus: 1, address: 0x44, precision: "high" }, ctx));
  const r = await settle(clock, dev.read!());
  t.ok(Math.abs((r.temperature as number) - 19.9) <= STEP_T, `temperature ${r.temperature}`);
  t.ok(Math.abs((r.humidity as number) - 63.3) <= 125 / 65535, `humidity ${r.humidity}`);
  t.same(writes(bus, 0x44), ["94", "89", "fd"]);
  env.set({ humidity: 100 });
  t.equal((await settle(clock, dev.read!())).humidity, 100);
  chip.faults.badCrc = true;
  await t.rejects(settle(clock, dev.read!()), /SHT4x at 0x44 on bus 1: CRC mismatch/);
  chip.faults.badCrc = false;
  chip.faults.wrongId = true;
  await t.rejects(settle(clock, sht4x.open({ bus: 1, address: 0x44, precision: "low" }, ctx)), /implausible serial number 0x00000000/);
  chip.faults.wrongId = false;
  chip.faults.stuckBusy = true;
  await t.rejects(settle(clock, dev.read!()), /SHT4x at 0x44 on bus 1/);
});

// ADS1115 against its model: the config word, signed results, per-channel ranges, linear scaling,
// clipping refused, stuck busy.
import t from "tap";
import { ads1115, configWord, scaled, volts } from "../../drivers/ads1115.js";
import { createAds1115 } from "../../drivers/io/sim/ads1115.js";
import { fixedEnvironment } from "../../drivers/io/sim/environment.js";
import { rig, settle } from "./helpers.js";

t.test("config word and conversions (datasheet §9.6.3, table 3)", async (t) => {
  t.equal(configWord(0, 4.096), 0xc383, "OS | AIN0-GND | ±4.096 V | single-shot | 128 SPS | comparator off");
  t.equal(configWord(3, 6.144), 0xf183);
  t.equal(volts(0x7fff, 2.048), 2.048 * (32767 / 32768));
  t.equal(volts(0xffff, 4.096), -0.000125, "0xFFFF is -1 LSB");
  t.equal(scaled(2, { volts: [1, 3], values: [0, 100] }), 50);
});

t.test("four channels, each with its range and optional scale", async (t) => {
  const { clock, bus, ctx } = rig();
  const env = fixedEnvironment({ analog: [1.234, 3.0, 0.1, 2.5] });
  const chip = createAds1115({ clock, env });
  bus.attach(0x48, chip);
  const o = {
    bus: 1,
    address: 0x48,
    channels: {
      a0: { input: 0, range: 2.048 as const, precision: 3 },
      moisture: { input: 1, range: 4.096 as const, scale: { volts: [3.3, 1.3] as [number, number], values: [0, 100] as [number, number] }, precision: 0, unit: "%" },
      a2: { input: 2, range: 0.256 as const, precision: 4 },
    },
  };
  t.same(ads1115.quantities(o), { a0: { unit: "V", precision: 3 }, moisture: { unit: "%", precision: 0 }, a2: { unit: "V", precision: 4 } });
  const dev = await settle(clock, ads1115.open(o, ctx));
  const r = await settle(clock, dev.read!());
  t.ok(Math.abs((r.a0 as number) - 1.234) <= 2.048 / 32768, `a0 ${r.a0}`);
  t.ok(Math.abs((r.moisture as number) - 15) <= 0.01, `moisture ${r.moisture}`);
  t.ok(Math.abs((r.a2 as number) - 0.1) <= 0.256 / 32768, `a2 ${r.a2}`);
  t.equal(chip.conversions, 3);
  env.set({ analog: [2.5, 3, 0.1, 0] });
  await t.rejects(settle(clock, dev.read!()), { code: "EBADDATA", message: /ADS1115 at 0x48 on bus 1 AIN0: input at the end of the ±2.048 V range \(clipped\)/ });
  env.set({ analog: [1, 3, 0.1, 0] });
  chip.faults.stuckBusy = true;
  await t.rejects(settle(clock, dev.read!()), /OS bit stuck/);
});

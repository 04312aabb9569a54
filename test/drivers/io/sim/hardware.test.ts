// The simulated house behind --simulate: chips at the configured addresses, DS18B20 files, and an
// environment that stays plausible over a day and changes between two readings.
import t from "tap";
import { createSimulatedHardware, simW1Id } from "../../../../drivers/io/sim/hardware.js";
import { houseEnvironment } from "../../../../drivers/io/sim/environment.js";
import { bme280 } from "../../../../drivers/bme280.js";
import { fakeClock } from "../../../support/fake-clock.js";
import { memoryLogger } from "../../../../hub/log.js";
import { settle } from "../../helpers.js";

t.test("the house environment is plausible all day and moves between readings", async (t) => {
  const clock = fakeClock(Date.UTC(2026, 5, 1));
  const env = houseEnvironment(clock, { seed: 3 });
  let last = env();
  let moved = 0;
  const implausible: string[] = [];
  for (let i = 0; i < 8640; i++) {
    clock.advance(10_000);
    const e = env();
    const ok =
      e.temperature > 17 && e.temperature < 26 && e.humidity > 30 && e.humidity < 65 && e.pressure > 99_000 && e.pressure < 103_000 && e.lux >= 0 && e.lux < 800;
    if (!ok) implausible.push(JSON.stringify(e));
    if (e.temperature !== last.temperature) moved++;
    last = e;
  }
  t.same(implausible.slice(0, 3), [], "a day of readings, all plausible");
  t.equal(moved, 8640, "every 10 s reading differs");
});

t.test("configured chips exist at their bus and address; DS18B20s get files", async (t) => {
  const clock = fakeClock();
  const hw = createSimulatedHardware(
    [
      { type: "bme280", bus: 1, address: 0x77 },
      { type: "bh1750", bus: 3, address: 0x23 },
      { type: "gpio_input" },
      { type: "ds18b20" },
      { type: "ds18b20", id: "28-0316a2794aff" },
    ],
    { clock },
  );
  await hw.start();
  t.teardown(() => hw.stop());
  t.same(await hw.bus(1).scan(), [0x77]);
  t.same(await hw.bus(3).scan(), [0x23]);
  t.same(await hw.oneWire.list("28"), ["28-0316a2794aff", simW1Id(0)].sort());
  t.match(await hw.oneWire.read("28-0316a2794aff"), /^([0-9a-f]{2} ){9}: crc=[0-9a-f]{2} YES\n([0-9a-f]{2} ){9}t=\d+\n$/);
  const ctx = { clock, log: memoryLogger(), random: () => 0.5, i2c: hw.i2c };
  const dev = await settle(clock, bme280.open({ bus: 1, address: 0x77 }, ctx));
  t.ok((await settle(clock, dev.read!())).pressure, "a driver reads it");
});

// `hub i2c scan`'s library part: addresses found and the likely chips, with Bosch chip ids read.
import t from "tap";
import { scanBus } from "../../../drivers/io/i2c-scan.js";
import { serialise } from "../../../drivers/io/i2c.js";
import { createBme280 } from "../../../drivers/io/sim/bme280.js";
import { createBh1750 } from "../../../drivers/io/sim/bh1750.js";
import { fixedEnvironment } from "../../../drivers/io/sim/environment.js";
import { createSimI2cBus } from "../../../drivers/io/sim/i2c-bus.js";
import { createSht3x } from "../../../drivers/io/sim/sht3x.js";
import { fakeClock } from "../../support/fake-clock.js";

t.test("scan names the likely chips, and which Bosch sensor answers at 0x76/0x77", async (t) => {
  const clock = fakeClock();
  const env = fixedEnvironment();
  const raw = createSimI2cBus();
  raw.attach(0x23, createBh1750({ clock, env }));
  raw.attach(0x44, createSht3x({ clock, env }));
  raw.attach(0x76, createBme280({ clock, env, variant: "bmp280" }));
  raw.attach(0x10, createBh1750({ clock, env }));
  t.same(await scanBus(serialise(raw, 1)), [
    { address: 0x10, hex: "0x10", likely: [] },
    { address: 0x23, hex: "0x23", likely: ["BH1750", "MCP23017"] },
    { address: 0x44, hex: "0x44", likely: ["SHT3x", "SHT4x"] },
    { address: 0x76, hex: "0x76", likely: ["BMP280"] },
  ]);
  t.same(await scanBus(serialise(createSimI2cBus(), 1)), [], "an empty bus");
});

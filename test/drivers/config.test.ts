// The sensors' config: hex addresses and defaults, clear messages for impossible addresses, and the
// cross-checks (two devices at one I2C address, one DS18B20 id twice, a scale dividing by zero).
import t from "tap";
import { loadConfigText } from "../../hub/config/load.js";

const load = (devices: string[]) => loadConfigText(["hardware: simulate", "devices:", ...devices].join("\n"), "t.yaml", { readFile: () => "", env: {} });

t.test("defaults and hex addresses", async (t) => {
  const r = load(["  - { name: a, type: bme280 }", "  - { name: b, type: bh1750, address: 0x5c, mtreg: 254 }", "  - { name: c, type: ds18b20 }"]);
  if (!r.ok) return t.fail(JSON.stringify(r.problems));
  t.match(r.config.devices[0], { type: "bme280", bus: 1, address: 0x76, interval: 30_000 });
  t.match(r.config.devices[1], { address: 0x5c, mtreg: 254, resolution: "high" });
  t.match(r.config.devices[2], { type: "ds18b20", interval: 30_000 });
});

t.test("impossible options are reported with file:line:col", async (t) => {
  const r = load([
    "  - { name: a, type: bme280, address: 0x40 }",
    "  - { name: b, type: bh1750, mtreg: 300 }",
    "  - { name: c, type: ds18b20, id: 10-000000000000 }",
    "  - { name: d, type: ads1115, channels: {} }",
  ]);
  t.notOk(r.ok);
  if (r.ok) return;
  const msgs = r.problems.map((p) => `${p.line}: ${p.path}: ${p.message}`);
  t.match(msgs[0], /^3: devices\[0\]\.address: expected one of 0x76, 0x77/);
  t.match(msgs[1], /^4: devices\[1\]\.mtreg: expected an integer 31\.\.254/);
  t.match(msgs[2], /^5: devices\[2\]\.id: expected a 1-Wire id like 28-0316a2794aff/);
  t.match(msgs[3], /^6: devices\[3\]\.channels: expected at least one channel/);
});

t.test("cross-checks: one address per bus, one device per DS18B20, a usable scale", async (t) => {
  const r = load([
    "  - { name: a, type: bme280 }",
    "  - { name: b, type: bmp280, address: 0x76 }",
    "  - { name: c, type: bmp280, address: 0x76, bus: 3 }",
    "  - { name: d, type: ds18b20, id: 28-0316a2794aff }",
    "  - { name: e, type: ds18b20, id: 28-0316a2794aff }",
    "  - { name: f, type: ads1115, channels: { x: { input: 0, scale: { volts: [1, 1], values: [0, 5] } } } }",
  ]);
  t.notOk(r.ok);
  if (r.ok) return;
  t.same(
    r.problems.map((p) => `${p.path}: ${p.message}`),
    [
      "devices[1].address: expected an I2C bus and address not used by another device, found 0x76 on bus 1 again (also devices[0])",
      "devices[4].id: expected a 1-Wire id not used by another device, found 28-0316a2794aff again (also devices[3])",
      "devices[5].channels.x.scale.volts: expected two different voltages, found 1 twice",
    ],
  );
});

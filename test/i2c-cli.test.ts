// `hub i2c scan` through the built CLI (npm run build first): the i2cdetect grid and chip names on
// the simulated bus (the demo set, or a config's sensors and expanders on the bus asked for), the
// message and exit code 1 when /dev/i2c-N does not exist, exit 64 for bad usage; plus the grid
// formatting at its edges (0x03 and 0x77 are the first and last probed addresses).
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { formatGrid } from "../hub/i2c-cli.js";
import { runHub } from "./support/spawn.js";

t.test("grid: i2cdetect's layout, 0x03..0x77", async (t) => {
  const g = formatGrid([0x03, 0x77]).split("\n");
  t.equal(g[0], "     0  1  2  3  4  5  6  7  8  9  a  b  c  d  e  f");
  t.equal(g[1], "00:          03 -- -- -- -- -- -- -- -- -- -- -- --");
  t.equal(g[8], "70: -- -- -- -- -- -- -- 77");
  t.equal(g.length, 9);
});

t.test("--simulate: one of every simulated chip, named", async (t) => {
  const r = await runHub(["i2c", "scan", "--simulate"]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /^40: 40 -- -- -- 44 -- -- -- 48 -- -- -- -- -- -- --$/m);
  t.match(r.stdout, /^0x20 {2}MCP23017$/m);
  t.match(r.stdout, /^0x40 {2}HTU21D\/Si7021 or INA219$/m);
  t.match(r.stdout, /^0x76 {2}BME280$/m, "the chip id read tells a BME280 from a BMP280");
  t.match(r.stdout, /7 devices on simulated bus 1$/);
});

t.test("--simulate --config: the config's devices on the bus asked for", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "hub-i2c-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, "c.yaml");
  writeFileSync(
    file,
    [
      "hardware: linux",
      "gpio:",
      "  expanders: [{ name: ext, bus: 3, address: 0x27 }]",
      "devices:",
      "  - { name: a, type: bmp280, bus: 3, address: 0x77 }",
      "  - { name: b, type: htu21d }",
    ].join("\n"),
  );
  const r = await runHub(["i2c", "scan", "--simulate", "--config", file, "--bus", "3"]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /^0x27 {2}MCP23017$/m);
  t.match(r.stdout, /^0x77 {2}BMP280$/m);
  t.notMatch(r.stdout, /0x40/, "the HTU21D is on bus 1");
  t.match(r.stdout, /2 devices on simulated bus 3$/);
  const empty = await runHub(["i2c", "scan", "--simulate", "--config", file, "--bus", "4"]);
  t.equal(empty.code, 0);
  t.match(empty.stdout, /no device answered on simulated bus 4: check power, SDA\/SCL wiring/);
});

t.test("a missing /dev/i2c-N: I2C is not enabled, exit 1", { skip: existsSync("/dev/i2c-99") && "this machine has /dev/i2c-99" }, async (t) => {
  const r = await runHub(["i2c", "scan", "--bus", "99"]);
  t.equal(r.code, 1);
  t.equal(r.stdout, "");
  t.match(r.stderr, /^hub i2c scan: I2C is not enabled \(raspi-config → Interface → I2C\): \/dev\/i2c-99 does not exist/);
});

t.test("bad usage: exit 64", async (t) => {
  for (const args of [["i2c"], ["i2c", "scan", "--bus", "x"], ["i2c", "scan", "--bus", "256"], ["i2c", "detect"]]) {
    const r = await runHub(args);
    t.equal(r.code, 64, args.join(" "));
    t.match(r.stderr, /usage: hub i2c scan \[--bus N\]/);
  }
});

// The real I2C backend's failure messages, with the device-node check and the module loader
// injected: a Pi with I2C switched off, a user outside the i2c group, i2c-bus that did not build.
import { existsSync } from "node:fs";
import t from "tap";
import { linuxI2c } from "../../../drivers/io/linux-i2c.js";
import { createSimI2cBus } from "../../../drivers/io/sim/i2c-bus.js";

const errno = (code: string) => Object.assign(new Error(`${code}: x`), { code });

t.test("a missing /dev/i2c-N says I2C is not enabled", async (t) => {
  let loaded = false;
  const open = linuxI2c({
    access: () => {
      throw errno("ENOENT");
    },
    load: async () => {
      loaded = true;
      return { openPromisified: async () => createSimI2cBus() };
    },
  });
  await t.rejects(open(1), { code: "ENOENT", message: "I2C is not enabled (raspi-config → Interface → I2C): /dev/i2c-1 does not exist" });
  await t.rejects(open(3), /\/dev\/i2c-3 does not exist \(is bus 3 right\? `ls \/dev\/i2c-\*` lists the buses\)/);
  t.notOk(loaded, "the native module is not even loaded");
});

t.test("no permission names the i2c group", async (t) => {
  const open = linuxI2c({
    access: () => {
      throw errno("EACCES");
    },
  });
  await t.rejects(open(1), /no permission to use \/dev\/i2c-1: add the hub's user to the i2c group/);
});

t.test("i2c-bus missing says how to get it", async (t) => {
  const open = linuxI2c({
    access: () => {},
    load: async () => {
      throw errno("ERR_MODULE_NOT_FOUND");
    },
  });
  await t.rejects(open(1), { code: "ENOMODULE", message: /^i2c-bus is not installed \(needs build-essential\)/ });
});

t.test("otherwise the module's bus is returned", async (t) => {
  const bus = createSimI2cBus();
  const opened: number[] = [];
  const open = linuxI2c({
    access: () => {},
    load: async () => ({
      openPromisified: async (n: number) => {
        opened.push(n);
        return bus;
      },
    }),
  });
  t.equal(await open(1), bus);
  t.same(opened, [1]);
});

t.test("on this machine, with the real checks", { skip: existsSync("/dev/i2c-1") ? "this machine has /dev/i2c-1" : false }, async (t) => {
  await t.rejects(linuxI2c()(1), /^I2C is not enabled/);
});

const installed = await import("i2c-bus" as string).then(
  () => true,
  () => false,
);

t.test("the installed i2c-bus loads through the lazy import", { skip: installed ? false : "i2c-bus is not installed here" }, async (t) => {
  const bus = await linuxI2c({ access: () => {} })(1);
  t.type(bus.readByte, "function");
  t.type(bus.readI2cBlock, "function");
  // i2c-bus opens lazily: without /dev/i2c-1 the first transfer fails, which is why access() is checked first.
  if (!existsSync("/dev/i2c-1")) await t.rejects(bus.readByte(0x76, 0xd0), { code: "ENOENT" });
  await bus.close();
});

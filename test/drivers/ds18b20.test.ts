// DS18B20 over w1 sysfs: the kernel's text format (datasheet scratchpad and CRC as oracles), the
// simulator's directory, discovery by id, and every retryable fault ending in a clear error.
import t from "tap";
import { ds18b20, temperatureFromW1 } from "../../drivers/ds18b20.js";
import { createOneWire, maximCrc8, type OneWire, parseW1Slave } from "../../drivers/io/one-wire.js";
import { fixedEnvironment } from "../../drivers/io/sim/environment.js";
import { createSimW1, scratchpad, w1SlaveText } from "../../drivers/io/sim/w1.js";
import { memoryLogger } from "../../hub/log.js";
import { fakeClock } from "../support/fake-clock.js";
import { settle } from "./helpers.js";

const EXAMPLE = "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=23125\n";

t.test("the kernel's w1_slave example: t=23125 → 23.125 °C; its scratchpad CRC is 0x57", async (t) => {
  t.equal(temperatureFromW1(EXAMPLE), 23.125);
  t.equal(maximCrc8([0x72, 0x01, 0x4b, 0x46, 0x7f, 0xff, 0x0e, 0x10]), 0x57);
  t.same(scratchpad(23.125), [0x72, 0x01, 0x4b, 0x46, 0x7f, 0xff, 0x0e, 0x10, 0x57], "the simulator writes the same bytes");
  t.equal(w1SlaveText(scratchpad(23.125)), EXAMPLE, "and the same text");
  t.equal(temperatureFromW1(w1SlaveText(scratchpad(-10.125))), -10.125, "negative temperatures (two's complement)");
  t.equal(temperatureFromW1(w1SlaveText(scratchpad(-10.0625))), -10.062, "the kernel truncates to whole millidegrees");
  const r = parseW1Slave(EXAMPLE.replace("YES", "NO"));
  t.same(r, { ok: false, reason: "crc", bytes: [0x72, 0x01, 0x4b, 0x46, 0x7f, 0xff, 0x0e, 0x10, 0x57] });
});

t.test("errors for NO, the 85 °C power-on value, an all-zero scratchpad, garbage", async (t) => {
  t.throws(() => temperatureFromW1(EXAMPLE.replace("YES", "NO")), { code: "EBADCRC", message: /w1_slave says NO/ });
  t.throws(() => temperatureFromW1(w1SlaveText([0x50, 0x05, 0x4b, 0x46, 0x7f, 0xff, 0x0c, 0x10, 0x1c])), { code: "EBADDATA", message: /85 °C is the power-on value/ });
  t.throws(() => temperatureFromW1(w1SlaveText([0, 0, 0, 0, 0, 0, 0, 0, 0])), /all-zero scratchpad/);
  t.throws(() => temperatureFromW1(""), /unreadable w1_slave/);
});

function ctxFor(oneWire: OneWire) {
  const clock = fakeClock();
  return { clock, log: memoryLogger(), random: () => 0.5, oneWire };
}

t.test("against the simulated w1 directory: discovery, reading, vanishing", async (t) => {
  const clock = fakeClock();
  const w1 = createSimW1({ clock });
  const env = fixedEnvironment({ temperature: 18.3 });
  w1.add("28-0316a2794aff", env);
  await w1.start();
  t.teardown(() => w1.stop());
  const ctx = { ...ctxFor(createOneWire(() => w1.dir)), clock };
  const dev = await ds18b20.open({}, ctx);
  t.match(ctx.log.lines.join("\n"), /found DS18B20 id=28-0316a2794aff/);
  t.equal((await dev.read!()).temperature, 18.312, "18.3 °C in 1/16 steps, truncated to millidegrees like the kernel");
  env.set({ temperature: 4.5 });
  await w1.update();
  t.equal((await dev.read!()).temperature, 4.5);
  w1.add("28-0000000000aa", env);
  await w1.update();
  await t.rejects(ds18b20.open({}, ctx), /several DS18B20 in .* \(28-0000000000aa, 28-0316a2794aff\): set id to choose one/);
  const chosen = await ds18b20.open({ id: "28-0000000000aa" }, ctx);
  t.equal((await chosen.read!()).temperature, 4.5);
  await w1.remove("28-0316a2794aff");
  await t.rejects(settle(clock, dev.read!()), { code: "ENOENT", message: /^DS18B20 28-0316a2794aff: not found in .* \(unplugged, or a wrong id\?\)/ });
});

t.test("faults: a one-off NO is retried; persistent NO, 85000 and zeros are errors", async (t) => {
  const clock = fakeClock();
  const w1 = createSimW1({ clock });
  w1.add("28-000000000001", fixedEnvironment({ temperature: 21 }));
  await w1.start();
  t.teardown(() => w1.stop());
  const ctx = { ...ctxFor(createOneWire(() => w1.dir)), clock };
  const dev = await ds18b20.open({ id: "28-000000000001" }, ctx);
  for (const [fault, message] of [
    ["crc", /CRC check failed/],
    ["power-on", /85 °C is the power-on value/],
    ["zero", /all-zero scratchpad/],
    ["garbage", /unreadable w1_slave/],
  ] as const) {
    w1.fault("28-000000000001", fault);
    await w1.update();
    await t.rejects(settle(clock, dev.read!()), { message: message }, fault);
  }
  // One bad read followed by a good one: the retry absorbs it.
  const texts = [EXAMPLE.replace("YES", "NO"), EXAMPLE];
  const reads: string[] = [];
  const scripted: OneWire = {
    dir: "/sys/bus/w1/devices",
    list: async () => ["28-0316a2794aff"],
    read: async (id) => {
      reads.push(id);
      return texts.shift()!;
    },
  };
  const d2 = await ds18b20.open({}, { ...ctxFor(scripted), clock });
  t.same(await settle(clock, d2.read!()), { temperature: 23.125 });
  t.equal(reads.length, 2);
});

t.test("no sensor: the error says how to enable 1-Wire", async (t) => {
  const ctx = ctxFor(createOneWire("/nonexistent/w1"));
  await t.rejects(ds18b20.open({}, ctx), /no DS18B20 \(28-\*\) in \/nonexistent\/w1: is 1-Wire enabled \(raspi-config → Interface → 1-Wire\)/);
});

t.test("reads are serialised: the kernel blocks a thread for each ~750 ms read", async (t) => {
  let active = 0;
  let most = 0;
  const started: string[] = [];
  const gates: Array<() => void> = [];
  const ow = createOneWire("/w1", async (path) => {
    started.push(path);
    active++;
    most = Math.max(most, active);
    await new Promise<void>((r) => gates.push(r));
    active--;
    return EXAMPLE;
  });
  const all = Promise.all(["28-a", "28-b", "28-c"].map((id) => ow.read(id)));
  for (let i = 0; i < 3; i++) {
    while (gates.length === 0) await new Promise((r) => setImmediate(r));
    gates.shift()!();
  }
  t.equal((await all).length, 3);
  t.equal(most, 1, "one file read at a time");
  t.same(started, ["/w1/28-a/w1_slave", "/w1/28-b/w1_slave", "/w1/28-c/w1_slave"], "in order");
});

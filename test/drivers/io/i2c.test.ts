// The I2C seam: Sensirion CRC, per-bus serialisation, the bus provider, the retry policy, and the
// simulated bus's kernel-like behaviour (EREMOTEIO for absent chips, the 32-byte block limit).
import t from "tap";
import { crc8, crcWord, i2cProvider, type RawI2cBus, serialise, withRetry } from "../../../drivers/io/i2c.js";
import { createSimI2cBus, nack, noFaults } from "../../../drivers/io/sim/i2c-bus.js";
import { fakeClock } from "../../support/fake-clock.js";
import { settle } from "../helpers.js";

t.test("Sensirion CRC-8 matches the datasheet example", async (t) => {
  t.equal(crc8([0xbe, 0xef]), 0x92, "SHT3x datasheet §4.12: CRC(0xBEEF) = 0x92");
  t.equal(crcWord(Uint8Array.of(0xbe, 0xef, 0x92), 0, "x"), 0xbeef);
  t.throws(() => crcWord(Uint8Array.of(0xbe, 0xef, 0x93), 0, "humidity"), { code: "EBADCRC", message: /CRC mismatch on humidity \(received 0x93, computed 0x92\)/ });
});

t.test("transfers on one bus never interleave, even across awaits", async (t) => {
  const log: string[] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => {
    release = r;
  });
  const raw = {
    readByte: async (a: number) => {
      log.push(`read ${a}`);
      return 0;
    },
  } as unknown as RawI2cBus;
  const bus = serialise(raw, 1);
  const first = bus.transaction(async (r) => {
    log.push("tx start");
    await gate;
    await r.readByte(1, 0);
    log.push("tx end");
  });
  const second = bus.readByte(2, 0);
  await new Promise((r) => setImmediate(r));
  t.same(log, ["tx start"], "the second transfer waits for the transaction");
  release();
  await Promise.all([first, second]);
  t.same(log, ["tx start", "read 1", "tx end", "read 2"]);
  const failing = bus.transaction(async () => {
    throw new Error("boom");
  });
  await t.rejects(failing, /boom/);
  t.equal(await bus.readByte(3, 0), 0, "a failed transaction does not block the bus");
});

t.test("the provider shares one bus per number and retries a failed open", async (t) => {
  let opens = 0;
  let fail = true;
  const p = i2cProvider(async () => {
    opens++;
    if (fail) throw new Error("I2C is not enabled");
    return createSimI2cBus();
  });
  await t.rejects(p.bus(1), /not enabled/);
  fail = false;
  const a = await p.bus(1);
  const b = await p.bus(1);
  t.equal(a, b, "same shared bus");
  t.equal(a.number, 1);
  t.equal(opens, 2, "the failure was not cached");
  await p.closeAll();
});

t.test("retry policy: NACKs back off through the clock, a bad CRC gets one more try, errors name the chip", async (t) => {
  const clock = fakeClock();
  let calls = 0;
  const flaky = withRetry(clock, "SHT3x at 0x44 on bus 1", async () => {
    if (++calls < 3) throw nack();
    return "ok";
  });
  t.equal(await settle(clock, flaky), "ok");
  t.equal(clock.monotonic(), 60, "waited 10 ms then 50 ms");

  calls = 0;
  const alwaysNack = withRetry(clock, "SHT3x at 0x44 on bus 1", async () => {
    calls++;
    throw nack();
  });
  await t.rejects(settle(clock, alwaysNack), { code: "EREMOTEIO", message: /^SHT3x at 0x44 on bus 1: no answer \(EREMOTEIO.*check wiring/ });
  t.equal(calls, 3, "one try and two retries");

  calls = 0;
  const badCrc = withRetry(clock, "X", async () => {
    calls++;
    crcWord(Uint8Array.of(1, 2, 3), 0, "temperature");
  });
  await t.rejects(settle(clock, badCrc), { code: "EBADCRC", message: /^X: CRC mismatch on temperature/ });
  t.equal(calls, 2, "retried once");

  calls = 0;
  const other = withRetry(clock, "X", async () => {
    calls++;
    throw new RangeError("Invalid I2C block length 40");
  });
  await t.rejects(settle(clock, other), /X: Invalid I2C block length/);
  t.equal(calls, 1, "programming errors are not retried");
});

t.test("the simulated bus behaves like the kernel's", async (t) => {
  const bus = createSimI2cBus();
  const reg = new Uint8Array(256).map((_, i) => i);
  let pointer = 0;
  bus.attach(0x50, {
    faults: noFaults(),
    write(b) {
      if (b.length) pointer = b[0]!;
    },
    read(n) {
      const out = reg.slice(pointer, pointer + n);
      pointer += n;
      return out;
    },
  });
  t.equal(await bus.readByte(0x50, 0x10), 0x10);
  const buf = Buffer.alloc(32);
  t.same((await bus.readI2cBlock(0x50, 0x20, 4, buf)).bytesRead, 4);
  t.same([...buf.subarray(0, 4)], [0x20, 0x21, 0x22, 0x23]);
  await t.rejects(bus.readI2cBlock(0x50, 0, 33, Buffer.alloc(33)), /at most 32/, "i2c-bus refuses blocks over 32 bytes");
  await t.rejects(bus.readByte(0x51, 0), { code: "EREMOTEIO", errno: -121 }, "no chip: NACK");
  t.same(await bus.scan(), [0x50]);
  bus.chip(0x50)!.faults.shortRead = true;
  t.equal((await bus.i2cRead(0x50, 4, Buffer.alloc(4))).bytesRead, 3, "short read injected");
  bus.chip(0x50)!.faults.nack = true;
  await t.rejects(bus.i2cWrite(0x50, 1, Buffer.of(0)), { code: "EREMOTEIO" });
  t.same(await bus.scan(), [], "a NACKing chip does not show in a scan");
  bus.detach(0x50);
  await t.rejects(bus.readByte(0x50, 0), { code: "EREMOTEIO" }, "vanished");
});

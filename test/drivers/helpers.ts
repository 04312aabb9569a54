// Shared by the driver tests: a driver context on a simulated bus, and a way to let a promise that
// waits on the fake clock finish (advance time in small steps, flushing I/O callbacks in between).
import type { FakeClock } from "../support/fake-clock.js";
import { fakeClock } from "../support/fake-clock.js";
import { memoryLogger } from "../../hub/log.js";
import type { DriverContext } from "../../drivers/types.js";
import { i2cProvider } from "../../drivers/io/i2c.js";
import { createSimI2cBus, type SimI2cBus } from "../../drivers/io/sim/i2c-bus.js";

const tick = () => new Promise<void>((r) => setImmediate(r));

/** Resolves (or rejects) like `p`, advancing the fake clock 1 ms at a time until it settles. */
export async function settle<T>(clock: FakeClock, p: Promise<T>, maxMs = 60_000): Promise<T> {
  let done = false;
  p.then(
    () => {
      done = true;
    },
    () => {
      done = true;
    },
  );
  for (let ms = 0; ; ms++) {
    await tick();
    if (done) return p;
    if (ms >= maxMs) throw new Error(`still pending after ${maxMs} ms of fake time`);
    clock.advance(1);
  }
}

export interface Rig {
  clock: FakeClock;
  bus: SimI2cBus;
  ctx: DriverContext & { log: ReturnType<typeof memoryLogger> };
}

/** A fake clock, one simulated bus (number 1) and a driver context using it. */
export function rig(): Rig {
  const clock = fakeClock();
  const bus = createSimI2cBus();
  const provider = i2cProvider(async () => bus);
  const ctx = { clock, log: memoryLogger(), random: () => 0.5, i2c: (n: number) => provider.bus(n) };
  return { clock, bus, ctx };
}

/** The bytes of each write transfer to `address`, as hex strings, for sequence assertions. */
export function writes(bus: SimI2cBus, address: number): string[] {
  return bus.transfers.filter((t) => t.address === address && t.dir === "w").map((t) => Buffer.from(t.bytes).toString("hex"));
}

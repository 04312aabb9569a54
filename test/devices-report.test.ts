// Report-on-change in the device host: deadband (one number or per quantity, measured from the last
// PUBLISHED value) and heartbeat (maximum silence), for polled and for watch-only devices.
import t from "tap";
import type { DriverDefinition, Reading } from "../drivers/types.js";
import { changeFilter, createDeviceHost, type DeviceSpec } from "../hub/devices.js";
import { memoryLogger } from "../hub/log.js";
import { hubTopics } from "../hub/topics.js";
import { fakeClock } from "./support/fake-clock.js";
import { memoryBus } from "./support/memory-bus.js";

const flush = async () => {
  for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
};

/** A polled sensor that returns the scripted readings in turn (the last one repeats). */
function scripted(readings: Reading[]): DriverDefinition<unknown> {
  let i = 0;
  return {
    kind: "scripted",
    quantities: () => ({ temperature: { precision: 1 }, pressure: { precision: 0 } }),
    async open() {
      return { read: async () => readings[Math.min(i++, readings.length - 1)]!, async close() {} };
    },
  };
}

async function run(spec: Omit<DeviceSpec, "name">, polls: number) {
  const bus = memoryBus();
  const clock = fakeClock();
  const host = createDeviceHost([{ name: "s", ...spec }], { bus, clock, log: memoryLogger(), topics: hubTopics("hub"), random: () => 0.5 });
  await host.start();
  await flush();
  for (let i = 1; i < polls; i++) {
    clock.advance(spec.interval ?? 0);
    await flush();
  }
  await host.stop();
  const series = (q: string) => bus.published.filter((m) => m.topic === `hub/s/${q}`).map((m) => m.payload.toString());
  return series;
}

const temps = (...v: number[]) => v.map((temperature) => ({ temperature }));

t.test("without deadband or heartbeat every reading is published", async (t) => {
  const series = await run({ interval: 1_000, driver: scripted(temps(20, 20, 20.04, 20.3)), options: {} }, 4);
  t.same(series("temperature"), ["20.0", "20.0", "20.0", "20.3"]);
});

t.test("deadband: only moves of at least the deadband from the last published value", async (t) => {
  const series = await run({ interval: 1_000, deadband: 0.2, driver: scripted(temps(20, 20.1, 20.19, 20.2, 20.3, 20.35, 20.41, 19.9)), options: {} }, 8);
  // 20.2 - 20.0 is 0.1999999… in floating point and must count as 0.2.
  t.same(series("temperature"), ["20.0", "20.2", "20.4", "19.9"], "slow drift is still reported");
});

t.test("deadband 0: on any change of the published text", async (t) => {
  const series = await run({ interval: 1_000, deadband: 0, driver: scripted(temps(20, 20.01, 20.06, 20.06, 20.2)), options: {} }, 5);
  t.same(series("temperature"), ["20.0", "20.1", "20.2"], "20.01 prints as 20.0: no change");
});

t.test("deadband per quantity; quantities without one report any change", async (t) => {
  const r = [
    { temperature: 20, pressure: 1000 },
    { temperature: 20.5, pressure: 1001 },
    { temperature: 21.5, pressure: 1003 },
  ];
  const series = await run({ interval: 1_000, deadband: { temperature: 1 }, driver: scripted(r), options: {} }, 3);
  t.same(series("temperature"), ["20.0", "21.5"]);
  t.same(series("pressure"), ["1000", "1001", "1003"]);
});

t.test("heartbeat: an unchanged value is republished after the maximum silence", async (t) => {
  const series = await run({ interval: 10_000, deadband: 0.5, heartbeat: 60_000, driver: scripted(temps(20)), options: {} }, 14);
  // Polls at 0, 10 s … 130 s: published at 0, 60 s and 120 s.
  t.same(series("temperature"), ["20.0", "20.0", "20.0"]);
});

t.test("heartbeat alone means report on change plus the heartbeat", async (t) => {
  const series = await run({ interval: 10_000, heartbeat: 30_000, driver: scripted(temps(20, 20, 21, 21, 21, 21, 21)), options: {} }, 7);
  // 0: 20 (first); 20 s: 21 (change); 50 s: 21 (heartbeat).
  t.same(series("temperature"), ["20.0", "21.0", "21.0"]);
});

t.test("watch-only devices: published on change; with a heartbeat they are re-read and re-published", async (t) => {
  let emit: ((r: Reading) => void) | undefined;
  let state = false;
  let reads = 0;
  const sensor: DriverDefinition<unknown> = {
    kind: "contact",
    quantities: () => ({ state: {} }),
    async open() {
      return {
        read: async () => {
          reads++;
          return { state };
        },
        watch: (fn) => {
          emit = fn;
          return () => {
            emit = undefined;
          };
        },
        async close() {},
      };
    },
  };
  const bus = memoryBus();
  const clock = fakeClock();
  const host = createDeviceHost([{ name: "door", heartbeat: 300_000, driver: sensor, options: {} }], {
    bus,
    clock,
    log: memoryLogger(),
    topics: hubTopics("hub"),
    random: () => 0.5,
  });
  await host.start();
  await flush();
  const door = () => bus.published.filter((m) => m.topic === "hub/door").map((m) => m.payload.toString());
  t.same(door(), ["OFF"]);
  state = true;
  emit!({ state: true });
  emit!({ state: true }); // a repeat is not a change
  t.same(door(), ["OFF", "ON"]);
  clock.advance(299_999);
  await flush();
  t.equal(reads, 1, "not polled before the heartbeat");
  t.same(door(), ["OFF", "ON"]);
  clock.advance(1);
  await flush();
  t.equal(reads, 2);
  t.same(door(), ["OFF", "ON", "ON"], "re-published: silent for the whole heartbeat");
  await host.stop();
  t.equal(emit, undefined, "unwatched at stop");
  t.equal(clock.pending(), 0);
});

t.test("changeFilter treats __proto__ as a plain quantity name", async (t) => {
  const f = changeFilter({ deadband: { temperature: 1 } });
  t.ok(f.due("__proto__", 1, "1", 0));
  f.mark("__proto__", 1, "1", 0);
  t.notOk(f.due("__proto__", 1, "1", 1));
  t.ok(f.due("__proto__", 1.5, "1.5", 1), "no deadband of its own: any change");
});

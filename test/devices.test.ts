import t from "tap";
import { createDeviceHost, formatValue } from "../hub/devices.js";
import { memoryLogger } from "../hub/log.js";
import { hubTopics } from "../hub/topics.js";
import { simulatedSensor } from "../drivers/simulated-sensor.js";
import type { DriverDefinition } from "../drivers/types.js";
import { fakeClock } from "./support/fake-clock.js";
import { memoryBus } from "./support/memory-bus.js";

const flush = () => new Promise((r) => setImmediate(r));

t.test("simulated sensor readings are published retained with their precision, periodically", async (t) => {
  const bus = memoryBus();
  const clock = fakeClock();
  const host = createDeviceHost(
    [
      {
        name: "living_room",
        interval: 10_000,
        driver: simulatedSensor as DriverDefinition<unknown>,
        options: { quantities: { temperature: { start: 21, min: 15, max: 30, step: 0.5, precision: 1 } } },
      },
    ],
    { bus, clock, log: memoryLogger(), topics: hubTopics("hub"), random: () => 1 },
  );
  await host.start();
  await flush();
  t.equal(bus.last("hub/living_room/temperature"), "21.5");
  t.equal(bus.last("hub/living_room/availability"), "online");
  t.ok(bus.published.every((m) => m.retain), "retained");
  clock.advance(10_000);
  await flush();
  t.equal(bus.last("hub/living_room/temperature"), "22.0");
  await host.stop();
  t.equal(bus.last("hub/living_room/availability"), "offline");
  t.equal(clock.pending(), 0, "no timers left");
});

t.test("a failing device goes offline, retries with backoff, and does not affect others", async (t) => {
  const bus = memoryBus();
  const clock = fakeClock();
  const log = memoryLogger();
  let failures = 2;
  const flaky: DriverDefinition<unknown> = {
    kind: "flaky",
    quantities: () => ({ lux: { precision: 0 } }),
    async open() {
      return {
        async read() {
          if (failures > 0) {
            failures--;
            throw new Error("EREMOTEIO");
          }
          return { lux: 800 };
        },
        async close() {},
      };
    },
  };
  const host = createDeviceHost(
    [
      { name: "bad", interval: 5_000, driver: flaky, options: {} },
      {
        name: "good",
        interval: 5_000,
        driver: simulatedSensor as DriverDefinition<unknown>,
        options: { quantities: { t: { start: 1, min: 0, max: 2, step: 0.1, precision: 1 } } },
      },
    ],
    { bus, clock, log, topics: hubTopics("hub"), random: () => 0.5 },
  );
  await host.start();
  await flush();
  t.equal(bus.last("hub/bad/availability"), "offline");
  t.equal(bus.last("hub/good/availability"), "online");
  clock.advance(1_000); // first retry after 1 s: fails again, next after 2 s
  await flush();
  t.equal(bus.last("hub/bad/lux"), undefined);
  clock.advance(1_999);
  await flush();
  t.equal(bus.last("hub/bad/lux"), undefined, "backoff doubled");
  clock.advance(1);
  await flush();
  t.equal(bus.last("hub/bad/lux"), "800");
  t.equal(bus.last("hub/bad/availability"), "online");
  const offlineLines = log.lines.filter((l) => l.includes("device offline"));
  t.equal(offlineLines.length, 1, "logged once per transition, not per failure");
  await host.stop();
});

t.test("formatValue", async (t) => {
  t.equal(formatValue(21.456, 1), "21.5");
  t.equal(formatValue(true, undefined), "ON");
  t.equal(formatValue("x", 2), "x");
});

// The watchdog's health probe (hub/health.ts) over the embedded broker's real routing core: healthy
// while probes come back, unhealthy (with one log line) when routing stops answering, healthy again
// when it answers, and no client subscribed to '#' ever sees a probe.
import t from "tap";
import type { Bus, Message } from "../hub/contracts.js";
import { createBrokerCore } from "../hub/broker/core.js";
import { localBus } from "../hub/broker/local-bus.js";
import { createHealthProbe, HEALTH_TOPIC } from "../hub/health.js";
import { memoryLogger } from "../hub/log.js";
import { defaultLimits } from "./support/broker.js";
import { fakeClock } from "./support/fake-clock.js";

/** Lets the broker's queued in-process deliveries (microtasks) run. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

t.test("healthy while probes go round the broker; unhealthy when they stop coming back", async (t) => {
  const clock = fakeClock();
  const log = memoryLogger("debug");
  const core = createBrokerCore(defaultLimits(), clock, log);
  const real = localBus(core, "health");
  // A switch in front of the real bus: when wedged, publishes vanish as if routing hung.
  let wedged = false;
  const bus: Bus = {
    publish: (m) => (wedged ? Promise.resolve() : real.publish(m)),
    subscribe: (f, cb, o) => real.subscribe(f, cb, o),
  };
  const seenByHash: Message[] = [];
  await localBus(core, "client").subscribe("#", (m) => seenByHash.push(m));

  const probe = createHealthProbe({ bus, clock, log, intervalMs: 5_000, staleAfterMs: 15_000 });
  await probe.start();
  await settle();
  t.ok(probe.healthy(), "healthy right after start");
  for (let i = 0; i < 10; i++) {
    clock.advance(5_000);
    await settle();
  }
  t.ok(probe.healthy(), "healthy after 50 s of answered probes");

  wedged = true;
  clock.advance(10_000);
  await settle();
  t.ok(probe.healthy(), "one or two lost probes are tolerated");
  clock.advance(10_000);
  await settle();
  t.notOk(probe.healthy(), "unhealthy once no probe came back for longer than staleAfterMs");
  t.notOk(probe.healthy());
  t.equal(log.lines.filter((l) => l.includes("does not answer health probes")).length, 1, "logged once, not per check");

  wedged = false;
  clock.advance(5_000);
  await settle();
  t.ok(probe.healthy(), "healthy again once probes come back");
  t.ok(log.lines.some((l) => l.includes("answers health probes again")));

  t.same(seenByHash, [], "a '#' subscriber never sees probes ($SYS topics)");
  probe.stop();
  core.close();
  t.equal(HEALTH_TOPIC.startsWith("$SYS/"), true);
});

import t from "tap";
import type { Service } from "../hub/contracts.js";
import { createLifecycle } from "../hub/lifecycle.js";
import { memoryLogger } from "../hub/log.js";
import { fakeClock } from "./support/fake-clock.js";

function part(name: string, events: string[], stop: () => Promise<void> = async () => {}): Service {
  return {
    name,
    async start() {
      events.push(`start ${name}`);
    },
    async stop() {
      events.push(`stop ${name}`);
      await stop();
    },
    async reload() {
      events.push(`reload ${name}`);
    },
  };
}

t.test("parts start in order and stop in reverse", async (t) => {
  const events: string[] = [];
  const lc = createLifecycle([part("a", events), part("b", events), part("c", events)], memoryLogger(), fakeClock());
  await lc.start();
  await lc.reload();
  const r = await lc.stop(5000);
  t.same(events, ["start a", "start b", "start c", "reload a", "reload b", "reload c", "stop c", "stop b", "stop a"]);
  t.equal(r.clean, true);
});

t.test("a part that hangs is abandoned at the deadline; the others still stop", async (t) => {
  const events: string[] = [];
  const clock = fakeClock();
  const log = memoryLogger();
  const hang = () => new Promise<void>(() => {});
  const lc = createLifecycle([part("a", events), part("stuck", events, hang)], log, clock);
  await lc.start();
  const stopping = lc.stop(5000);
  await new Promise((r) => setImmediate(r));
  clock.advance(5000);
  const r = await stopping;
  t.equal(r.clean, false);
  t.same(events.slice(-2), ["stop stuck", "stop a"]);
  t.match(log.lines.join("\n"), /did not stop in time.*part=stuck/);
});

t.test("a part that throws on stop is logged by name and the rest go on", async (t) => {
  const events: string[] = [];
  const log = memoryLogger();
  const lc = createLifecycle(
    [part("a", events), part("bad", events, async () => Promise.reject(new Error("disk gone")))],
    log,
    fakeClock(),
  );
  await lc.start();
  const r = await lc.stop(5000);
  t.equal(r.clean, false);
  t.same(events.slice(-1), ["stop a"]);
  t.match(log.lines.join("\n"), /failed while stopping part=bad error="disk gone"/);
});

// The engine: modes, status topics and their throttling, the topic index, the state cache, stop, loop throttling.
import t from "tap";
import type { Message } from "../../hub/contracts.js";
import { memoryLogger } from "../../hub/log.js";
import { createRulesEngine } from "../../rules/engine.js";
import { fakeClock } from "../support/fake-clock.js";
import { memoryBus } from "../support/memory-bus.js";
import { flush, harness, rules } from "./harness.js";

/** A rule in `mode` whose run publishes start, waits 10 s, publishes end. */
const slow = (mode: string, max = 2) => `
- id: r
  mode: ${mode}
  max: ${max}
  triggers: [{ trigger: mqtt, topic: go }]
  actions:
    - { action: publish, topic: out, payload: "start {{ trigger.payload }}" }
    - { action: delay, duration: 10s }
    - { action: publish, topic: out, payload: "end {{ trigger.payload }}" }
`;

t.test("mode single: a trigger while running is dropped", async (t) => {
  const h = await harness(slow("single"));
  await h.publish("go", "1");
  await h.publish("go", "2");
  await h.advance(10_000);
  t.same(h.on("out"), ["start 1", "end 1"]);
  t.equal(h.engine.status("r")!.dropped, 1);
  t.match(h.lines.join("\n"), /WARN .*trigger dropped rule=r mode=single/);
  await h.stop();
});

t.test("mode restart: the running run is cancelled where it waits", async (t) => {
  const h = await harness(slow("restart"));
  await h.publish("go", "1");
  await h.advance(5000);
  await h.publish("go", "2");
  await h.advance(10_000);
  t.same(h.on("out"), ["start 1", "start 2", "end 2"]);
  t.match(h.on("hub/rules/r/trace").at(-2), /cancelled/, "the cancelled run's trace says so");
  await h.stop();
});

t.test("mode queued: runs one after another, at most max waiting", async (t) => {
  const h = await harness(slow("queued", 2));
  for (const p of ["1", "2", "3", "4"]) await h.publish("go", p);
  await h.advance(40_000);
  t.same(h.on("out"), ["start 1", "end 1", "start 2", "end 2", "start 3", "end 3"]);
  t.equal(h.engine.status("r")!.dropped, 1, "the fourth did not fit in the queue");
  await h.stop();
});

t.test("mode parallel: at most max at once", async (t) => {
  const h = await harness(slow("parallel", 2));
  for (const p of ["1", "2", "3"]) await h.publish("go", p);
  t.equal(h.engine.status("r")!.running, 2);
  await h.advance(10_000);
  t.same(h.on("out"), ["start 1", "start 2", "end 1", "end 2"]);
  t.equal(h.engine.status("r")!.dropped, 1);
  await h.stop();
});

t.test("observability: last trigger, last run, run count, last error and trace under hub/rules/<id>/", async (t) => {
  const h = await harness(`
- id: watch
  triggers: [{ trigger: mqtt, topic: go }]
  conditions: [{ condition: expression, expression: "trigger.payload != 'skip'" }]
  actions:
    - { action: publish, topic: out, payload: "{{ 10 / number(trigger.payload) }}" }
`);
  await h.publish("go", "5");
  await h.publish("go", "skip");
  await h.publish("go", "0");
  const last = <T>(leaf: string) => JSON.parse(h.on(`hub/rules/watch/${leaf}`).at(-1)!) as T;
  t.same(h.on("hub/rules/watch/runs"), ["1", "2"], "runs counts runs whose conditions held");
  t.match(last<{ trigger: object }>("last_trigger"), { at: "2024-01-15T12:00:00.000Z", trigger: { kind: "mqtt", id: "0", topic: "go", value: 0 } });
  t.match(last("last_run"), { result: "error", error: "publish payload: division by zero at column 7", duration_ms: 0 });
  t.match(last("last_error"), { message: "publish payload: division by zero at column 7" });
  t.same(last("trace"), ["trigger 0 (mqtt) go value 0", "trigger.payload != 'skip': pass (true)", "error: publish payload: division by zero at column 7"]);
  const statusMsgs = h.seen.filter((m) => m.topic.startsWith("hub/rules/"));
  t.ok(statusMsgs.every((m) => m.retain), "status is retained");
  t.same(JSON.parse(h.on("hub/rules/watch/last_run")[1]!).result, "conditions_failed");
  t.match(h.lines.join("\n"), /WARN .*rule failed rule=watch result=error/);
  t.same(h.on("out"), ["2"], "the failing run did not stop the rule: the first run published");
  await h.publish("go", "4");
  t.same(h.on("out"), ["2", "2.5"], "nor the next");
  await h.stop();
});

t.test("topic index: one subscription per distinct filter, and a message reaches only matching rules", async (t) => {
  const bus = memoryBus();
  const subscribed: string[] = [];
  const sub = bus.subscribe.bind(bus);
  bus.subscribe = (filter, fn, opts) => {
    subscribed.push(filter);
    return sub(filter, fn, opts);
  };
  const many = Array.from({ length: 50 }, (_, i) => `
- id: r${i}
  triggers: [{ trigger: state, topic: "dev/${i % 10}/x" }]
  conditions: [{ condition: state, topic: mode, state: on }]
  actions: [{ action: publish, topic: "out/${i}" }]`).join("");
  const clock = fakeClock();
  const engine = createRulesEngine({ rules: rules(many), bus, clock, log: memoryLogger(), topicsBase: "hub", timeZone: "UTC", publishStatus: false });
  await engine.start();
  t.same(subscribed.sort(), [...Array.from({ length: 10 }, (_, i) => `dev/${i}/x`), "mode"].sort(), "10 trigger filters + 1 state topic");
  await bus.publish({ topic: "mode", payload: Buffer.from("on"), qos: 0, retain: false });
  await bus.publish({ topic: "dev/3/x", payload: Buffer.from("1"), qos: 0, retain: false });
  await flush();
  const outs = bus.published.filter((m: Message) => m.topic.startsWith("out/")).map((m) => m.topic);
  t.same(outs.sort(), ["out/13", "out/23", "out/3", "out/33", "out/43"]);
  t.equal(engine.status("r0")!.lastTrigger, undefined, "other rules never saw it");
  await engine.stop();
});

t.test("a computed state() topic makes the engine cache every topic", async (t) => {
  const bus = memoryBus();
  const subscribed: string[] = [];
  const sub = bus.subscribe.bind(bus);
  bus.subscribe = (filter, fn, opts) => {
    subscribed.push(filter);
    return sub(filter, fn, opts);
  };
  const engine = createRulesEngine({
    rules: rules(`
- id: r
  triggers: [{ trigger: mqtt, topic: "ask/+" }]
  actions: [{ action: publish, topic: answer, payload: "{{ state('val/' + trigger.payload) }}" }]`),
    bus,
    clock: fakeClock(),
    log: memoryLogger(),
    topicsBase: "hub",
    publishStatus: false,
  });
  await engine.start();
  t.same(subscribed.sort(), ["#", "ask/+"]);
  await bus.publish({ topic: "val/a", payload: Buffer.from("42"), qos: 0, retain: false });
  await bus.publish({ topic: "ask/x", payload: Buffer.from("a"), qos: 0, retain: false });
  await flush();
  t.equal(bus.last("answer"), "42");
  await engine.stop();
});

t.test("disabled rules are checked but never run; stop releases everything", async (t) => {
  const h = await harness(`
- id: off
  enabled: false
  triggers: [{ trigger: mqtt, topic: go }, { trigger: cron, cron: "* * * * * *" }]
  actions: [{ action: publish, topic: out, payload: x }]
- id: on
  triggers: [{ trigger: mqtt, topic: go }]
  actions: [{ action: delay, duration: 1h }, { action: wait, triggers: [{ trigger: mqtt, topic: never }] }]
`);
  await h.publish("go", "1");
  t.same(h.on("out"), []);
  t.equal(h.engine.status("off")!.enabled, false);
  t.equal(h.engine.status("on")!.running, 1);
  await h.stop();
  t.equal(h.clock.pending(), 0, "no timer left behind");
  t.equal(h.engine.status("on")!.running, 0, "the run was cancelled");
  t.equal(h.engine.status("on")!.lastRun!.result, "cancelled");
});

t.test("a rule that feeds itself is throttled", async (t) => {
  const h = await harness(`
- id: loop
  mode: parallel
  max: 1000
  triggers: [{ trigger: mqtt, topic: ping }]
  actions: [{ action: publish, topic: ping, payload: again }]
`, { status: false });
  await h.publish("ping", "1");
  t.equal(h.on("ping").length, 501, "500 runs in the first second, then dropped");
  t.match(h.lines.join("\n"), /trigger dropped rule=loop mode=parallel why="more than 500 runs in a second"/);
  await h.stop();
});

t.test("status topics are throttled per rule and end with the latest values", async (t) => {
  const h = await harness(`
- id: busy
  mode: parallel
  triggers: [{ trigger: mqtt, topic: go }]
  actions: [{ action: publish, topic: out, payload: "{{ trigger.payload }}" }]
`);
  for (let i = 1; i <= 50; i++) await h.publish("go", String(i));
  t.equal(h.on("out").length, 50, "every run ran");
  const runs = () => h.on("hub/rules/busy/runs");
  t.ok(runs().length <= 6, `a burst of status messages, not 50 (${runs().length})`);
  await h.advance(2000);
  t.equal(runs().at(-1), "50", "the latest count is published once a token is due");
  t.match(JSON.parse(h.on("hub/rules/busy/trace").at(-1)!), ["trigger 0 (mqtt) go value 50", 'publish out "50"']);
  await h.stop();
});

// Durable rule timers: a pending `for`, a run paused in a delay or wait survive a restart and resume
// against the wall clock (a deadline passed while the hub was down fires once, at start), or are
// dropped (on_restart: drop, a changed rule, a value that no longer holds). Each "restart" is a new
// broker, engine and fake clock sharing only the timer store, as a new process would.
import t from "tap";
import { memoryTimerStore, type SavedRun } from "../../rules/timers.js";
import { type Harness, harness, MONDAY_NOON_UTC } from "./harness.js";

const MIN = 60_000;

/** Starts the rules at wall-clock `at` with `retained` values already on the broker. */
function boot(yaml: string, store: ReturnType<typeof memoryTimerStore>, at: number, retained: [string, string][] = []): Promise<Harness> {
  return harness(yaml, {
    start: at,
    timers: store,
    status: false,
    before: async (publish) => {
      for (const [topic, payload] of retained) await publish(topic, payload, true);
    },
  });
}

const doorRule = (extra = "") => `
- id: door_left_open
  ${extra}
  triggers: [{ trigger: state, topic: hub/door, to: open, for: 5m }]
  actions: [{ action: publish, topic: out, payload: "open since {{ trigger.value }}" }]
`;

t.test("a pending state `for` resumes after a restart and fires at its original wall-clock time", async (t) => {
  const store = memoryTimerStore();
  const a = await boot(doorRule(), store, MONDAY_NOON_UTC, [["hub/door", "closed"]]);
  await a.publish("hub/door", "open", true);
  await a.advance(2 * MIN);
  await a.stop();
  t.same(store.saved.map((x) => [x.kind, x.rule, x.due]), [["for", "door_left_open", MONDAY_NOON_UTC + 5 * MIN]], "saved at stop");

  // Down for a minute; the door is still open (retained).
  const b = await boot(doorRule(), store, MONDAY_NOON_UTC + 3 * MIN, [["hub/door", "open"]]);
  await b.advance(2 * MIN - 1000);
  t.same(b.on("out"), [], "not before the original deadline");
  await b.advance(1000);
  t.same(b.on("out"), ["open since open"], "at 5 minutes after the door opened, not 5 minutes after the restart");
  t.match(b.lines.join("\n"), /resuming a pending `for` after the restart rule=door_left_open/);
  await b.advance(10 * MIN);
  t.same(b.on("out").length, 1, "once");
  await b.stop();
  t.same(store.saved, [], "nothing pending any more");
});

t.test("a `for` whose value changed while the hub was down is dropped; a later change fires normally", async (t) => {
  const store = memoryTimerStore();
  const a = await boot(doorRule(), store, MONDAY_NOON_UTC, [["hub/door", "closed"]]);
  await a.publish("hub/door", "open", true);
  await a.stop();
  const b = await boot(doorRule(), store, MONDAY_NOON_UTC + MIN, [["hub/door", "closed"]]);
  await b.advance(10 * MIN);
  t.same(b.on("out"), [], "the door was closed at start: the `for` did not hold");
  await b.publish("hub/door", "open", true);
  await b.advance(5 * MIN);
  t.same(b.on("out"), ["open since open"]);
  await b.stop();
});

t.test("an overdue `for` fires once, right after start", async (t) => {
  const store = memoryTimerStore();
  const a = await boot(doorRule(), store, MONDAY_NOON_UTC, [["hub/door", "closed"]]);
  await a.publish("hub/door", "open", true);
  await a.stop();
  const b = await boot(doorRule(), store, MONDAY_NOON_UTC + 60 * MIN, [["hub/door", "open"]]);
  await b.advance(1);
  t.same(b.on("out"), ["open since open"]);
  await b.advance(60 * MIN);
  t.same(b.on("out").length, 1, "once, not again");
  await b.stop();
});

t.test("a numeric `for` resumes with the value at start inside the range (hysteresis), else is dropped", async (t) => {
  const rule = `
- id: hot
  triggers: [{ trigger: numeric, topic: hub/t, above: 25, hysteresis: 1, for: 2m }]
  actions: [{ action: publish, topic: out, payload: "{{ trigger.value }}" }]
`;
  for (const [atStart, fires] of [
    ["24.5", ["24.5"]], // still inside: above 25 - 1
    ["23", []], // left the range
    ["unavailable", []],
  ] as const) {
    const store = memoryTimerStore();
    const a = await boot(rule, store, MONDAY_NOON_UTC, [["hub/t", "20"]]);
    await a.publish("hub/t", "26", true);
    await a.advance(MIN);
    await a.stop();
    const b = await boot(rule, store, MONDAY_NOON_UTC + 90_000, [["hub/t", atStart]]);
    await b.advance(30_000 - 1000);
    t.same(b.on("out"), [], `${atStart}: not early`);
    await b.advance(5 * MIN);
    t.same(b.on("out"), fires, `value ${atStart} at start`);
    await b.stop();
  }
});

const lightRule = `
- id: light_timer
  triggers: [{ trigger: mqtt, topic: hub/motion }]
  actions:
    - { action: publish, topic: out, payload: "on {{ trigger.value }}" }
    - if: [{ condition: expression, expression: "trigger.value == 'hall'" }]
      action: if
      then:
        - action: repeat
          count: 3
          actions:
            - { action: publish, topic: out, payload: "tick {{ repeat.index }}" }
            - { action: delay, duration: 10m }
    - { action: publish, topic: out, payload: "off {{ trigger.value }}" }
`;

t.test("a run paused in a delay (inside if and repeat) resumes where it was, with its variables", async (t) => {
  const store = memoryTimerStore();
  const a = await boot(lightRule, store, MONDAY_NOON_UTC);
  await a.publish("hub/motion", "hall");
  await a.advance(14 * MIN); // round 2's delay has 6 minutes left
  t.same(a.on("out"), ["on hall", "tick 1", "tick 2"]);
  await a.stop();
  const saved = store.saved as SavedRun[];
  t.same(
    saved.map((x) => [x.kind, x.path, x.due]),
    [["run", [1, "then", 0, 2, 1], MONDAY_NOON_UTC + 20 * MIN]],
  );
  t.equal(saved[0]!.vars.trigger && (saved[0]!.vars.trigger as { value: string }).value, "hall");

  const b = await boot(lightRule, store, MONDAY_NOON_UTC + 16 * MIN);
  await b.advance(4 * MIN - 1000);
  t.same(b.on("out"), [], "the delay keeps its original end");
  await b.advance(1000);
  t.same(b.on("out"), ["tick 3"], "round 3 follows round 2");
  await b.advance(10 * MIN);
  t.same(b.on("out"), ["tick 3", "off hall"], "then the rest of the actions, with trigger.* restored");
  t.match(b.engine.status("light_timer"), { lastRun: { result: "ok" } });
  await b.stop();
  t.same(store.saved, []);
});

t.test("a run paused in a wait resumes: the trigger still ends it, the timeout keeps its deadline", async (t) => {
  const rule = `
- id: door_watch
  triggers: [{ trigger: state, topic: hub/door, to: open }]
  actions:
    - action: wait
      triggers: [{ trigger: state, topic: hub/door, to: closed }]
      timeout: 10m
    - { action: publish, topic: out, payload: "{{ wait.timed_out ? 'still open' : 'closed' }}" }
`;
  for (const closeAfterRestart of [true, false]) {
    const store = memoryTimerStore();
    const a = await boot(rule, store, MONDAY_NOON_UTC, [["hub/door", "closed"]]);
    await a.publish("hub/door", "open", true);
    await a.advance(3 * MIN);
    await a.stop();
    t.match(store.saved, [{ kind: "run", path: [0], due: MONDAY_NOON_UTC + 10 * MIN }]);
    const b = await boot(rule, store, MONDAY_NOON_UTC + 4 * MIN, [["hub/door", "open"]]);
    if (closeAfterRestart) {
      await b.publish("hub/door", "closed", true);
      t.same(b.on("out"), ["closed"], "the wait's trigger, re-armed after the restart");
    } else {
      await b.advance(6 * MIN - 1000);
      t.same(b.on("out"), []);
      await b.advance(1000);
      t.same(b.on("out"), ["still open"], "timed out at the original deadline");
    }
    await b.stop();
  }
});

t.test("on_restart: drop, a changed rule and a removed rule do not resume; the log says why", async (t) => {
  const store = memoryTimerStore();
  const a = await boot(doorRule("on_restart: drop") + lightRule, store, MONDAY_NOON_UTC, [["hub/door", "closed"]]);
  await a.publish("hub/door", "open", true);
  await a.publish("hub/motion", "hall");
  await a.stop();
  t.same(
    store.saved.map((x) => x.rule),
    ["light_timer"],
    "a drop rule's timers are not even saved",
  );
  const changed = lightRule.replace("count: 3", "count: 4");
  const b = await boot(doorRule() + changed, store, MONDAY_NOON_UTC + MIN, [["hub/door", "open"]]);
  await b.advance(60 * MIN);
  t.same(b.on("out"), [], "nothing resumed");
  t.match(b.lines.join("\n"), /saved rule timer dropped rule=light_timer kind=run why="the rule changed"/);
  await b.stop();

  const gone = memoryTimerStore();
  const c = await boot(lightRule, gone, MONDAY_NOON_UTC);
  await c.publish("hub/motion", "hall");
  await c.stop();
  const d = await boot(doorRule(), gone, MONDAY_NOON_UTC + MIN);
  t.match(d.lines.join("\n"), /saved rule timer dropped rule=light_timer kind=run why="the rule is gone"/);
  await d.stop();
});

t.test("changes are saved a moment after they happen (one write for a burst), and at stop", async (t) => {
  const store = memoryTimerStore();
  const a = await boot(doorRule(), store, MONDAY_NOON_UTC, [["hub/door", "closed"]]);
  const before = store.saves;
  for (let i = 0; i < 5; i++) {
    await a.publish("hub/door", "open", true);
    await a.publish("hub/door", "closed", true);
  }
  await a.publish("hub/door", "open", true);
  t.equal(store.saves, before, "nothing written yet");
  await a.advance(1000);
  t.equal(store.saves, before + 1, "one write");
  t.match(store.saved, [{ kind: "for", rule: "door_left_open" }], "a crash now would keep the pending `for`");
  await a.advance(5 * MIN);
  t.same(a.on("out"), ["open since open"]);
  t.same(store.saved, [], "fired: gone from the store");
  await a.stop();
  t.equal(a.clock.pending(), 0, "no timer left behind");
});

const bellRule = (extra = "") => `
- id: bell
  mode: queued
  ${extra}
  triggers: [{ trigger: mqtt, topic: hub/bell }]
  actions:
    - { action: publish, topic: out, payload: "ring {{ trigger.payload }}" }
    - { action: delay, duration: 1m }
`;

t.test("mode queued: runs waiting in the queue are saved and queue again, in order, behind the resumed run", async (t) => {
  const store = memoryTimerStore();
  const a = await boot(bellRule(), store, MONDAY_NOON_UTC);
  for (const n of ["1", "2", "3"]) await a.publish("hub/bell", n);
  t.same(a.on("out"), ["ring 1"]);
  t.match(a.engine.status("bell"), { running: 1, queued: 2 });
  await a.advance(1000);
  t.same(
    (store.saved as SavedRun[]).map((x) => [x.path, x.queued ?? false, (x.vars.trigger as { payload: string }).payload]),
    [
      [[1], false, 1],
      [[], true, 2],
      [[], true, 3],
    ],
    "saved while running (a crash keeps them), the queue in order",
  );
  await a.stop();

  const b = await boot(bellRule(), store, MONDAY_NOON_UTC + 30_000);
  t.match(b.lines.join("\n"), /queueing a run that was waiting before the restart rule=bell/);
  t.match(b.engine.status("bell"), { running: 1, queued: 2 });
  await b.advance(29_000);
  t.same(b.on("out"), [], "the resumed run's delay keeps its end");
  await b.advance(1000);
  t.same(b.on("out"), ["ring 2"], "then the first queued run");
  await b.advance(60_000);
  t.same(b.on("out"), ["ring 2", "ring 3"]);
  await b.advance(60_000);
  t.match(b.engine.status("bell"), { running: 0, queued: 0, runs: 2 }, "the resumed run was counted before the restart");
  await b.advance(1000);
  t.same(store.saved, [], "all done: nothing saved");
  await b.stop();
});

t.test("mode queued: with on_restart drop the queue is not saved; a run that started leaves the saved queue", async (t) => {
  const dropped = memoryTimerStore();
  const a = await boot(bellRule("on_restart: drop"), dropped, MONDAY_NOON_UTC);
  for (const n of ["1", "2"]) await a.publish("hub/bell", n);
  await a.stop();
  t.same(dropped.saved, []);

  const store = memoryTimerStore();
  const b = await boot(bellRule(), store, MONDAY_NOON_UTC);
  for (const n of ["1", "2"]) await b.publish("hub/bell", n);
  await b.advance(60_000); // run 1 ends, run 2 starts and waits in its delay
  await b.advance(1000);
  t.same(
    (store.saved as SavedRun[]).map((x) => [x.path, x.queued ?? false]),
    [[[1], false]],
    "only run 2, now paused in its delay",
  );
  await b.stop();
});

t.test("a failing save is logged once and retried until it succeeds", async (t) => {
  const inner = memoryTimerStore();
  let failures = 2;
  const store = {
    load: inner.load,
    save(timers: Parameters<typeof inner.save>[0]) {
      if (failures-- > 0) throw Object.assign(new Error("SQLITE_FULL: database or disk is full"), { code: "SQLITE_FULL" });
      inner.save(timers);
    },
  };
  const a = await harness(doorRule(), { timers: store, status: false, before: (p) => p("hub/door", "closed", true) });
  await a.publish("hub/door", "open", true);
  await a.advance(1000);
  const errors = () => a.lines.filter((l) => l.includes("cannot save the pending rule timers")).length;
  t.equal(errors(), 1);
  await a.advance(5000);
  t.equal(errors(), 1, "the second failure is not logged again");
  t.same(inner.saved, []);
  await a.advance(5000);
  t.match(inner.saved, [{ kind: "for", rule: "door_left_open" }], "retried until written");
  t.match(a.lines.join("\n"), /pending rule timers saved again/);
  await a.stop();
  t.equal(a.clock.pending(), 0, "no retry left behind");
});

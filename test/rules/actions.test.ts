// Actions: publish/set/toggle, delay, wait, if, choose, repeat, log, stop, through the engine on a fake clock.
import t from "tap";
import { harness } from "./harness.js";

/** A rule fired by a message on `go` running the given actions. */
const rule = (actions: string, extra = "") => `
- id: r
${extra}
  triggers: [{ trigger: mqtt, topic: go }]
  actions:
${actions}
`;

t.test("publish: templates in topic and payload, qos, retain, JSON payloads", async (t) => {
  const h = await harness(
    rule(`    - { action: publish, topic: "f/{{ trigger.payload.room }}", payload: "{{ trigger.payload.t * 1.8 + 32 }}", qos: 1, retain: true }
    - { action: publish, topic: j, payload: { room: "{{ trigger.payload.room }}", f: "{{ trigger.payload.t }}", n: 1, ok: true } }
    - { action: publish, topic: n, payload: 42 }
    - { action: publish, topic: e }`),
  );
  await h.publish("go", '{"room":"kitchen","t":21.1}');
  const m = h.seen.find((x) => x.topic === "f/kitchen")!;
  t.equal(m.payload.toString(), "69.98");
  t.equal(m.qos, 1);
  t.equal(m.retain, true);
  t.same(JSON.parse(h.on("j")[0]!), { room: "kitchen", f: 21.1, n: 1, ok: true }, "a lone {{ }} keeps its type in JSON");
  t.same(h.on("n"), ["42"]);
  t.same(h.on("e"), [""]);
  await h.stop();
});

t.test("publish to a rendered topic with a wildcard fails the run, nothing else", async (t) => {
  const h = await harness(rule(`    - { action: publish, topic: "x/{{ trigger.payload }}", payload: a }\n    - { action: publish, topic: after, payload: b }`));
  await h.publish("go", "#");
  t.same(h.on("after"), [], "the run ended at the failing action");
  t.equal(h.engine.status("r")!.lastRun!.result, "error");
  t.match(h.engine.status("r")!.lastError!.message, /"x\/#" is not a topic to publish to/);
  await h.publish("go", "ok");
  t.same(h.on("x/ok"), ["a"], "the next run works");
  await h.stop();
});

t.test("set and toggle publish to the device's /set topic at QoS 1", async (t) => {
  const h = await harness(rule(`    - { action: set, device: porch_light, payload: ON }\n    - { action: toggle, device: relay }\n    - { action: set, device: lamp, payload: { brightness: 50 } }`));
  await h.publish("go", "1");
  t.same(h.on("hub/porch_light/set"), ["ON"]);
  t.same(h.on("hub/relay/set"), ["TOGGLE"]);
  t.same(h.on("hub/lamp/set"), ['{"brightness":50}']);
  t.equal(h.seen.find((m) => m.topic === "hub/relay/set")!.qos, 1);
  await h.stop();
});

t.test("delay waits on the clock", async (t) => {
  const h = await harness(rule(`    - { action: publish, topic: out, payload: a }\n    - { action: delay, duration: 30s }\n    - { action: publish, topic: out, payload: b }`));
  await h.publish("go", "1");
  t.same(h.on("out"), ["a"]);
  await h.advance(29_000);
  t.same(h.on("out"), ["a"]);
  await h.advance(1000);
  t.same(h.on("out"), ["a", "b"]);
  await h.stop();
});

t.test("wait for a trigger: fires, times out and goes on, or times out and stops", async (t) => {
  const h = await harness(
    rule(
      `    - action: wait
      triggers: [{ trigger: state, topic: hub/door, to: closed, id: closed }]
      timeout: 1m
      continue_on_timeout: "{{x}}"
    - { action: publish, topic: out, payload: "{{ wait.timed_out }} {{ wait.trigger.id }}" }`.replace('"{{x}}"', "true"),
    ),
    { before: (p) => p("hub/door", "open", true) },
  );
  await h.publish("go", "1");
  await h.advance(20_000);
  await h.publish("hub/door", "closed");
  t.same(h.on("out"), ["false closed"]);
  await h.publish("hub/door", "open");
  await h.publish("go", "2");
  await h.advance(60_000, 10_000);
  t.same(h.on("out"), ["false closed", "true "], "timed out, went on");
  await h.stop();
  t.equal(h.clock.pending(), 0);

  const s = await harness(
    rule(`    - { action: wait, triggers: [{ trigger: mqtt, topic: ack }], timeout: 10s, continue_on_timeout: false }\n    - { action: publish, topic: out, payload: after }`),
  );
  await s.publish("go", "1");
  await s.advance(10_000);
  t.same(s.on("out"), [], "stopped at the timeout");
  t.equal(s.engine.status("r")!.lastRun!.result, "stopped");
  await s.publish("go", "2");
  await s.publish("ack", "x");
  t.same(s.on("out"), ["after"], "an mqtt event ends the wait");
  await s.stop();
});

t.test("if / then / else and choose", async (t) => {
  const h = await harness(
    rule(`    - action: if
      if: [{ condition: expression, expression: "number(trigger.payload) > 10" }]
      then: [{ action: publish, topic: out, payload: big }]
      else: [{ action: publish, topic: out, payload: small }]
    - action: choose
      choices:
        - conditions: [{ condition: expression, expression: "trigger.payload == '1'" }]
          actions: [{ action: publish, topic: c, payload: one }]
        - conditions: [{ condition: expression, expression: "trigger.payload == '2' or trigger.payload == 2" }]
          actions: [{ action: publish, topic: c, payload: two }]
      default: [{ action: publish, topic: c, payload: other }]`),
    { status: true },
  );
  for (const p of ["1", "2", "50"]) await h.publish("go", p);
  t.same(h.on("out"), ["small", "small", "big"]);
  t.same(h.on("c"), ["one", "two", "other"]);
  t.same(h.engine.status("r")!.trace, [
    "trigger 0 (mqtt) go value 50",
    "if:",
    "  number(trigger.payload) > 10: pass (true)",
    "then:",
    '  publish out "big"',
    "choice 1:",
    "  trigger.payload == '1': FAIL (false)",
    "choice 2:",
    "  trigger.payload == '2' or trigger.payload == 2: FAIL (false)",
    "default:",
    '  publish c "other"',
  ]);
  await h.stop();
});

t.test("repeat: count, while, until, and the max bound", async (t) => {
  const h = await harness(
    `
- id: count
  triggers: [{ trigger: mqtt, topic: go/count }]
  actions:
    - { action: repeat, count: 3, actions: [{ action: publish, topic: out, payload: "c{{ repeat.index }}{{ repeat.last ? '!' : '' }}" }] }
- id: while
  triggers: [{ trigger: mqtt, topic: go/while }]
  actions:
    - action: repeat
      while: [{ condition: numeric, topic: level, below: 3 }]
      actions:
        - { action: publish, topic: level, payload: "{{ number(state('level')) + 1 }}", retain: true }
- id: until
  triggers: [{ trigger: mqtt, topic: go/until }]
  actions:
    - action: repeat
      until: [{ condition: expression, expression: "repeat.index >= 2" }]
      actions: [{ action: publish, topic: out, payload: "u{{ repeat.index }}" }, { action: delay, duration: 1s }]
- id: forever
  triggers: [{ trigger: mqtt, topic: go/forever }]
  actions:
    - { action: repeat, max: 5, while: [{ condition: expression, expression: "true" }], actions: [{ action: log, message: "{{ repeat.index }}", level: debug }] }
`,
    { before: (p) => p("level", "0", true) },
  );
  await h.publish("go/count", "1");
  t.same(h.on("out"), ["c1", "c2", "c3!"]);
  await h.publish("go/while", "1");
  t.same(h.on("level").slice(-3), ["1", "2", "3"], "while below 3");
  await h.publish("go/until", "1");
  await h.advance(3000);
  t.same(h.on("out").slice(3), ["u1", "u2"]);
  await h.publish("go/forever", "1");
  t.equal(h.engine.status("forever")!.lastRun!.result, "error");
  t.match(h.engine.status("forever")!.lastError!.message, /more than 5 rounds/);
  await h.stop();
});

t.test("log and stop", async (t) => {
  const h = await harness(
    rule(`    - { action: log, message: "hello {{ trigger.payload }}", level: warn }
    - { action: stop, reason: enough }
    - { action: publish, topic: out, payload: never }`),
  );
  await h.publish("go", "world");
  t.match(h.lines.join("\n"), /WARN .*hello world rule=r/);
  t.same(h.on("out"), []);
  t.equal(h.engine.status("r")!.lastRun!.result, "stopped");
  t.equal(h.engine.status("r")!.lastError, undefined, "a plain stop is not an error");
  await h.stop();
  const e = await harness(rule(`    - { action: stop, reason: broken, error: true }`));
  await e.publish("go", "1");
  t.equal(e.engine.status("r")!.lastRun!.result, "error");
  t.equal(e.engine.status("r")!.lastError!.message, "broken");
  await e.stop();
});

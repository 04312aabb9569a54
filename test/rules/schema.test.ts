// The rule schema through the config loader: every field, defaults, file:line:col problems, examples, JSON Schema.
import t from "tap";
import { parse } from "yaml";
import { z } from "zod";
import { formatProblems, loadConfigText } from "../../hub/config/load.js";
import { ruleSchema, rulesSchema } from "../../rules/schema.js";

const deps = {
  readFile: () => {
    throw new Error("no files");
  },
  env: {},
};
const load = (yaml: string) => loadConfigText(yaml, "c.yaml", deps);
const problems = (yaml: string) => {
  const r = load(yaml);
  return r.ok ? "" : formatProblems(r.problems);
};

t.test("a rule with every part, defaults filled in", async (t) => {
  const r = load(`
location: { latitude: 52.52, longitude: 13.41, time_zone: Europe/Berlin }
rules:
  - id: hot_living_room
    description: Warn when it is hot
    triggers:
      - trigger: numeric
        topic: hub/living_room/temperature
        above: 25
        hysteresis: 0.5
        for: 1m
      - { trigger: mqtt, topic: "hub/+/button", payload: [press, long], value: action, id: button }
      - { trigger: state, topic: hub/door, from: closed, to: open, for: 10s }
      - { trigger: cron, cron: "0 30 7 * * mon-fri", time_zone: UTC }
      - { trigger: sun, event: sunset, offset: -30m }
      - { trigger: startup }
    conditions:
      - { condition: time, after: "22:00", before: "06:00", weekdays: [fri, sat] }
      - condition: or
        conditions:
          - { condition: state, topic: hub/mode, state: [home, guest] }
          - { condition: not, conditions: [{ condition: numeric, topic: hub/porch/lux, above: 10 }] }
      - { condition: expression, expression: "state('hub/porch/lux') < 10" }
    actions:
      - { action: publish, topic: hub/alerts, payload: "{{ trigger.value }} °C", qos: 1, retain: true }
      - { action: set, device: porch_light, payload: ON }
      - { action: toggle, device: relay }
      - { action: delay, duration: 1h30m }
      - { action: wait, triggers: [{ trigger: state, topic: hub/door, to: closed }], timeout: 5m, continue_on_timeout: false }
      - action: choose
        choices:
          - conditions: [{ condition: expression, expression: "trigger.id == 'button'" }]
            actions: [{ action: log, message: x }]
        default: [{ action: stop, reason: done }]
      - { action: if, if: [{ condition: expression, expression: "true" }], then: [{ action: log, message: a, level: warn }], else: [{ action: stop, error: true }] }
      - { action: repeat, count: 3, actions: [{ action: log, message: "{{ repeat.index }}" }] }
      - { action: repeat, until: [{ condition: expression, expression: "1 == 1" }], max: 5, actions: [{ action: delay, duration: 1s }] }
      - { action: publish, topic: hub/json, payload: { t: "{{ trigger.value }}", list: [1, "{{ 2 }}"] } }
`);
  t.ok(r.ok, r.ok ? "every kind of trigger, condition and action" : formatProblems(r.problems));
  t.match(
    problems(`
rules:
  - id: x
    triggers: [{ trigger: startup }]
    conditions: ["state('a') == 1"]
    actions: [{ action: stop }]
`),
    "c.yaml:5:18: rules[0].conditions[0]: expected a mapping",
    "a condition is a mapping with condition:",
  );
  const fixed = load(`
location: { latitude: 52.52, longitude: 13.41 }
rules:
  - id: hot_living_room
    triggers:
      - { trigger: numeric, topic: hub/living_room/temperature, above: 25, for: 1m }
      - { trigger: sun, event: sunset, offset: -30m }
    actions:
      - { action: delay, duration: 1h30m }
      - { action: wait, triggers: [{ trigger: state, topic: hub/door, to: closed }], timeout: 5m }
      - { action: repeat, while: [{ condition: expression, expression: "1 == 1" }], actions: [{ action: stop }] }
`);
  t.ok(fixed.ok, fixed.ok ? "" : formatProblems(fixed.problems));
  if (!fixed.ok) return;
  const rule = fixed.config.rules[0]!;
  t.equal(rule.enabled, true);
  t.equal(rule.mode, "single");
  t.equal(rule.max, 10);
  t.equal(rule.on_restart, "resume");
  t.same(rule.conditions, []);
  t.same(rule.triggers[0], { trigger: "numeric", topic: "hub/living_room/temperature", above: 25, hysteresis: 0, for: 60_000 });
  t.same(rule.triggers[1], { trigger: "sun", event: "sunset", offset: -1_800_000 });
  t.same(rule.actions[0], { action: "delay", duration: 5_400_000 });
  t.same(rule.actions[1], { action: "wait", triggers: [{ trigger: "state", topic: "hub/door", to: "closed" }], timeout: 300_000, continue_on_timeout: true });
  t.equal((rule.actions[2] as { max: number }).max, 1000);
});

t.test("every mistake is reported at file:line:col with what was expected", async (t) => {
  const out = problems(`
rules:
  - id: A b
    triggers:
      - trigger: numerc
        topic: hub/x/t
      - trigger: numeric
        topic: hub/x/+
      - trigger: cron
        cron: "0 61 * * *"
      - trigger: mqtt
        topc: x
    conditions:
      - condition: expression
        expression: "1 +"
      - condition: time
        after: "25:00"
      - condition: or
        conditions:
          - condition: state
            topic: a
            stat: b
    actions:
      - action: publish
        topic: "x/{{ trigger. }}"
      - action: delay
        duration: 10
      - action: repeat
        actions: []
      - action: lg
`);
  const want = [
    'c.yaml:3:9: rules[0].id: expected an id of lowercase letters, digits, _ and - (e.g. porch_light_at_dusk), found "A b"',
    'c.yaml:5:18: rules[0].triggers[0].trigger: expected one of mqtt, state, numeric, cron, sun, startup, found "numerc"',
    "c.yaml:7:9: rules[0].triggers[1]: expected above, below or both, found a mapping",
    'c.yaml:8:16: rules[0].triggers[1].topic: expected an MQTT topic without wildcards (+ #), e.g. hub/garden/lux, found "hub/x/+"',
    "c.yaml:10:15: rules[0].triggers[2].cron: expected a cron schedule",
    'c.yaml:12:9: rules[0].triggers[3].topc: expected a known key (did you mean "topic"?), found unknown key "topc"',
    'c.yaml:15:21: rules[0].conditions[0].expression: expected a valid expression (expression ends too early at column 4), found "1 +"',
    'c.yaml:17:16: rules[0].conditions[1].after: expected a time of day such as 22:00 or 06:30:15 (24-hour, quoted), found "25:00"',
    'c.yaml:22:13: rules[0].conditions[2].conditions[0].stat: expected a known key (did you mean "state"?), found unknown key "stat"',
    "c.yaml:25:16: rules[0].actions[0].topic: expected an MQTT topic with valid {{ }} parts (expected a field name after . but found }} at column 15)",
    "c.yaml:27:19: rules[0].actions[1].duration: expected a duration such as 250ms, 10s, 5m, 1h30m or 1d (write a unit, e.g. 10s), found 10",
    "c.yaml:28:9: rules[0].actions[2]: expected exactly one of count, while and until, found a mapping",
    "c.yaml:29:18: rules[0].actions[2].actions: expected at least one action, found a list",
    'c.yaml:30:17: rules[0].actions[3].action: expected one of publish, set, toggle, delay, wait, choose, if, repeat, log, stop, found "lg"',
  ];
  for (const w of want) t.match(out, w, w.slice(0, 60));
});

t.test("rule ids are unique; location is checked", async (t) => {
  const out = problems(`
rules:
  - { id: a, triggers: [{ trigger: startup }], actions: [{ action: stop }] }
  - { id: a, triggers: [{ trigger: startup }], actions: [{ action: stop }] }
location: { latitude: 100, longitude: 0, time_zone: Mars/Base }
`);
  t.match(out, "c.yaml:4:11: rules[1].id: expected an id not used by another rule (also rules[0]), found \"a\"");
  t.match(out, "c.yaml:5:23: location.latitude: expected a latitude -90..90, found 100");
  t.match(out, 'location.time_zone: expected an IANA time zone such as Europe/Berlin or UTC, found "Mars/Base"');
});

t.test("the example rules in rules/examples/ are valid", async (t) => {
  const { readdirSync, readFileSync } = await import("node:fs");
  const dir = new URL("../../rules/examples/", import.meta.url);
  const files = readdirSync(dir).filter((f) => f.endsWith(".yaml"));
  t.ok(files.length >= 2);
  for (const f of files) {
    const r = rulesSchema.safeParse(parse(readFileSync(new URL(f, dir), "utf8")));
    t.ok(r.success, `${f}${r.success ? "" : `: ${JSON.stringify(r.error.issues)}`}`);
  }
});

t.test("a JSON Schema for editors", async (t) => {
  const js = JSON.stringify(z.toJSONSchema(ruleSchema, { io: "input", target: "draft-7" }));
  for (const w of ['"numeric"', '"hysteresis"', '"continue_on_timeout"', '"weekdays"', '"sunset"']) t.ok(js.includes(w), w);
});

t.test("sun conditions: events, offsets, at least one of after/before", async (t) => {
  const out = problems(`
location: { latitude: 52.52, longitude: 13.41 }
rules:
  - id: s
    triggers: [{ trigger: startup }]
    conditions:
      - { condition: sun }
      - { condition: sun, after: sunsett }
      - { condition: sun, before: sunrise, before_offset: soon }
    actions: [{ action: stop }]
`);
  t.match(out, "c.yaml:7:9: rules[0].conditions[0]: expected after, before or both, found a mapping");
  t.match(out, 'c.yaml:8:34: rules[0].conditions[1].after: expected one of sunrise, sunset, dawn, dusk');
  t.match(out, 'c.yaml:9:59: rules[0].conditions[2].before_offset: expected an offset such as -30m');
  const ok = load(`
location: { latitude: 52.52, longitude: 13.41 }
rules:
  - id: s
    triggers: [{ trigger: startup }]
    conditions: [{ condition: sun, after: sunset, after_offset: -30m, before: sunrise }]
    actions: [{ action: stop }]
`);
  t.same(ok.ok && ok.config.rules[0]!.conditions, [{ condition: "sun", after: "sunset", after_offset: -1_800_000, before: "sunrise", before_offset: 0 }]);
});

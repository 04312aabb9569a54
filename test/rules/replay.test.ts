// `hub rules test`/`check` logic: a scenario replayed on a virtual clock, with traces of why rules fired or not.
import { readFileSync } from "node:fs";
import t from "tap";
import { parseRulesText, parseYamlWith } from "../../rules/load.js";
import { replay, scenarioSchema } from "../../rules/replay.js";

const example = (name: string) => {
  const r = parseRulesText(readFileSync(new URL(`../../rules/examples/${name}`, import.meta.url), "utf8"), name);
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  return r.rules;
};

t.test("replaying a scenario explains what fired, why, and what was published", async (t) => {
  const scenario = parseYamlWith(
    scenarioSchema,
    `
start: 2025-01-06T17:00:00+01:00
time_zone: Europe/Berlin
location: { latitude: 52.52, longitude: 13.41 }
events:
  - { at: 0s, topic: hub/garden/lux, payload: 800, retain: true }
  - { at: 1m, topic: hub/garden/lux, payload: 680 }
  - { at: 2m, topic: hub/garden/lux, payload: 600 }
  - { at: 3m, topic: hub/garden/lux, payload: 960 }
  - { at: 5m, topic: hub/living_room/temperature, payload: 21.5 }
  - { at: 5m30s, topic: hub/living_room/temperature, payload: 20.9 }
  - { at: 10m }
`,
    "scenario.yaml",
    {},
  );
  if (!scenario.ok) throw new Error(JSON.stringify(scenario.problems));
  const report = await replay([...example("porch-light.yaml"), ...example("temperature-alert.yaml")], scenario.value);
  t.same(report, [
    '+0s         hub/garden/lux = "800" (retained, before the rules start)',
    "+0s         log info: rules started rules=2 enabled=2 subscriptions=2 time_zone=Europe/Berlin",
    '+1m00s      hub/garden/lux = "680"',
    '+1m00s      -> hub/porch_light/set "ON"',
    "+1m00s      log info: Garden at 680 lx after sunset: porch light on rule=porch_light_follows_daylight",
    "+1m00s      log info: rule ran rule=porch_light_follows_daylight result=ok ms=0",
    "+1m00s      rule porch_light_follows_daylight: ok",
    "            trigger dark (numeric) hub/garden/lux value 680",
    "            choice 1:",
    "              trigger.id == 'dark' and state('hub/garden/lux') < 700: pass (true)",
    "              sun after sunset before sunrise: pass (last sunset 16:09, last sunrise 08:15; it is 17:01 Europe/Berlin)",
    '              set hub/porch_light/set "ON"',
    '              log info "Garden at 680 lx after sunset: porch light on"',
    '+2m00s      hub/garden/lux = "600"',
    '+3m00s      hub/garden/lux = "960"',
    '+3m00s      -> hub/porch_light/set "OFF"',
    "+3m00s      log info: Garden at 960 lx: porch light off rule=porch_light_follows_daylight",
    "+3m00s      log info: rule ran rule=porch_light_follows_daylight result=ok ms=0",
    "+3m00s      rule porch_light_follows_daylight: ok",
    "            trigger bright (numeric) hub/garden/lux value 960",
    "            choice 1:",
    "              trigger.id == 'dark' and state('hub/garden/lux') < 700: FAIL (false)",
    "            choice 2:",
    "              trigger.id == 'bright': pass (true)",
    '              set hub/porch_light/set "OFF"',
    '              log info "Garden at 960 lx: porch light off"',
    '+5m00s      hub/living_room/temperature = "21.5"',
    '+5m30s      hub/living_room/temperature = "20.9"',
    "rule living_room_too_warm: never ran: no trigger fired (numeric hub/living_room/temperature above 21.2 for 60s)",
  ]);
});

t.test("the recorded afternoon: dark before sunset does not light the porch (the trace says why), sunset does", async (t) => {
  const text = readFileSync(new URL("fixtures/porch-afternoon.yaml", import.meta.url), "utf8");
  const scenario = parseYamlWith(scenarioSchema, text, "porch-afternoon.yaml", {});
  if (!scenario.ok) throw new Error(JSON.stringify(scenario.problems));
  const report = await replay(example("porch-light.yaml"), scenario.value);
  const at10m = report.slice(report.indexOf("+10m00s     rule porch_light_follows_daylight: ok"));
  t.same(at10m.slice(0, 6), [
    "+10m00s     rule porch_light_follows_daylight: ok",
    "            trigger dark (numeric) hub/garden/lux value 650",
    "            choice 1:",
    "              trigger.id == 'dark' and state('hub/garden/lux') < 700: pass (true)",
    "              sun after sunset before sunrise: FAIL (last sunset 01-05 16:07, last sunrise 08:15; it is 15:40 Europe/Berlin)",
    "            choice 2:",
  ]);
  t.notOk(report.some((l) => l.startsWith("+10m00s") && l.includes("-> hub/porch_light/set")), "nothing sent before sunset");
  t.ok(report.includes('+39m11s     -> hub/porch_light/set "ON"'), "on at sunset (16:09:10), the garden still dark");
  t.ok(report.includes("            trigger dark (sun) at 2025-01-06T15:09:10.529Z"));
});

t.test("a scenario with mistakes is reported at file:line:col", async (t) => {
  const r = parseYamlWith(scenarioSchema, "events:\n  - { at: 2m, topic: a }\n  - { at: 1m, topic: 'a/#' }\n", "s.yaml", {});
  t.notOk(r.ok);
  if (!r.ok) {
    t.match(r.problems, [
      { line: 3, path: "events[1].at", message: /times in order/ },
      { line: 3, path: "events[1].topic", message: /without wildcards/ },
    ]);
  }
});

t.test("the `hub rules check` and `hub rules test` commands as functions", async (t) => {
  const { rulesCheck, rulesTest } = await import("../../rules/cli.js");
  const files: Record<string, string> = {
    "ok.yaml": "- id: a\n  triggers: [{ trigger: mqtt, topic: go }]\n  actions: [{ action: publish, topic: out, payload: hi }]\n",
    "bad.yaml": "- id: b\n  triggers: [{ trigger: mqtt, topic: go }]\n  actions: [{ action: publsh }]\n",
    "events.yaml": "events:\n  - { at: 1s, topic: go, payload: x }\n",
  };
  const readFile = (p: string) => {
    const f = files[p];
    if (f === undefined) throw Object.assign(new Error("no"), { code: "ENOENT" });
    return f;
  };
  t.same(rulesCheck(["ok.yaml"], readFile), { output: "ok.yaml: ok (1 rule)", code: 0 });
  const bad = rulesCheck(["ok.yaml", "bad.yaml", "missing.yaml"], readFile);
  t.equal(bad.code, 78);
  t.match(bad.output, 'bad.yaml:3:23: [0].actions[0].action: expected one of publish, set, toggle, delay, wait, choose, if, repeat, log, stop, found "publsh"');
  t.match(bad.output, "missing.yaml:1:1: expected a readable file, found ENOENT");
  const test = await rulesTest(["ok.yaml"], "events.yaml", readFile);
  t.equal(test.code, 0);
  t.match(test.output, '+1s         -> out "hi"');
  t.match(test.output, "rule a: ok");
  t.equal((await rulesTest(["ok.yaml"], "nope.yaml", readFile)).code, 78);
});

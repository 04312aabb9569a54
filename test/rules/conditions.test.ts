// Conditions: state/numeric on last known (retained) values, for, and/or/not, time windows, expressions; traces.
import t from "tap";
import { harness, MONDAY_NOON_UTC } from "./harness.js";

/** A rule fired by a message on `go`, with the given conditions, publishing "ran" on `out`. */
const rule = (conditions: string) => `
- id: r
  mode: parallel
  triggers: [{ trigger: mqtt, topic: go }]
  conditions:
${conditions}
  actions: [{ action: publish, topic: out, payload: ran }]
`;

t.test("state and numeric conditions read the last value of any topic, retained values included", async (t) => {
  const h = await harness(
    rule(`    - { condition: state, topic: hub/mode, state: [home, guest] }
    - { condition: numeric, topic: hub/garden/lux, below: 10 }`),
    {
      before: async (p) => {
        await p("hub/mode", "home", true);
        await p("hub/garden/lux", "5", true);
      },
    },
  );
  await h.publish("go", "1");
  t.same(h.on("out"), ["ran"], "retained values known at start");
  await h.publish("hub/garden/lux", "50");
  await h.publish("go", "1");
  t.same(h.on("out"), ["ran"], "too bright");
  t.same(h.engine.status("r")!.trace, ["trigger 0 (mqtt) go value 1", "state hub/mode = [\"home\",\"guest\"]: pass (is \"home\")", "numeric hub/garden/lux < 10: FAIL (is 50)", "conditions not met: actions not run"]);
  await h.publish("hub/garden/lux", "dark");
  await h.publish("go", "1");
  t.same(h.on("out"), ["ran"], "not a number: false");
  await h.publish("hub/garden/lux", "3");
  await h.publish("hub/mode", "guest");
  await h.publish("go", "1");
  t.same(h.on("out"), ["ran", "ran"]);
  await h.stop();
});

t.test("state condition with `for`", async (t) => {
  const h = await harness(rule(`    - { condition: state, topic: hub/door, state: open, for: 10m }`));
  await h.publish("hub/door", "open");
  await h.advance(9 * 60_000, 60_000);
  await h.publish("hub/door", "open"); // the same value again does not restart the count
  await h.publish("go", "1");
  t.same(h.on("out"), []);
  await h.advance(60_000, 60_000);
  await h.publish("go", "1");
  t.same(h.on("out"), ["ran"]);
  await h.stop();
});

t.test("and / or / not, with a trace of why", async (t) => {
  const h = await harness(
    rule(`    - condition: or
      conditions:
        - { condition: state, topic: a, state: "1" }
        - condition: and
          conditions:
            - { condition: state, topic: b, state: "1" }
            - { condition: not, conditions: [{ condition: state, topic: c, state: "1" }] }`),
  );
  const cases: [string, string, string, boolean][] = [
    ["1", "0", "0", true],
    ["0", "1", "0", true],
    ["0", "1", "1", false],
    ["0", "0", "0", false],
  ];
  let runs = 0;
  for (const [a, b, c, want] of cases) {
    await h.publish("a", a);
    await h.publish("b", b);
    await h.publish("c", c);
    await h.publish("go", "1");
    if (want) runs++;
    t.equal(h.on("out").length, runs, `a=${a} b=${b} c=${c}`);
  }
  t.same(h.engine.status("r")!.trace.slice(1), [
    "or: FAIL",
    "  state a = 1: FAIL (is 0)",
    "  and: FAIL",
    "    state b = 1: FAIL (is 0)",
    "conditions not met: actions not run",
  ]);
  await h.stop();
});

t.test("time windows across midnight with weekdays, in the rules' time zone", async (t) => {
  // Starts Monday 15 January 2024, 13:00 in Berlin.
  const h = await harness(rule(`    - { condition: time, after: "22:00", before: "06:00", weekdays: [mon] }`));
  const at: string[] = [];
  for (let hours = 0; hours < 48; hours++) {
    await h.publish("go", String(hours));
    if (h.on("out").length > at.length) at.push(h.engine.status("r")!.trace.at(-2) ?? "");
    h.clock.advance(3_600_000);
  }
  t.equal(at.length, 8, "Monday 22:00 to Tuesday 05:59: 8 hourly checks");
  t.match(at[0], /time after 22:00 before 06:00 on mon: pass \(it is mon 22:00 Europe\/Berlin\)/);
  t.match(at[7], /it is tue 05:00/);
  t.equal(MONDAY_NOON_UTC, Date.UTC(2024, 0, 15, 12));
  await h.stop();
});

t.test("expression conditions; an error is false, traced and logged", async (t) => {
  const h = await harness(
    rule(`    - { condition: expression, expression: "number(trigger.payload) * 2 > state('limit')" }`),
    { before: (p) => p("limit", "10", true) },
  );
  await h.publish("go", "4");
  await h.publish("go", "6");
  t.same(h.on("out"), ["ran"]);
  await h.publish("limit", "many");
  await h.publish("go", "6");
  t.same(h.on("out"), ["ran"]);
  t.match(h.engine.status("r")!.trace[1], /FAIL \(error: > compares two numbers or two strings, found a number and a string/);
  t.match(h.lines.join("\n"), /WARN .*condition could not be evaluated/);
  await h.stop();
});

t.test("sun conditions: between sun events at the location, across midnight, with offsets; polar night", async (t) => {
  const berlin = { latitude: 52.52, longitude: 13.41 };
  // 2024-01-15 in Berlin: sunrise about 08:13, sunset about 16:25 (local, UTC+1).
  const at = (h: number, m = 0) => Date.UTC(2024, 0, 15, h - 1, m); // local time of that day
  const ran = async (cond: string, start: number, location: { latitude: number; longitude: number } | null = berlin) => {
    const h = await harness(rule(`    - ${cond}`), { start, location: location ?? undefined });
    await h.publish("go", "1");
    const trace = h.engine.status("r")!.trace;
    await h.stop();
    return { ran: h.on("out").length === 1, trace };
  };
  const night = "{ condition: sun, after: sunset, before: sunrise }";
  const day = "{ condition: sun, after: sunrise, before: sunset }";
  t.same((await ran(night, at(13))).ran, false, "13:00: not night");
  t.same((await ran(day, at(13))).ran, true, "13:00: day");
  t.same((await ran(night, at(18))).ran, true, "18:00: night");
  t.same((await ran(night, at(24, 30))).ran, true, "00:30: still night, across midnight");
  t.same((await ran(night, at(8, 5))).ran, true, "08:05: before sunrise");
  t.same((await ran(night, at(8, 20))).ran, false, "08:20: after sunrise");
  t.same((await ran("{ condition: sun, after: sunset }", at(24, 30))).ran, false, "after sunset alone: until midnight");
  t.same((await ran("{ condition: sun, after: sunset }", at(23))).ran, true);
  t.same((await ran("{ condition: sun, before: sunrise }", at(24, 30))).ran, true, "before sunrise alone: from midnight");
  t.same((await ran("{ condition: sun, before: sunrise }", at(18))).ran, false);
  t.same((await ran("{ condition: sun, after: sunset, after_offset: -1h, before: sunrise }", at(15, 45))).ran, true, "an hour before sunset");
  t.same((await ran(night, at(15, 45))).ran, false);
  const r = await ran(night, at(18));
  t.match(r.trace[1], /^sun after sunset before sunrise: pass \(last sunset 16:2\d, last sunrise 08:1\d; it is 18:00 Europe\/Berlin\)$/);
  const polar = await ran(night, Date.UTC(2024, 11, 20, 11), { latitude: 69.65, longitude: 18.96 });
  t.same(polar.ran, true, "Tromsø at noon in December: polar night");
  const none = await ran(night, at(18), null);
  t.same(none.ran, false);
  t.same(none.trace[1], "sun after sunset before sunrise: FAIL (no location in the config)");
});

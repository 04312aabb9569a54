// Triggers: mqtt, state, numeric, startup, cron and sun through the engine; the schedule policy on a jumping clock.
import t from "tap";
import type { Cancel } from "../../hub/contracts.js";
import { memoryLogger } from "../../hub/log.js";
import type { Trigger } from "../../rules/schema.js";
import { sunEventNear } from "../../rules/sun.js";
import { zone } from "../../rules/time.js";
import { armTrigger, type TriggerHost, type TriggerVars } from "../../rules/triggers.js";
import { fakeClock } from "../support/fake-clock.js";
import { harness } from "./harness.js";

const alert = (trigger: string) => `
- id: r
  mode: parallel
  triggers: [${trigger}]
  actions:
    - { action: publish, topic: out, payload: "{{ json(trigger) }}" }
`;
const fired = (h: { on(t: string): string[] }) => h.on("out").map((s) => JSON.parse(s) as TriggerVars);

t.test("mqtt: wildcard filter, payload match, value from a JSON path; startup retained values do not fire", async (t) => {
  const h = await harness(alert(`{ trigger: mqtt, topic: "hub/+/button", value: action, payload: [single, double], id: btn }`), {
    before: (p) => p("hub/hall/button", '{"action":"single"}', true),
  });
  t.same(fired(h), [], "the retained message present at startup is not an event");
  await h.publish("hub/kitchen/button", '{"action":"single","battery":90}');
  await h.publish("hub/kitchen/button", '{"action":"hold"}');
  await h.publish("hub/kitchen/other", '{"action":"single"}');
  await h.publish("hub/hall/button", '{"action":"double"}', true);
  t.same(
    fired(h).map((f) => [f.id, f.kind, f.topic, f.value]),
    [
      ["btn", "mqtt", "hub/kitchen/button", "single"],
      ["btn", "mqtt", "hub/hall/button", "double"],
    ],
  );
  t.same(fired(h)[0]!.payload, { action: "single", battery: 90 }, "trigger.payload is the parsed JSON");
  t.equal(fired(h)[0]!.raw, '{"action":"single","battery":90}');
  await h.stop();
});

t.test("state: from/to, a repeated value is not a change, the startup value is a baseline", async (t) => {
  const h = await harness(alert(`{ trigger: state, topic: hub/door, from: closed, to: open }`), { before: (p) => p("hub/door", "closed", true) });
  await h.publish("hub/door", "closed");
  t.same(fired(h), [], "same value again");
  await h.publish("hub/door", "open");
  await h.publish("hub/door", "open");
  await h.publish("hub/door", "ajar");
  await h.publish("hub/door", "open");
  await h.publish("hub/door", "closed");
  await h.publish("hub/door", "open");
  t.same(
    fired(h).map((f) => [f.from, f.to]),
    [
      ["closed", "open"],
      ["closed", "open"],
    ],
    "only closed -> open, twice",
  );
  await h.stop();
});

t.test("state with `for`: interrupted, then completed", async (t) => {
  const h = await harness(alert(`{ trigger: state, topic: hub/door, to: open, for: 5m }`), { before: (p) => p("hub/door", "closed", true) });
  await h.publish("hub/door", "open");
  await h.advance(4 * 60_000, 60_000);
  await h.publish("hub/door", "closed");
  await h.advance(10 * 60_000, 60_000);
  t.same(fired(h), [], "closed again after 4 minutes: nothing");
  await h.publish("hub/door", "open");
  await h.advance(5 * 60_000 - 1000, 60_000);
  t.same(fired(h), [], "not yet");
  await h.advance(1000);
  t.same(
    fired(h).map((f) => [f.to, f.for_ms]),
    [["open", 300_000]],
    "open for 5 minutes",
  );
  await h.stop();
});

t.test("numeric: above with hysteresis; in range at startup does not fire; non-numbers are outside", async (t) => {
  const h = await harness(alert(`{ trigger: numeric, topic: hub/t, above: 25, hysteresis: 1 }`), { before: (p) => p("hub/t", "26", true) });
  t.same(fired(h), [], "already above at startup");
  await h.publish("hub/t", "27");
  t.same(fired(h), [], "still above");
  await h.publish("hub/t", "24.5"); // below 25 but within the hysteresis band: still inside
  await h.publish("hub/t", "25.5");
  t.same(fired(h), [], "wobbling around the limit does not refire");
  await h.publish("hub/t", "23.9"); // left: below 25 - 1
  await h.publish("hub/t", "25.1");
  await h.publish("hub/t", "unavailable");
  await h.publish("hub/t", "30");
  t.same(
    fired(h).map((f) => f.value),
    [25.1, 30],
  );
  await h.stop();
});

t.test("numeric with below, a JSON value path and `for`", async (t) => {
  const h = await harness(alert(`{ trigger: numeric, topic: hub/garden, value: sensor.lux, below: 10, for: 2m }`));
  await h.publish("hub/garden", '{"sensor":{"lux":50}}');
  await h.publish("hub/garden", '{"sensor":{"lux":5}}');
  await h.advance(60_000, 10_000);
  await h.publish("hub/garden", '{"sensor":{"lux":3}}');
  await h.advance(30_000, 10_000);
  await h.publish("hub/garden", '{"sensor":{"lux":12}}');
  await h.advance(5 * 60_000, 60_000);
  t.same(fired(h), [], "interrupted after 90 s");
  await h.publish("hub/garden", '{"sensor":{"lux":4}}');
  await h.advance(2 * 60_000, 10_000);
  t.same(
    fired(h).map((f) => [f.value, f.below, f.for_ms]),
    [[4, 10, 120_000]],
  );
  await h.stop();
});

t.test("startup fires once, after the retained values are known", async (t) => {
  const h = await harness(
    `
- id: r
  triggers: [{ trigger: startup }]
  conditions: [{ condition: state, topic: hub/mode, state: away }]
  actions: [{ action: publish, topic: out, payload: "{{ trigger.kind }} {{ state('hub/mode') }}" }]
`,
    { before: (p) => p("hub/mode", "away", true) },
  );
  t.same(h.on("out"), ["startup away"]);
  await h.stop();
});

t.test("cron and sun through the engine on the fake clock", async (t) => {
  const h = await harness(
    `
- id: c
  mode: parallel
  triggers:
    - { trigger: cron, cron: "0 */10 * * * *", id: ten }
    - { trigger: sun, event: sunset, offset: -15m, id: dusk }
  actions: [{ action: publish, topic: out, payload: "{{ trigger.id }} {{ time() }}" }]
`,
    { location: { latitude: 52.52, longitude: 13.41 } },
  );
  // 13:00 Berlin on 15 January; sunset is about 16:21.
  await h.advance(25 * 60_000, 60_000);
  t.same(h.on("out"), ["ten 13:10:00", "ten 13:20:00"]);
  await h.advance(3.5 * 3_600_000, 60_000);
  const dusk = h.on("out").filter((s) => s.startsWith("dusk"));
  t.equal(dusk.length, 1);
  const sunset = sunEventNear("sunset", h.clock.now(), { latitude: 52.52, longitude: 13.41 })!;
  const l = zone("Europe/Berlin").local(sunset - 15 * 60_000);
  const p2 = (n: number) => String(n).padStart(2, "0");
  t.equal(dusk[0], `dusk ${p2(l.hour)}:${p2(l.minute)}:${p2(l.second)}`, "15 minutes before sunset");
  t.equal(l.hour, 16);
  await h.stop();
  t.equal(h.clock.pending(), 0, "stop cancels every timer");
});

// ---- the schedule policy, on a trigger alone --------------------------------------------------

function host(clock: TriggerHost["clock"], synced: () => boolean) {
  const log = memoryLogger("debug");
  const h: TriggerHost = {
    clock,
    zone: zone("Europe/Berlin"),
    location: { latitude: 52.52, longitude: 13.41 },
    log,
    listen: () => () => {},
    cached: () => undefined,
    clockSynchronised: synced,
  };
  return { h, lines: log.lines };
}

function jumpyClock(start: number) {
  const fc = fakeClock(start);
  let skew = 0;
  return { clock: { ...fc, now: () => fc.now() + skew }, fc, jump: (ms: number) => (skew += ms) };
}

const cron = (expr: string): Trigger => ({ trigger: "cron", cron: expr });
const at = (ms: number) => new Date(ms).toISOString();

t.test("cron across both DST transitions in Europe/Berlin, on the fake clock", async (t) => {
  const fc = fakeClock(Date.UTC(2024, 2, 30, 12, 0, 0));
  const { h } = host(fc, () => true);
  const times: string[] = [];
  const cancel = armTrigger(cron("0 30 2 * * *"), 0, h, (v) => times.push(`${v.scheduled} @ ${at(fc.now())}`));
  fc.advance(3 * 86_400_000);
  t.same(times, [
    "2024-03-31T01:00:00.000Z @ 2024-03-31T01:00:00.000Z",
    "2024-04-01T00:30:00.000Z @ 2024-04-01T00:30:00.000Z",
    "2024-04-02T00:30:00.000Z @ 2024-04-02T00:30:00.000Z",
  ]);
  cancel();
  const fall = fakeClock(Date.UTC(2024, 9, 26, 12, 0, 0));
  const { h: h2 } = host(fall, () => true);
  const fallTimes: string[] = [];
  const c2 = armTrigger(cron("0 30 2 * * *"), 0, h2, (v) => fallTimes.push(String(v.scheduled)));
  fall.advance(2 * 86_400_000);
  t.same(fallTimes, ["2024-10-27T00:30:00.000Z", "2024-10-28T01:30:00.000Z"], "once on the day 02:30 happens twice");
  c2();
  t.equal(fc.pending() + fall.pending(), 0);
});

t.test("cron: nothing fires before the clock is synchronised", async (t) => {
  let synced = false;
  const fc = fakeClock(Date.UTC(2024, 0, 15, 12, 0, 0));
  const { h } = host(fc, () => synced);
  const times: string[] = [];
  const cancel = armTrigger(cron("0 * * * * *"), 0, h, (v) => times.push(String(v.scheduled)));
  fc.advance(5 * 60_000);
  t.same(times, []);
  synced = true;
  fc.advance(60_000); // the wake that sees the clock trusted starts counting from then
  fc.advance(2 * 60_000);
  t.same(times, ["2024-01-15T12:07:00.000Z", "2024-01-15T12:08:00.000Z"]);
  cancel();
});

t.test("cron: a forward jump skips (and logs) missed times; a backward jump repeats nothing", async (t) => {
  const { clock, fc, jump } = jumpyClock(Date.UTC(2024, 0, 15, 12, 0, 30));
  const { h, lines } = host(clock, () => true);
  const times: string[] = [];
  const cancel = armTrigger(cron("0 * * * * *"), 0, h, (v) => times.push(String(v.scheduled)));
  fc.advance(60_000);
  t.same(times, ["2024-01-15T12:01:00.000Z"]);
  jump(3_600_000); // NTP sets the clock an hour ahead
  fc.advance(60_000);
  t.same(times, ["2024-01-15T12:01:00.000Z"], "the hour skipped over is not replayed");
  t.match(lines.join("\n"), /the clock jumped forward: scheduled times skipped .*skipped=6\d/);
  fc.advance(60_000);
  t.equal(times.length, 2, "then on schedule again");
  t.equal(times[1], "2024-01-15T13:03:00.000Z");
  jump(-30 * 60_000);
  fc.advance(10 * 60_000);
  t.same(times.slice(2), [], "after going back 30 minutes, the times already fired do not fire again");
  fc.advance(25 * 60_000);
  t.same(
    times.slice(2),
    ["2024-01-15T13:04:00.000Z", "2024-01-15T13:05:00.000Z", "2024-01-15T13:06:00.000Z", "2024-01-15T13:07:00.000Z", "2024-01-15T13:08:00.000Z"],
    "and it goes on from where it was, each time once",
  );
  cancel();
  t.equal(fc.pending(), 0);
});

t.test("sun: needs a location", async (t) => {
  const fc = fakeClock();
  const { h } = host(fc, () => true);
  t.throws(() => armTrigger({ trigger: "sun", event: "sunset", offset: 0 }, 0, { ...h, location: undefined }, () => {}), /needs location/);
  const c: Cancel = armTrigger({ trigger: "sun", event: "sunrise", offset: 0 }, 0, h, () => {});
  c();
  t.equal(fc.pending(), 0);
});

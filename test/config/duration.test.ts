// Durations as users write them in config and rules: a unit is required, the result is milliseconds.
import t from "tap";
import { duration, parseDuration } from "../../hub/config/duration.js";

t.test("parseDuration accepts units from ms to days, combined largest first", async (t) => {
  const cases: [string, number][] = [
    ["250ms", 250],
    ["10s", 10_000],
    ["0s", 0],
    ["5m", 300_000],
    ["1h30m", 5_400_000],
    ["1d", 86_400_000],
    ["1d2h3m4s5ms", 93_784_005],
    ["1.5s", 1500],
    ["0.5m", 30_000],
  ];
  for (const [s, ms] of cases) t.equal(parseDuration(s), ms, s);
});

t.test("parseDuration refuses anything else", async (t) => {
  for (const s of ["", "10", "s", "10S", "10 s", " 10s", "-5s", "30m1h", "1h1h", "10sec", "1.s", ".5s", "1e3ms", "99999999999999999999d"]) {
    t.equal(parseDuration(s), undefined, JSON.stringify(s));
  }
});

t.test("duration() parses to milliseconds and rejects bare numbers with a hint", async (t) => {
  const d = duration();
  t.equal(d.parse("1h30m"), 5_400_000);
  const num = d.safeParse(10);
  t.notOk(num.success);
  t.match(num.error?.issues[0]?.message, /write a unit, e\.g\. 10s/);
  const bad = d.safeParse("10x");
  t.notOk(bad.success);
  t.equal(bad.error?.issues.length, 1, "one problem, not one per check");
  t.match(bad.error?.issues[0]?.message, /a duration such as 250ms, 10s/);
  t.equal(duration().prefault("10s").parse(undefined), 10_000, "a default is written as users write it");
});

// Durations in rules: the same grammar as the config's, and signed offsets.
import t from "tap";
import { duration, offset, parseDuration, parseOffset } from "../../rules/duration.js";

t.test("durations as in the config", async (t) => {
  t.equal(parseDuration("250ms"), 250);
  t.equal(parseDuration("10s"), 10_000);
  t.equal(parseDuration("5m"), 300_000);
  t.equal(parseDuration("1h30m"), 5_400_000);
  t.equal(parseDuration("1d"), 86_400_000);
  t.equal(parseDuration("1.5s"), 1500);
  for (const bad of ["", "10", "30m1h", "-5s", "5 s", "1h1h"]) t.equal(parseDuration(bad), undefined, bad);
});


t.test("signed offsets", async (t) => {
  t.equal(parseOffset("-30m"), -1_800_000);
  t.equal(parseOffset("+1h"), 3_600_000);
  t.equal(parseOffset("10m"), 600_000);
  t.equal(parseOffset("--1m"), undefined);
  t.equal(offset().parse("-1h30m"), -5_400_000);
  t.equal(duration().parse("2m"), 120_000);
  t.notOk(duration().safeParse(10).success, "a bare number is refused");
});

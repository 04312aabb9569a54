// Time zones (instants <-> wall time across DST gaps and overlaps) and daily windows.
import t from "tap";
import { inWindow, lazyZone, parseTimeOfDay, validTimeZone, zone } from "../../rules/time.js";

const berlin = zone("Europe/Berlin");

t.test("local fields of an instant", async (t) => {
  t.same(berlin.local(Date.UTC(2024, 0, 15, 12, 0, 0)), { year: 2024, month: 1, day: 15, hour: 13, minute: 0, second: 0, weekday: 1 });
  t.same(berlin.local(Date.UTC(2024, 6, 1, 22, 30, 5)), { year: 2024, month: 7, day: 2, hour: 0, minute: 30, second: 5, weekday: 2 });
  t.equal(berlin.local(Date.UTC(2024, 9, 27, 0, 30)).hour, 2, "02:30 CEST, first pass");
  t.equal(berlin.local(Date.UTC(2024, 9, 27, 1, 30)).hour, 2, "02:30 CET, second pass");
});

t.test("local wall time to an instant, across both DST transitions", async (t) => {
  t.same(berlin.instant(2024, 1, 15, 13, 0, 0), { ms: Date.UTC(2024, 0, 15, 12, 0, 0), gap: false });
  t.same(berlin.instant(2024, 7, 1, 13, 0, 0), { ms: Date.UTC(2024, 6, 1, 11, 0, 0), gap: false });
  // 31 March 2024: 02:00 CET jumps to 03:00 CEST (01:00 UTC); 02:30 does not exist.
  t.same(berlin.instant(2024, 3, 31, 2, 30, 0), { ms: Date.UTC(2024, 2, 31, 1, 0, 0), gap: true });
  t.same(berlin.instant(2024, 3, 31, 3, 0, 0), { ms: Date.UTC(2024, 2, 31, 1, 0, 0), gap: false });
  t.same(berlin.instant(2024, 3, 31, 1, 59, 59), { ms: Date.UTC(2024, 2, 31, 0, 59, 59), gap: false });
  // 27 October 2024: 03:00 CEST goes back to 02:00 CET; 02:30 happens twice, the first is taken.
  t.same(berlin.instant(2024, 10, 27, 2, 30, 0), { ms: Date.UTC(2024, 9, 27, 0, 30, 0), gap: false });
  t.same(berlin.instant(2024, 10, 27, 3, 0, 0), { ms: Date.UTC(2024, 9, 27, 2, 0, 0), gap: false });
  const kolkata = zone("Asia/Kolkata");
  t.same(kolkata.instant(2024, 1, 1, 5, 30, 0), { ms: Date.UTC(2024, 0, 1, 0, 0, 0), gap: false }, "half-hour offset");
});

t.test("time zone names", async (t) => {
  t.ok(validTimeZone("Europe/Berlin"));
  t.ok(validTimeZone("UTC"));
  t.notOk(validTimeZone("Mars/Olympus"));
  t.notOk(validTimeZone("constructor"));
});

t.test("times of day", async (t) => {
  t.equal(parseTimeOfDay("22:00"), 79_200);
  t.equal(parseTimeOfDay("6:30"), 23_400);
  t.equal(parseTimeOfDay("06:30:15"), 23_415);
  for (const bad of ["24:00", "12:60", "12", "noon", "12:00:60"]) t.equal(parseTimeOfDay(bad), undefined, bad);
});

t.test("windows, including across midnight with weekdays", async (t) => {
  const at = (weekday: number, hour: number, minute = 0) => ({ year: 2024, month: 1, day: 1, hour, minute, second: 0, weekday });
  const night = { after: 22 * 3600, before: 6 * 3600 };
  t.ok(inWindow(night, at(1, 23)));
  t.ok(inWindow(night, at(1, 2)));
  t.notOk(inWindow(night, at(1, 12)));
  t.ok(inWindow(night, at(1, 22, 0)), "after is inclusive");
  t.notOk(inWindow(night, at(1, 6, 0)), "before is exclusive");
  const fridayNight = { ...night, weekdays: ["fri" as const] };
  t.ok(inWindow(fridayNight, at(5, 23)), "Friday 23:00");
  t.ok(inWindow(fridayNight, at(6, 3)), "Saturday 03:00 belongs to Friday night");
  t.notOk(inWindow(fridayNight, at(5, 3)), "Friday 03:00 belongs to Thursday night");
  t.notOk(inWindow(fridayNight, at(6, 23)), "Saturday 23:00 is Saturday night");
  const office = { after: 9 * 3600, before: 17 * 3600, weekdays: ["mon" as const, "tue" as const, "wed" as const, "thu" as const, "fri" as const] };
  t.ok(inWindow(office, at(3, 10)));
  t.notOk(inWindow(office, at(0, 10)), "not on Sunday");
  t.ok(inWindow({ after: 18 * 3600 }, at(2, 23)), "after only: until midnight");
  t.notOk(inWindow({ after: 18 * 3600 }, at(2, 1)));
  t.ok(inWindow({ before: 7 * 3600 }, at(2, 1)), "before only: from midnight");
  t.ok(inWindow({ weekdays: ["sat", "sun"] }, at(0, 12)), "weekdays only");
  t.notOk(inWindow({ weekdays: ["sat", "sun"] }, at(1, 12)));
});

t.test("lazyZone: the system zone is looked up only when a rule needs the clock", async (t) => {
  // Looking it up loads the platform's time-zone data (~7 MB of RSS, issue 3): not at start.
  let asked = 0;
  const system = () => {
    asked++;
    return "Europe/Berlin";
  };
  const z = lazyZone(undefined, system);
  t.equal(z.knownName, undefined, "not known before use");
  t.equal(asked, 0, "not looked up by making it");
  t.same(z.local(Date.UTC(2024, 0, 15, 12, 0, 0)), berlin.local(Date.UTC(2024, 0, 15, 12, 0, 0)));
  t.same(z.instant(2024, 3, 31, 2, 30, 0), berlin.instant(2024, 3, 31, 2, 30, 0), "DST gap as the zone itself");
  t.equal(z.name, "Europe/Berlin");
  t.equal(z.knownName, "Europe/Berlin");
  t.equal(asked, 1, "looked up once");

  const configured = lazyZone("Asia/Kolkata", system);
  t.equal(configured.knownName, "Asia/Kolkata", "a configured name is known without loading anything");
  t.equal(configured.local(Date.UTC(2024, 0, 1, 0, 0, 0)).hour, 5);
  t.equal(asked, 1, "the system zone is not asked for when one is configured");
});

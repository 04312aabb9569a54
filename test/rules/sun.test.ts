// Sun events from suncalc against a published table, offsets, polar night.
import t from "tap";
import { nextSunEvent, sunEventNear } from "../../rules/sun.js";
import { zone } from "../../rules/time.js";

// Published table for Berlin (52.52 N, 13.41 E), sunrise/sunset on the 1st of the month, local time:
// https://whattime.city/berlin/sun (January 08:18/16:03, July 04:48/21:33, December 07:55/15:58).
// Published times are rounded to the minute and computed for slightly different points, so a few
// minutes' tolerance.
const berlin = { latitude: 52.52, longitude: 13.41 };
const tz = zone("Europe/Berlin");
const local = (ms: number | undefined) => {
  const l = tz.local(ms!);
  return l.hour * 60 + l.minute;
};

t.test("sunrise and sunset in Berlin match the published table", async (t) => {
  const table: [number, number, string, string][] = [
    [2024, 1, "08:18", "16:03"],
    [2024, 7, "04:48", "21:33"],
    [2024, 12, "07:55", "15:58"],
  ];
  for (const [y, m, rise, set] of table) {
    const noon = Date.UTC(y, m - 1, 1, 11, 0, 0);
    const want = (s: string) => Number(s.slice(0, 2)) * 60 + Number(s.slice(3));
    t.ok(Math.abs(local(sunEventNear("sunrise", noon, berlin)) - want(rise)) <= 3, `${y}-${m} sunrise ~${rise}`);
    t.ok(Math.abs(local(sunEventNear("sunset", noon, berlin)) - want(set)) <= 3, `${y}-${m} sunset ~${set}`);
  }
});

t.test("the next event after an instant, with offsets", async (t) => {
  const morning = Date.UTC(2024, 6, 1, 6, 0, 0); // 08:00 in Berlin, after sunrise
  const sunset = sunEventNear("sunset", morning, berlin)!;
  t.equal(nextSunEvent("sunset", 0, morning, berlin), sunset, "today's sunset");
  t.equal(nextSunEvent("sunset", -30 * 60_000, morning, berlin), sunset - 30 * 60_000, "half an hour before");
  const rise = nextSunEvent("sunrise", 0, morning, berlin)!;
  t.ok(rise > sunset && rise - morning < 86_400_000, "today's sunrise is past: tomorrow's");
  t.equal(nextSunEvent("sunset", 0, sunset, berlin)! > sunset + 86_000_000, true, "strictly after: not the same one again");
  const late = nextSunEvent("sunrise", 20 * 3_600_000, morning, berlin)!;
  t.ok(late > morning && late - morning < 86_400_000, "a large offset still gives the next occurrence");
  t.ok(local(nextSunEvent("dusk", 0, morning, berlin)) > local(sunset), "civil dusk after sunset");
});

t.test("polar night: no sunrise in Tromsø until January", async (t) => {
  const tromso = { latitude: 69.65, longitude: 18.96 };
  const dec = Date.UTC(2024, 11, 1, 12, 0, 0);
  const next = nextSunEvent("sunrise", 0, dec, tromso)!;
  t.ok(next > Date.UTC(2025, 0, 10) && next < Date.UTC(2025, 0, 20), `first sunrise ${new Date(next).toISOString()}`);
});

// Cron next-fire times from node-cron's parsed fields: zones, L/W/#, both DST transitions in Europe/Berlin.
import fc from "fast-check";
import t from "tap";
import { cronProblem, nextCron, parseCron } from "../../rules/cron.js";
import { zone } from "../../rules/time.js";

const berlin = zone("Europe/Berlin");
const utc = zone("UTC");
const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());
/** The next `n` fire times after `from`. */
function times(expr: string, from: number, n: number, z = berlin): (string | undefined)[] {
  const s = parseCron(expr);
  const out: (string | undefined)[] = [];
  let at: number | undefined = from;
  for (let i = 0; i < n && at !== undefined; i++) {
    at = nextCron(s, at, z);
    out.push(iso(at));
  }
  return out;
}

t.test("validation comes from node-cron", async (t) => {
  t.equal(cronProblem("0 30 7 * * mon-fri"), undefined);
  t.equal(cronProblem("*/5 * * * *"), undefined);
  t.match(cronProblem("0 61 * * *"), /hour|minute/);
  t.match(cronProblem("x y"), /5 or 6 fields/);
  t.ok(cronProblem(""));
  t.match(cronProblem("0 0 0 30 2 *"), /impossible day/, "a day that never comes");
});

t.test("plain schedules in a zone", async (t) => {
  const monday = Date.UTC(2024, 0, 15, 12, 0, 0); // 13:00 Berlin
  t.same(times("0 30 7 * * mon-fri", monday, 3), ["2024-01-16T06:30:00.000Z", "2024-01-17T06:30:00.000Z", "2024-01-18T06:30:00.000Z"]);
  t.same(times("0 30 7 * * sat,sun", monday, 2), ["2024-01-20T06:30:00.000Z", "2024-01-21T06:30:00.000Z"]);
  t.same(times("*/15 * * * * *", monday + 7000, 3), ["2024-01-15T12:00:15.000Z", "2024-01-15T12:00:30.000Z", "2024-01-15T12:00:45.000Z"], "seconds field");
  t.same(times("*/20 * * * *", monday, 2), ["2024-01-15T12:20:00.000Z", "2024-01-15T12:40:00.000Z"], "five fields: second 0");
  t.same(times("0 0 12 L * *", Date.UTC(2024, 1, 10), 2), ["2024-02-29T11:00:00.000Z", "2024-03-31T10:00:00.000Z"], "last day of the month (leap year)");
  t.same(times("0 0 9 * * 1#2", monday, 1), ["2024-02-12T08:00:00.000Z"], "second Monday");
  t.same(times("0 0 9 * * 5L", monday, 1), ["2024-01-26T08:00:00.000Z"], "last Friday");
  t.same(times("0 0 9 15W * *", Date.UTC(2024, 5, 1), 1), ["2024-06-14T07:00:00.000Z"], "weekday nearest the 15th (a Saturday)");
  t.same(times("0 0 0 29 2 *", Date.UTC(2024, 2, 1), 1), ["2028-02-28T23:00:00.000Z"], "29 February, next leap year");
  t.same(times("0 0 9 * * *", monday, 1, zone("America/New_York")), ["2024-01-15T14:00:00.000Z"], "another zone (07:00 there now)");
});

t.test("DST in Europe/Berlin: spring forward (31 March 2024, 02:00 -> 03:00)", async (t) => {
  const before = Date.UTC(2024, 2, 30, 12, 0, 0);
  t.same(
    times("0 30 2 * * *", before, 3),
    ["2024-03-31T01:00:00.000Z", "2024-04-01T00:30:00.000Z", "2024-04-02T00:30:00.000Z"],
    "02:30 does not exist on the 31st: it fires once, at the jump (03:00 CEST)",
  );
  t.same(
    times("0 */30 * * * *", Date.UTC(2024, 2, 31, 0, 0, 0), 4),
    ["2024-03-31T00:30:00.000Z", "2024-03-31T01:00:00.000Z", "2024-03-31T01:30:00.000Z", "2024-03-31T02:00:00.000Z"],
    "every 30 min: 01:30 CET, then 03:00 CEST once (02:00 and 02:30 collapse into it), 03:30",
  );
  t.same(times("0 0 3 * * *", before, 2), ["2024-03-31T01:00:00.000Z", "2024-04-01T01:00:00.000Z"], "03:00 right after the jump");
});

t.test("DST in Europe/Berlin: fall back (27 October 2024, 03:00 -> 02:00)", async (t) => {
  const before = Date.UTC(2024, 9, 26, 12, 0, 0);
  t.same(
    times("0 30 2 * * *", before, 2),
    ["2024-10-27T00:30:00.000Z", "2024-10-28T01:30:00.000Z"],
    "02:30 happens twice on the 27th: it fires once, at the first (CEST)",
  );
  t.same(
    times("0 */30 * * * *", Date.UTC(2024, 9, 26, 23, 0, 0), 5),
    ["2024-10-26T23:30:00.000Z", "2024-10-27T00:00:00.000Z", "2024-10-27T00:30:00.000Z", "2024-10-27T02:00:00.000Z", "2024-10-27T02:30:00.000Z"],
    "every 30 min: the repeated hour 02:00-02:59 CET fires nothing the second time",
  );
  t.same(times("0 0 12 * * *", before, 2), ["2024-10-27T11:00:00.000Z", "2024-10-28T11:00:00.000Z"], "noon moves from UTC+2 to UTC+1");
});

t.test("agrees with a minute-by-minute scan (zones without DST)", async (t) => {
  const fields = fc.record({
    minute: fc.constantFrom("*", "0", "*/7", "5,35", "10-20", "59"),
    hour: fc.constantFrom("*", "0", "*/5", "9-17", "23"),
    dom: fc.constantFrom("*", "1", "15", "L", "*/10"),
    month: fc.constantFrom("*", "1-6", "2", "*/2"),
    dow: fc.constantFrom("*", "mon-fri", "0", "6", "3"),
  });
  const zones = [utc, zone("Asia/Kolkata")];
  fc.assert(
    fc.property(fields, fc.integer({ min: Date.UTC(2023, 0, 1), max: Date.UTC(2025, 0, 1) }), fc.integer({ min: 0, max: 1 }), (f, from, zi) => {
      const expr = `${f.minute} ${f.hour} ${f.dom} ${f.month} ${f.dow}`;
      const s = parseCron(expr);
      const z = zones[zi]!;
      const got = nextCron(s, from, z);
      // The scan: every whole minute after `from` for up to 2 days must not match before `got`.
      const matches = (ms: number) => {
        const l = z.local(ms);
        const last = new Date(Date.UTC(l.year, l.month, 0)).getUTCDate();
        const domOk = s.daysOfMonth.some((d) => d === l.day || (d === "L" && l.day === last));
        return s.minutes.includes(l.minute) && s.hours.includes(l.hour) && s.months.has(l.month) && domOk && s.daysOfWeek.includes(l.weekday) && l.second === 0;
      };
      let m = Math.floor(from / 60_000) * 60_000 + 60_000;
      if (from % 60_000 !== 0 && m - 60_000 > from) m -= 60_000;
      const end = m + 2 * 86_400_000;
      for (; m < end && (got === undefined || m < got); m += 60_000) if (matches(m)) return false;
      return got === undefined || got >= end || matches(got);
    }),
    { numRuns: 30 },
  );
  t.pass();
});

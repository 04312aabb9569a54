// Cron schedules. node-cron parses and validates the expression (5 fields, or 6 with seconds first;
// names, ranges, steps, L, W, #). It cannot take an injected clock, so the next fire time is computed
// here from its parsed fields, the injected Clock's wall time and a named time zone.
//
// Daylight saving, for a schedule in a zone with DST (e.g. Europe/Berlin):
// - spring (02:00 -> 03:00): a time in the skipped hour (02:30) fires once, at the jump (03:00);
// - autumn (03:00 -> 02:00): a time in the repeated hour fires once, at its first occurrence.
// So every wall-clock time a schedule names fires exactly once per day it names.
// Both day fields must match when both are restricted (node-cron's rule, not classic cron's "either").
//
// node-cron is loaded on first use (its CommonJS build, through require): its ESM entry also loads
// child_process and crypto for its background tasks, ~2 MB of RSS a hub without cron schedules
// should not carry (issue 3, idle RSS).
import { createRequire } from "node:module";
import type { ParsedFields } from "node-cron";
import type { Zone } from "./time.js";

type NodeCron = Pick<typeof import("node-cron"), "parse" | "validateDetailed">;
const require = createRequire(import.meta.url);
/** node-cron, loaded by the first call (later calls hit require's module cache). */
const cron = (): NodeCron => require("node-cron") as NodeCron;

export interface CronSchedule {
  readonly source: string;
  readonly seconds: readonly number[];
  readonly minutes: readonly number[];
  readonly hours: readonly number[];
  readonly months: ReadonlySet<number>;
  readonly daysOfMonth: ParsedFields["dayOfMonth"];
  readonly daysOfWeek: ParsedFields["dayOfWeek"];
}

/** Why an expression is not a valid schedule, or undefined if it is. */
export function cronProblem(source: string): string | undefined {
  try {
    const v = cron().validateDetailed(source);
    if (v.valid) return undefined;
    return v.errors.map((e) => (e.value === undefined || e.field === "expression" ? e.message : `${e.field} ${JSON.stringify(e.value)}: ${e.message}`)).join("; ");
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

export function parseCron(source: string): CronSchedule {
  const f = cron().parse(source);
  const asc = (xs: number[]) => [...new Set(xs)].sort((a, b) => a - b);
  return {
    source,
    seconds: asc(f.second),
    minutes: asc(f.minute),
    hours: asc(f.hour),
    months: new Set(f.month),
    daysOfMonth: f.dayOfMonth,
    daysOfWeek: f.dayOfWeek,
  };
}

const lastDay = (y: number, m: number) => new Date(Date.UTC(y, m, 0)).getUTCDate();
const weekdayOf = (y: number, m: number, d: number) => new Date(Date.UTC(y, m - 1, d)).getUTCDay();

/** The weekday (Mon-Fri) nearest to day `target` within the month (the `W` token). */
function nearestWeekday(y: number, m: number, target: number): number {
  const last = lastDay(y, m);
  if (target < 1 || target > last) return -1;
  const wd = weekdayOf(y, m, target);
  if (wd === 6) return target === 1 ? 3 : target - 1;
  if (wd === 0) return target === last ? target - 2 : target + 1;
  return target;
}

function dayOfMonthMatches(field: CronSchedule["daysOfMonth"], y: number, m: number, d: number): boolean {
  for (const v of field) {
    if (v === d) return true;
    if (typeof v !== "string") continue;
    if (v === "L" && d === lastDay(y, m)) return true;
    const w = /^(\d{1,2}|L)W$/.exec(v);
    if (w && nearestWeekday(y, m, w[1] === "L" ? lastDay(y, m) : Number(w[1])) === d) return true;
    const off = /^L-(\d{1,2})$/.exec(v);
    if (off && lastDay(y, m) - Number(off[1]) === d) return true;
  }
  return false;
}

function dayOfWeekMatches(field: CronSchedule["daysOfWeek"], y: number, m: number, d: number): boolean {
  const wd = weekdayOf(y, m, d);
  for (const v of field) {
    if (v === wd) return true;
    if (typeof v !== "string") continue;
    const nth = /^([0-7])#([1-5])$/.exec(v);
    if (nth && Number(nth[1]) % 7 === wd && Math.floor((d - 1) / 7) + 1 === Number(nth[2])) return true;
    const last = /^([0-7])L$/i.exec(v);
    if (last && Number(last[1]) % 7 === wd && d + 7 > lastDay(y, m)) return true;
  }
  return false;
}

/** Long enough for 29 February on a given weekday (a 28-year cycle). */
const MAX_DAYS = 366 * 29;

/**
 * The first instant strictly after `after` (ms) at which the schedule fires in `zone`, or undefined if
 * it never does (e.g. 30 February).
 */
export function nextCron(s: CronSchedule, after: number, zone: Zone): number | undefined {
  const base = zone.local(after);
  const baseTod = base.hour * 3600 + base.minute * 60 + base.second;
  let { year, month, day } = base;
  for (let i = 0; i < MAX_DAYS; i++) {
    if (s.months.has(month) && dayOfMonthMatches(s.daysOfMonth, year, month, day) && dayOfWeekMatches(s.daysOfWeek, year, month, day)) {
      for (const h of s.hours) {
        if (i === 0 && h < base.hour) continue;
        for (const mi of s.minutes) {
          if (i === 0 && h * 3600 + mi * 60 + 59 < baseTod) continue;
          for (const se of s.seconds) {
            if (i === 0 && h * 3600 + mi * 60 + se < baseTod) continue;
            const at = zone.instant(year, month, day, h, mi, se).ms;
            if (at > after) return at;
          }
        }
      }
    }
    const next = new Date(Date.UTC(year, month - 1, day + 1));
    year = next.getUTCFullYear();
    month = next.getUTCMonth() + 1;
    day = next.getUTCDate();
  }
  return undefined;
}

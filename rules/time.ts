// Wall-clock time in a named IANA time zone (Europe/Berlin), from the platform's Intl data: instants
// to local fields and back, with daylight-saving gaps and overlaps made explicit, and the `time`
// condition's windows. Each Zone caches its own formatter; there is no module-level cache.
import type { LocalTime } from "./evaluate.js";

export interface Zone {
  readonly name: string;
  /** Local fields of an instant (ms since the epoch). */
  local(ms: number): LocalTime;
  /**
   * The instant a local wall-clock time names. In the spring gap (02:30 on the day clocks jump from
   * 02:00 to 03:00) there is none: `gap` is set and `ms` is the instant the clocks jumped. In the
   * autumn overlap (02:30 happens twice) `ms` is the first of the two.
   */
  instant(year: number, month: number, day: number, hour: number, minute: number, second: number): { ms: number; gap: boolean };
}

/** True if the platform knows the IANA zone name. */
export function validTimeZone(name: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

export function systemTimeZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone;
}

/** A Zone made on first use; `knownName` tells its name without making it, when it can. */
export interface LazyZone extends Zone {
  /** The configured name, or the zone's once it has been made; undefined while the system's is unresolved. */
  readonly knownName: string | undefined;
}

/**
 * The zone `name` (default: the system's), made when first used. Making any zone, even asking for
 * the system's name, loads the platform's time-zone data: ~7 MB of RSS in a Node process (issue 3,
 * "broker idle RSS within 10 MB of a bare Node process"). A hub whose rules never look at the wall
 * clock (no cron, time or sun) never pays it.
 */
export function lazyZone(name: string | undefined, system: () => string = systemTimeZone): LazyZone {
  let made: Zone | undefined;
  const get = (): Zone => {
    if (made === undefined) made = zone(name ?? system());
    return made;
  };
  return {
    get name() {
      return get().name;
    },
    get knownName() {
      return made?.name ?? name;
    },
    local: (ms) => get().local(ms),
    instant: (year, month, day, hour, minute, second) => get().instant(year, month, day, hour, minute, second),
  };
}

const DAY_MS = 86_400_000;
const WEEKDAY_INDEX: Record<string, number> = { Sun: 0, Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6 };

export function zone(name: string): Zone {
  const fmt = new Intl.DateTimeFormat("en-US", {
    timeZone: name,
    hourCycle: "h23",
    year: "numeric",
    month: "numeric",
    day: "numeric",
    hour: "numeric",
    minute: "numeric",
    second: "numeric",
    weekday: "short",
  });
  const local = (ms: number): LocalTime => {
    const out: LocalTime = { year: 0, month: 0, day: 0, hour: 0, minute: 0, second: 0, weekday: 0 };
    for (const p of fmt.formatToParts(ms)) {
      switch (p.type) {
        case "year":
          out.year = Number(p.value);
          break;
        case "month":
          out.month = Number(p.value);
          break;
        case "day":
          out.day = Number(p.value);
          break;
        case "hour":
          out.hour = Number(p.value);
          break;
        case "minute":
          out.minute = Number(p.value);
          break;
        case "second":
          out.second = Number(p.value);
          break;
        case "weekday":
          out.weekday = WEEKDAY_INDEX[p.value] ?? 0;
          break;
      }
    }
    return out;
  };
  /** Local wall time of an instant, as if it were UTC (whole seconds). */
  const wall = (ms: number): number => {
    const l = local(ms);
    return Date.UTC(l.year, l.month - 1, l.day, l.hour, l.minute, l.second);
  };
  const offset = (ms: number): number => wall(ms) - Math.floor(ms / 1000) * 1000;
  return {
    name,
    local,
    instant(year, month, day, hour, minute, second) {
      const target = Date.UTC(year, month - 1, day, hour, minute, second);
      // Offsets well before and after: at most one transition lies between them.
      const before = offset(target - DAY_MS);
      const after = offset(target + DAY_MS);
      const a = target - before;
      const b = target - after;
      const okA = wall(a) === target;
      const okB = wall(b) === target;
      if (okA && okB) return { ms: Math.min(a, b), gap: false };
      if (okA) return { ms: a, gap: false };
      if (okB) return { ms: b, gap: false };
      // A gap: find the first instant on the new offset between the two candidates (to the second).
      let lo = Math.min(a, b);
      let hi = Math.max(a, b);
      while (hi - lo > 1000) {
        const mid = Math.floor((lo + hi) / 2000) * 1000;
        if (offset(mid) === after) hi = mid;
        else lo = mid;
      }
      return { ms: hi, gap: true };
    },
  };
}

// ---- time windows -------------------------------------------------------------------------------

export const WEEKDAY_NAMES = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"] as const;
export type WeekdayName = (typeof WEEKDAY_NAMES)[number];

/** `HH:MM` or `HH:MM:SS` (24-hour) to seconds after midnight, or undefined. */
export function parseTimeOfDay(s: string): number | undefined {
  const m = /^([01]?\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?$/.exec(s);
  if (m === null) return undefined;
  return Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3] ?? 0);
}

export interface Window {
  /** Seconds after midnight; undefined: from midnight. */
  after?: number;
  /** Seconds after midnight; undefined: until midnight. */
  before?: number;
  weekdays?: readonly WeekdayName[];
}

/**
 * Whether a local time is inside a window. `after` is inclusive, `before` exclusive. When after >
 * before the window crosses midnight (22:00-06:00). `weekdays` names the day the window STARTS on:
 * with after 22:00, before 06:00 and weekdays [fri], Saturday 03:00 is inside and Friday 03:00 is not.
 */
export function inWindow(w: Window, l: LocalTime): boolean {
  const t = l.hour * 3600 + l.minute * 60 + l.second;
  const after = w.after ?? 0;
  const before = w.before ?? 86_400;
  let startDay = l.weekday;
  let inside: boolean;
  if (after < before || w.after === undefined || w.before === undefined) {
    inside = t >= after && t < before;
  } else if (after === before) {
    inside = true; // the whole day, starting at `after`
    if (t < after) startDay = (l.weekday + 6) % 7;
  } else if (t >= after) {
    inside = true;
  } else {
    inside = t < before;
    startDay = (l.weekday + 6) % 7; // the part after midnight belongs to the evening before
  }
  if (!inside) return false;
  return w.weekdays === undefined || w.weekdays.includes(WEEKDAY_NAMES[startDay]!);
}

// Sun events (sunrise, sunset, dawn, dusk, ...) for a place, from suncalc 2. Times are instants, so
// time zones and daylight saving do not enter; near the poles an event may not happen for months.
import { getTimes } from "suncalc";

/** Event names in rules -> suncalc's names. dawn/dusk are civil (sun 6° below the horizon). */
export const SUN_EVENTS = {
  sunrise: "sunrise",
  sunset: "sunset",
  dawn: "dawn",
  dusk: "dusk",
  solar_noon: "solarNoon",
  nautical_dawn: "nauticalDawn",
  nautical_dusk: "nauticalDusk",
  night: "night",
  night_end: "nightEnd",
  golden_hour: "goldenHour",
  golden_hour_end: "goldenHourEnd",
} as const;
export type SunEvent = keyof typeof SUN_EVENTS;
export const SUN_EVENT_NAMES = Object.keys(SUN_EVENTS) as SunEvent[];

export interface Location {
  latitude: number;
  longitude: number;
}

const DAY_MS = 86_400_000;

/** The instant of `event` on the solar day around `ms`, or undefined if it does not happen then. */
export function sunEventNear(event: SunEvent, ms: number, loc: Location): number | undefined {
  const times = getTimes(new Date(ms), loc.latitude, loc.longitude);
  // suncalc 2 gives null for an event that does not happen that day (polar day or night).
  const t = times[SUN_EVENTS[event]]?.getTime();
  return t !== undefined && Number.isFinite(t) ? t : undefined;
}

/**
 * The first instant strictly after `after` at which `event` + `offsetMs` happens, looking up to a
 * year ahead (polar day and night), or undefined.
 */
export function nextSunEvent(event: SunEvent, offsetMs: number, after: number, loc: Location): number | undefined {
  // Days are scanned from before `after` so that a large negative offset on tomorrow's event, or a
  // large positive one on yesterday's, is not missed.
  const back = Math.ceil(Math.abs(offsetMs) / DAY_MS) + 1;
  let best: number | undefined;
  for (let d = -back; d <= 366; d++) {
    const t = sunEventNear(event, after + d * DAY_MS, loc);
    if (t !== undefined && t + offsetMs > after && (best === undefined || t + offsetMs < best)) best = t + offsetMs;
    // Events move by minutes per day: once one is found, a day or two more cannot hold an earlier one.
    if (best !== undefined && d > back + 1) break;
  }
  return best;
}

/**
 * The last instant at or before `atOrBefore` at which `event` + `offsetMs` happened, looking up to a
 * year back (polar day and night), or undefined. Used by the `sun` condition.
 */
export function prevSunEvent(event: SunEvent, offsetMs: number, atOrBefore: number, loc: Location): number | undefined {
  const ahead = Math.ceil(Math.abs(offsetMs) / DAY_MS) + 1;
  let best: number | undefined;
  for (let d = ahead; d >= -366; d--) {
    const t = sunEventNear(event, atOrBefore + d * DAY_MS, loc);
    if (t !== undefined && t + offsetMs <= atOrBefore && (best === undefined || t + offsetMs > best)) best = t + offsetMs;
    if (best !== undefined && d < -ahead - 1) break;
  }
  return best;
}

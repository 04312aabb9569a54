// Conditions, compiled once per rule into plain functions. Each check appends one line per test to
// the run's trace saying what it looked at and why it passed or failed; that trace is what the
// observability topics and `hub rules test` show. A condition that cannot be evaluated (an
// expression error) is false, says why in the trace, and is logged.
import type { Clock, Logger } from "../hub/contracts.js";
import { evaluate, type Scope, toNumber, toText, truthy } from "./evaluate.js";
import { parseExpression, type Value } from "./expressions.js";
import type { Condition } from "./schema.js";
import { type Location, nextSunEvent, prevSunEvent } from "./sun.js";
import { inWindow, WEEKDAY_NAMES, type Zone } from "./time.js";
import type { Cached } from "./triggers.js";
import { matchesValue, parsePath, valueAt } from "./values.js";

export type Vars = ReadonlyMap<string, Value>;

export interface EvalHost {
  clock: Clock;
  zone: Zone;
  log: Logger;
  cached(topic: string): Cached | undefined;
  /** For `sun` conditions; `hub check` refuses them without one. */
  location?: Location;
}

export type Check = (vars: Vars, trace: string[]) => boolean;

/** The Scope expressions see: the run's variables, the state cache and the clock. */
export function scopeOf(host: EvalHost, vars: Vars): Scope {
  return {
    vars,
    state: (topic) => host.cached(topic)?.value ?? null,
    since: (topic) => {
      const c = host.cached(topic);
      return c === undefined ? null : (host.clock.now() - c.at) / 1000;
    },
    now: () => host.clock.now(),
    local: () => host.zone.local(host.clock.now()),
  };
}

const show = (v: Value): string => (v === null ? "unknown" : JSON.stringify(v).length > 60 ? `${JSON.stringify(v).slice(0, 57)}...` : JSON.stringify(v));
const yes = (ok: boolean) => (ok ? "pass" : "FAIL");

function hms(s: number): string {
  const p = (n: number) => String(n).padStart(2, "0");
  return `${p(Math.floor(s / 3600))}:${p(Math.floor(s / 60) % 60)}${s % 60 === 0 ? "" : `:${p(s % 60)}`}`;
}

export function compileCondition(c: Condition, host: EvalHost, indent = ""): Check {
  switch (c.condition) {
    case "and":
    case "or":
    case "not": {
      const parts = c.conditions.map((x) => compileCondition(x, host, `${indent}  `));
      return (vars, trace) => {
        const at = trace.length;
        trace.push("");
        let ok: boolean;
        if (c.condition === "and") ok = parts.every((p) => p(vars, trace));
        else if (c.condition === "or") ok = parts.some((p) => p(vars, trace));
        else ok = !parts.some((p) => p(vars, trace));
        trace[at] = `${indent}${c.condition}: ${yes(ok)}`;
        return ok;
      };
    }
    case "state": {
      const path = c.value === undefined ? undefined : parsePath(c.value);
      return (_vars, trace) => {
        const e = host.cached(c.topic);
        const v = e === undefined ? null : path === undefined ? e.value : valueAt(e.value, path);
        let ok = e !== undefined && matchesValue(c.state, v);
        let why = `is ${show(v)}`;
        if (ok && c.for !== undefined) {
          const held = host.clock.now() - e!.changedAt;
          ok = held >= c.for;
          why += `, for ${Math.round(held / 1000)}s of ${c.for / 1000}s`;
        }
        trace.push(`${indent}state ${c.topic} = ${toText(c.state as Value)}: ${yes(ok)} (${why})`);
        return ok;
      };
    }
    case "numeric": {
      const path = c.value === undefined ? undefined : parsePath(c.value);
      const range = [c.above === undefined ? "" : `> ${c.above}`, c.below === undefined ? "" : `< ${c.below}`].filter((x) => x).join(" and ");
      return (_vars, trace) => {
        const e = host.cached(c.topic);
        const raw = e === undefined ? null : path === undefined ? e.value : valueAt(e.value, path);
        const n = toNumber(raw);
        const ok = n !== null && (c.above === undefined || n > c.above) && (c.below === undefined || n < c.below);
        trace.push(`${indent}numeric ${c.topic} ${range}: ${yes(ok)} (is ${show(raw)})`);
        return ok;
      };
    }
    case "time": {
      const w = { after: c.after, before: c.before, weekdays: c.weekdays };
      const desc = [c.after === undefined ? "" : `after ${hms(c.after)}`, c.before === undefined ? "" : `before ${hms(c.before)}`, c.weekdays ? `on ${c.weekdays.join(",")}` : ""]
        .filter((x) => x)
        .join(" ");
      return (_vars, trace) => {
        const l = host.zone.local(host.clock.now());
        const ok = inWindow(w, l);
        trace.push(`${indent}time ${desc}: ${yes(ok)} (it is ${WEEKDAY_NAMES[l.weekday]} ${hms(l.hour * 3600 + l.minute * 60 + l.second)} ${host.zone.name})`);
        return ok;
      };
    }
    case "sun":
      return sunCheck(c, host, indent);
    case "expression": {
      const e = parseExpression(c.expression);
      return (vars, trace) => {
        try {
          const v = evaluate(e, scopeOf(host, vars));
          const ok = truthy(v);
          trace.push(`${indent}${c.expression}: ${yes(ok)} (${show(v)})`);
          return ok;
        } catch (err) {
          const msg = err instanceof Error ? err.message : String(err);
          trace.push(`${indent}${c.expression}: FAIL (error: ${msg})`);
          host.log.warn("condition could not be evaluated", { expression: c.expression, error: msg });
          return false;
        }
      };
    }
  }
}

/**
 * `sun`: with after and before, true when the last `after` event is more recent than the last
 * `before` event (after: sunset, before: sunrise holds through the night, across midnight); after
 * alone: from the event to local midnight; before alone: from local midnight to the event. Instants,
 * so daylight saving does not enter; an event that does not happen (polar day or night) is never passed.
 */
function sunCheck(c: Extract<Condition, { condition: "sun" }>, host: EvalHost, indent: string): Check {
  const sameDay = (a: number, b: number) => {
    const x = host.zone.local(a);
    const y = host.zone.local(b);
    return x.year === y.year && x.month === y.month && x.day === y.day;
  };
  /** HH:MM, with the date (MM-DD) when not today. */
  const fmt = (ms: number | undefined, now = host.clock.now()) => {
    if (ms === undefined) return "none";
    const l = host.zone.local(ms);
    const p = (n: number) => String(n).padStart(2, "0");
    return `${sameDay(ms, now) ? "" : `${p(l.month)}-${p(l.day)} `}${hms(l.hour * 3600 + l.minute * 60)}`;
  };
  const off = (ms: number) => (ms === 0 ? "" : `${ms > 0 ? "+" : "-"}${hms(Math.round(Math.abs(ms) / 1000))}`);
  const desc = [c.after === undefined ? "" : `after ${c.after}${off(c.after_offset)}`, c.before === undefined ? "" : `before ${c.before}${off(c.before_offset)}`]
    .filter((x) => x)
    .join(" ");
  return (_vars, trace) => {
    const loc = host.location;
    const now = host.clock.now();
    if (loc === undefined) {
      trace.push(`${indent}sun ${desc}: FAIL (no location in the config)`);
      return false;
    }
    const lastAfter = c.after === undefined ? undefined : prevSunEvent(c.after, c.after_offset, now, loc);
    let ok: boolean;
    let why: string;
    if (c.after !== undefined && c.before !== undefined) {
      const lastBefore = prevSunEvent(c.before, c.before_offset, now, loc);
      ok = lastAfter !== undefined && (lastBefore === undefined || lastAfter > lastBefore);
      why = `last ${c.after} ${fmt(lastAfter)}, last ${c.before} ${fmt(lastBefore)}`;
    } else if (c.after !== undefined) {
      ok = lastAfter !== undefined && sameDay(lastAfter, now);
      why = `last ${c.after} ${fmt(lastAfter)}`;
    } else {
      const nextBefore = nextSunEvent(c.before!, c.before_offset, now, loc);
      ok = nextBefore !== undefined && sameDay(nextBefore, now);
      why = `next ${c.before} ${fmt(nextBefore)}`;
    }
    trace.push(`${indent}sun ${desc}: ${yes(ok)} (${why}; it is ${fmt(now)} ${host.zone.name})`);
    return ok;
  };
}

/** All of `conds` must hold (none: true). Stops at the first that fails. */
export function compileConditions(conds: readonly Condition[], host: EvalHost, indent = ""): Check {
  const parts = conds.map((c) => compileCondition(c, host, indent));
  return (vars, trace) => parts.every((p) => p(vars, trace));
}

// Triggers at run time: each kind is armed against a TriggerHost (the engine's topic index, state
// cache and clock) and calls `fire` with the `trigger` variable its rule's expressions see. Arming
// returns a Cancel that releases every listener and timer it took. The same code serves a rule's
// triggers and a `wait` action's.
import type { Cancel, Clock, Logger, Message } from "../hub/contracts.js";
import { type CronSchedule, nextCron, parseCron } from "./cron.js";
import { toNumber, toText } from "./evaluate.js";
import type { Value } from "./expressions.js";
import type { Trigger } from "./schema.js";
import { type Location, nextSunEvent } from "./sun.js";
import { type Zone, zone as makeZone } from "./time.js";
import { type DataPath, matchesValue, parsePath, valueAt } from "./values.js";

/** The last message seen on a topic. */
export interface Cached {
  text: string;
  value: Value;
  /** Wall-clock ms when a message last arrived. */
  at: number;
  /** Wall-clock ms when the text last changed (or first arrived). */
  changedAt: number;
}

/**
 * A message as triggers see it. `initial` marks a retained message delivered because a subscription
 * was just made: it tells what the value IS, not that it changed, so it fires nothing.
 */
export type Listener = (topic: string, entry: Cached, initial: boolean, m: Message) => void;

export interface TriggerHost {
  clock: Clock;
  zone: Zone;
  location: Location | undefined;
  log: Logger;
  listen(filter: string, fn: Listener): Cancel;
  cached(topic: string): Cached | undefined;
  /** False until the wall clock can be trusted (e.g. set by NTP after boot): schedules hold fire. */
  clockSynchronised(): boolean;
}

export type TriggerVars = { [k: string]: Value };
export type Fire = (trigger: TriggerVars) => void;

/**
 * Makes a rule trigger's pending `for` durable (rules/timers.ts). Not given for a `wait` action's
 * triggers: a paused run re-arms those afresh when it resumes.
 */
export interface ForKeeper {
  /** The `for` that was pending when the hub stopped (asked once, when the trigger is armed). */
  resume(): { vars: TriggerVars; due: number } | undefined;
  /** Records a pending `for` until it fires or is cancelled; the Cancel forgets it. */
  hold(vars: TriggerVars, due: number): Cancel;
}

/** A scheduled time noticed later than this (a jump of the wall clock, a suspend) is skipped, not fired. */
export const CATCH_UP_MS = 60_000;
/** Schedules re-check the wall clock at least this often, so a clock that jumps is noticed. */
const WAKE_MS = 60_000;

const pick = (path: DataPath | undefined, v: Value): Value => (path === undefined ? v : valueAt(v, path));

export function armTrigger(t: Trigger, index: number, host: TriggerHost, fire: Fire, keeper?: ForKeeper): Cancel {
  const id = t.id ?? String(index);
  switch (t.trigger) {
    case "mqtt": {
      const path = t.value === undefined ? undefined : parsePath(t.value);
      return host.listen(t.topic, (topic, entry, initial, m) => {
        if (initial) return;
        const value = pick(path, entry.value);
        if (t.payload !== undefined && !matchesValue(t.payload, value)) return;
        fire({ kind: "mqtt", id, topic, payload: entry.value, raw: entry.text, value, qos: m.qos, retain: m.retain });
      });
    }
    case "state":
      return armState(t, id, host, fire, keeper);
    case "numeric":
      return armNumeric(t, id, host, fire, keeper);
    case "cron": {
      const schedule = parseCron(t.cron);
      const z = t.time_zone === undefined ? host.zone : makeZone(t.time_zone);
      return armSchedule(host, `cron ${t.cron}`, (after) => nextCron(schedule as CronSchedule, after, z), (at) =>
        fire({ kind: "cron", id, cron: t.cron, time: at, scheduled: new Date(at).toISOString() }),
      );
    }
    case "sun": {
      const loc = host.location;
      if (loc === undefined) throw new Error("a sun trigger needs location: { latitude, longitude } in the config");
      return armSchedule(host, `sun ${t.event}`, (after) => nextSunEvent(t.event, t.offset, after, loc), (at) =>
        fire({ kind: "sun", id, event: t.event, offset_ms: t.offset, time: at, scheduled: new Date(at).toISOString() }),
      );
    }
    case "startup":
      // Fired by the engine once everything is armed and the retained values are in.
      return () => {};
  }
}

type StateTrigger = Extract<Trigger, { trigger: "state" }>;
type NumericTrigger = Extract<Trigger, { trigger: "numeric" }>;

/** Waits until wall-clock `due` (at once if it has passed), recorded by the keeper meanwhile. */
function forTimer(host: TriggerHost, keeper: ForKeeper | undefined, vars: TriggerVars, due: number, done: () => void): Cancel {
  const forget = keeper?.hold(vars, due);
  const timer = host.clock.after(Math.max(0, due - host.clock.now()), () => {
    forget?.();
    done();
  });
  return () => {
    timer();
    forget?.();
  };
}

function armState(t: StateTrigger, id: string, host: TriggerHost, fire: Fire, keeper?: ForKeeper): Cancel {
  const path = t.value === undefined ? undefined : parsePath(t.value);
  const start = host.cached(t.topic);
  let known = start !== undefined;
  let last: Value = start === undefined ? null : pick(path, start.value);
  let pending: Cancel | undefined;
  const wait = (vars: TriggerVars, due: number) => {
    pending = forTimer(host, keeper, vars, due, () => {
      pending = undefined;
      fire(vars);
    });
  };
  // A `for` pending when the hub stopped resumes, unless the value known now says it no longer holds.
  const saved = t.for === undefined ? undefined : keeper?.resume();
  let resumed = false;
  if (saved !== undefined && (start === undefined || toText(last) === toText(saved.vars.to ?? null))) {
    known = true;
    last = saved.vars.to ?? null;
    resumed = true;
    wait(saved.vars, saved.due);
  }
  const stopListening = host.listen(t.topic, (topic, entry, initial) => {
    const v = pick(path, entry.value);
    const wasKnown = known;
    const prev = last;
    known = true;
    last = v;
    const firstAfterResume = resumed;
    resumed = false;
    if (wasKnown && toText(prev) === toText(v)) return; // the same value again is not a change
    if (initial && !wasKnown) return; // the value at startup: a baseline
    pending?.();
    pending = undefined;
    // The value at startup differs from the one the resumed `for` waited on: it did not hold. A
    // baseline still, so it fires nothing.
    if (initial && firstAfterResume) return;
    if (t.from !== undefined && !(wasKnown && matchesValue(t.from, prev))) return;
    if (t.to !== undefined && !matchesValue(t.to, v)) return;
    const vars: TriggerVars = { kind: "state", id, topic, from: wasKnown ? prev : null, to: v, value: v, payload: entry.value, raw: entry.text };
    if (t.for === undefined) fire(vars);
    else {
      vars.for_ms = t.for;
      wait(vars, host.clock.now() + t.for);
    }
  });
  return () => {
    pending?.();
    stopListening();
  };
}

function armNumeric(t: NumericTrigger, id: string, host: TriggerHost, fire: Fire, keeper?: ForKeeper): Cancel {
  const path = t.value === undefined ? undefined : parsePath(t.value);
  const h = t.hysteresis;
  const enters = (n: number) => (t.above === undefined || n > t.above) && (t.below === undefined || n < t.below);
  // Once inside, the value must pass a limit by `hysteresis` to count as outside again.
  const stays = (n: number) => (t.above === undefined || n > t.above - h) && (t.below === undefined || n < t.below + h);
  const numberOf = (e: Cached) => toNumber(pick(path, e.value));
  const start = host.cached(t.topic);
  const n0 = start === undefined ? null : numberOf(start);
  let inside: boolean | undefined = start === undefined ? undefined : n0 !== null && enters(n0);
  let latest: { topic: string; payload: Value; raw: string; n: number } | undefined;
  let pending: Cancel | undefined;
  const vars = (): TriggerVars => {
    const l = latest!;
    const v: TriggerVars = { kind: "numeric", id, topic: l.topic, value: l.n, payload: l.payload, raw: l.raw };
    if (t.above !== undefined) v.above = t.above;
    if (t.below !== undefined) v.below = t.below;
    if (t.for !== undefined) v.for_ms = t.for;
    return v;
  };
  // Fires with the latest value when the time is up.
  const wait = (due: number) => {
    pending = forTimer(host, keeper, vars(), due, () => {
      pending = undefined;
      fire(vars());
    });
  };
  // A `for` pending when the hub stopped resumes as if the value were still inside; the value at
  // startup (if any) then decides, through the hysteresis, whether it still is.
  const saved = t.for === undefined ? undefined : keeper?.resume();
  const sv = saved?.vars;
  if (sv !== undefined && typeof sv.value === "number" && typeof sv.topic === "string" && (n0 === null ? start === undefined : stays(n0))) {
    inside = true;
    latest = { topic: sv.topic, payload: sv.payload ?? null, raw: typeof sv.raw === "string" ? sv.raw : String(sv.value), n: sv.value };
    wait(saved!.due);
  }
  const stopListening = host.listen(t.topic, (topic, entry, initial) => {
    const n = numberOf(entry);
    const was = inside;
    // Not a number (e.g. "unavailable") counts as outside the range.
    const now = n !== null && (was === true ? stays(n) : enters(n));
    inside = now;
    if (n !== null) latest = { topic, payload: entry.value, raw: entry.text, n };
    if (initial && was === undefined) return; // the value at startup: a baseline
    if (now && was !== true) {
      if (t.for === undefined) fire(vars());
      else wait(host.clock.now() + t.for);
    } else if (!now && was === true) {
      pending?.();
      pending = undefined;
    }
  });
  return () => {
    pending?.();
    stopListening();
  };
}

/**
 * Fires at the times `next` computes, by the wall clock. Policy (README, "Rules"): nothing fires
 * while the clock is not synchronised; a time noticed more than CATCH_UP_MS late (the clock jumped
 * forward, the machine was suspended) is skipped and logged, not fired; after the clock jumps back,
 * times already fired do not fire again.
 */
function armSchedule(host: TriggerHost, what: string, next: (after: number) => number | undefined, onTime: (at: number) => void): Cancel {
  const { clock } = host;
  let timer: Cancel | undefined;
  let stopped = false;
  let synced = host.clockSynchronised();
  /** Wall time up to which every scheduled time has been dealt with (fired or skipped). */
  let done = clock.now();
  let due = next(done);
  const arm = () => {
    if (stopped) return;
    if (due === undefined) {
      host.log.warn("schedule never fires", { schedule: what });
      return;
    }
    timer = clock.after(Math.max(0, Math.min(due - clock.now(), WAKE_MS)), wake);
  };
  function wake(): void {
    timer = undefined;
    const now = clock.now();
    const wasSynced = synced;
    synced = host.clockSynchronised();
    if (!synced || !wasSynced) {
      // Until the clock is trusted nothing fires; when it becomes trusted, start from its time.
      done = now;
      due = next(now);
    } else if (due !== undefined && now >= due) {
      if (now - due <= CATCH_UP_MS) onTime(due);
      else {
        let skipped = 0;
        for (let t: number | undefined = due; t !== undefined && t <= now && skipped < 1000; t = next(t)) skipped++;
        host.log.warn("the clock jumped forward: scheduled times skipped", { schedule: what, skipped, first: new Date(due).toISOString() });
      }
      done = Math.max(done, now);
      due = next(done);
    }
    // Otherwise not yet due. If the clock went back, `due` stays: times already fired do not repeat.
    arm();
  }
  arm();
  return () => {
    stopped = true;
    timer?.();
  };
}

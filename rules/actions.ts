// Actions, compiled once per rule into async steps that run against a Run: the run's variables
// (trigger, wait, repeat, rule), its trace, and the timers and waits it holds, so that cancelling a
// run (mode restart, the engine stopping) ends it at once wherever it is waiting. An action that
// throws ends its run only; the engine records the error.
import type { Bus, Cancel, Clock } from "../hub/contracts.js";
import { type Check, compileConditions, type EvalHost, scopeOf } from "./conditions.js";
import { formatNumber, render, renderText, type Scope, toText } from "./evaluate.js";
import { ExpressionError, parseTemplate, type Value } from "./expressions.js";
import type { Action, Trigger } from "./schema.js";
import type { Fire } from "./triggers.js";
import { validTopicName } from "./values.js";

export interface ActionHost extends EvalHost {
  bus: Bus;
  /** Base topic: `set` and `toggle` publish to <base>/<device>/set. */
  topicsBase: string;
  /** Arms a trigger for a `wait` action. */
  arm(t: Trigger, index: number, fire: Fire): Cancel;
  /**
   * Records that `run` is paused in a delay or wait until wall-clock `due` (undefined: a wait
   * without timeout), at `run.at`, so that it can resume after a restart; the Cancel forgets it.
   */
  hold?(run: Run, due: number | undefined): Cancel;
}

export interface Run {
  readonly rule: string;
  /** Wall-clock ms when the run started (before a restart, for a resumed one). */
  readonly started: number;
  readonly vars: Map<string, Value>;
  readonly trace: string[];
  cancelled: boolean;
  /** What the run is waiting on; cancelling the run calls each. */
  readonly pending: Set<Cancel>;
  /**
   * Where the run is in its actions: list indexes, `then`/`else`, a choice index or `default`, a
   * repeat round (rules/timers.ts saves it with a paused run).
   */
  readonly at: (number | string)[];
  /** Resuming after a restart: the rest of the saved position to descend, and the saved deadline. */
  resume?: { path: (number | string)[]; due: number | undefined };
}

/** The next step of the saved position of a resuming run (a malformed one ends the run). */
function resumeAt(run: Run, ok: (seg: number | string) => boolean): number | string {
  const seg = run.resume!.path.shift();
  if (seg === undefined || !ok(seg)) throw new Error(`cannot resume after the restart: no step at ${JSON.stringify(run.at.concat(seg ?? []))}`);
  return seg;
}

/** Runs `f` with `seg` pushed on the run's position. */
async function inside(run: Run, seg: number | string, f: () => Promise<void>): Promise<void> {
  run.at.push(seg);
  try {
    await f();
  } finally {
    run.at.pop();
  }
}

/** Actions a resuming run can descend into or continue at. */
const RESUMABLE = new Set(["delay", "wait", "if", "choose", "repeat"]);

/** Thrown by `stop` (and a `wait` that times out with continue_on_timeout: false). */
export class StopRun extends Error {
  readonly error: boolean;
  constructor(reason: string, error: boolean) {
    super(reason);
    this.name = "StopRun";
    this.error = error;
  }
}

/** Thrown inside a run that was cancelled. */
export class RunCancelled extends Error {
  constructor() {
    super("cancelled");
    this.name = "RunCancelled";
  }
}

export type Step = (run: Run) => Promise<void>;

/** A trace keeps at most this many lines, so a long loop cannot grow it without bound. */
export const MAX_TRACE = 200;

export function note(run: Run, line: string): void {
  if (run.trace.length < MAX_TRACE) run.trace.push(line);
  else if (run.trace.length === MAX_TRACE) run.trace.push("... (trace truncated)");
}

/** Waits `ms` by the injected clock, or rejects with RunCancelled if the run is cancelled first. */
export function sleep(run: Run, clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const cancel = () => {
      timer();
      reject(new RunCancelled());
    };
    const timer = clock.after(ms, () => {
      run.pending.delete(cancel);
      resolve();
    });
    run.pending.add(cancel);
  });
}

const ms = (n: number) => (n % 1000 === 0 ? `${n / 1000}s` : `${n}ms`);

type Payload = (scope: Scope) => string;

/** Compiles data whose strings are templates; a string that is one {{ }} keeps its type (a number stays one). */
function compileData(v: unknown): (scope: Scope) => Value {
  if (typeof v === "string") {
    const t = parseTemplate(v);
    return (s) => render(t, s);
  }
  if (Array.isArray(v)) {
    const items = v.map(compileData);
    return (s) => items.map((f) => f(s));
  }
  if (typeof v === "object" && v !== null) {
    const entries = Object.entries(v).map(([k, x]) => [k, compileData(x)] as const);
    // fromEntries defines properties, so a key named __proto__ is just a key.
    return (s) => Object.fromEntries(entries.map(([k, f]) => [k, f(s)]));
  }
  const c = (v ?? null) as Value;
  return () => c;
}

function compilePayload(p: unknown): Payload {
  if (typeof p === "string") {
    const t = parseTemplate(p);
    return (s) => renderText(t, s);
  }
  if (typeof p === "number") return () => formatNumber(p);
  if (typeof p === "boolean" || p === null || p === undefined) return () => toText((p ?? null) as Value);
  const f = compileData(p);
  return (s) => JSON.stringify(f(s));
}

/** Runs `f`; an expression error says which field it came from ("publish payload: division by zero at column 7"). */
function explain<T>(field: string, f: () => T): T {
  try {
    return f();
  } catch (err) {
    if (err instanceof ExpressionError) throw new ExpressionError(`${field}: ${err.message}`);
    throw err;
  }
}

const short = (s: string) => JSON.stringify(s.length > 80 ? `${s.slice(0, 77)}...` : s);

export function compileActions(actions: readonly Action[], host: ActionHost, indent = ""): Step {
  const steps = actions.map((a) => compileAction(a, host, indent));
  return async (run) => {
    const from = run.resume === undefined ? 0 : (resumeAt(run, (i) => typeof i === "number" && RESUMABLE.has(actions[i]?.action ?? "")) as number);
    for (let i = from; i < steps.length; i++) {
      if (run.cancelled) throw new RunCancelled();
      await inside(run, i, () => steps[i]!(run));
    }
  };
}

/** The deadline of a delay or wait: saved (resuming) or `ms` from now; and the position it is at. */
function deadline(run: Run, host: ActionHost, ms: number | undefined): { due: number | undefined; resumed: boolean } {
  const r = run.resume;
  if (r === undefined) return { due: ms === undefined ? undefined : host.clock.now() + ms, resumed: false };
  if (r.path.length > 0) throw new Error(`cannot resume after the restart: no step at ${JSON.stringify(run.at.concat(r.path))}`);
  run.resume = undefined;
  return { due: ms === undefined ? undefined : (r.due ?? host.clock.now()), resumed: true };
}

function publishStep(host: ActionHost, indent: string, topicOf: (s: Scope) => string, payload: Payload, qos: 0 | 1 | 2, retain: boolean, what: string): Step {
  return async (run) => {
    const scope = scopeOf(host, run.vars);
    const topic = explain(`${what} topic`, () => topicOf(scope));
    if (!validTopicName(topic)) throw new Error(`${what}: ${JSON.stringify(topic)} is not a topic to publish to`);
    const text = explain(`${what} payload`, () => payload(scope));
    note(run, `${indent}${what} ${topic} ${short(text)}`);
    await host.bus.publish({ topic, payload: Buffer.from(text), qos, retain });
  };
}

function compileAction(a: Action, host: ActionHost, indent: string): Step {
  const inner = `${indent}  `;
  switch (a.action) {
    case "publish": {
      const t = parseTemplate(a.topic);
      return publishStep(host, indent, (s) => renderText(t, s), compilePayload(a.payload), a.qos, a.retain, "publish");
    }
    case "set": {
      const topic = `${host.topicsBase}/${a.device}/set`;
      return publishStep(host, indent, () => topic, compilePayload(a.payload), 1, false, "set");
    }
    case "toggle": {
      const topic = `${host.topicsBase}/${a.device}/set`;
      return publishStep(host, indent, () => topic, () => "TOGGLE", 1, false, "toggle");
    }
    case "delay":
      return async (run) => {
        const { due, resumed } = deadline(run, host, a.duration);
        const left = Math.max(0, due! - host.clock.now());
        note(run, resumed ? `${indent}delay ${ms(a.duration)} (resumed after a restart, ${ms(left)} left)` : `${indent}delay ${ms(a.duration)}`);
        const forget = host.hold?.(run, due);
        try {
          await sleep(run, host.clock, left);
        } finally {
          forget?.();
        }
      };
    case "log": {
      const t = parseTemplate(a.message);
      return async (run) => {
        const text = explain("log message", () => renderText(t, scopeOf(host, run.vars)));
        note(run, `${indent}log ${a.level} ${short(text)}`);
        host.log[a.level](text, { rule: run.rule });
      };
    }
    case "stop":
      return async (run) => {
        note(run, `${indent}stop${a.reason === undefined ? "" : ` (${a.reason})`}`);
        throw new StopRun(a.reason ?? "stop action", a.error);
      };
    case "wait":
      return waitStep(a, host, indent);
    case "if": {
      const test = compileConditions(a.if, host, inner);
      const then = compileActions(a.then, host, inner);
      const otherwise = a.else === undefined ? undefined : compileActions(a.else, host, inner);
      return async (run) => {
        let branch: number | string;
        if (run.resume !== undefined) branch = resumeAt(run, (b) => b === "then" || (b === "else" && otherwise !== undefined));
        else {
          note(run, `${indent}if:`);
          branch = test(run.vars, run.trace) ? "then" : "else";
        }
        if (branch === "then") {
          note(run, `${indent}then:`);
          await inside(run, "then", () => then(run));
        } else if (otherwise !== undefined) {
          note(run, `${indent}else:`);
          await inside(run, "else", () => otherwise(run));
        }
      };
    }
    case "choose": {
      const choices = a.choices.map((c) => ({ test: compileConditions(c.conditions, host, inner), body: compileActions(c.actions, host, inner) }));
      const fallback = a.default === undefined ? undefined : compileActions(a.default, host, inner);
      return async (run) => {
        if (run.resume !== undefined) {
          const c = resumeAt(run, (c) => (c === "default" && fallback !== undefined) || (typeof c === "number" && c < choices.length));
          note(run, `${indent}${c === "default" ? "default" : `choice ${(c as number) + 1}`}: (resumed)`);
          await inside(run, c, () => (c === "default" ? fallback! : choices[c as number]!.body)(run));
          return;
        }
        for (let i = 0; i < choices.length; i++) {
          note(run, `${indent}choice ${i + 1}:`);
          if (choices[i]!.test(run.vars, run.trace)) {
            await inside(run, i, () => choices[i]!.body(run));
            return;
          }
        }
        if (fallback !== undefined) {
          note(run, `${indent}default:`);
          await inside(run, "default", () => fallback(run));
        }
      };
    }
    case "repeat":
      return repeatStep(a, host, indent);
  }
}

function repeatStep(a: Extract<Action, { action: "repeat" }>, host: ActionHost, indent: string): Step {
  const inner = `${indent}  `;
  const body = compileActions(a.actions, host, inner);
  const whileOk: Check | undefined = a.while === undefined ? undefined : compileConditions(a.while, host, inner);
  const untilOk: Check | undefined = a.until === undefined ? undefined : compileConditions(a.until, host, inner);
  const limit = a.count ?? a.max;
  return async (run) => {
    const outer = run.vars.get("repeat");
    // Resuming: continue in the saved round, whose `while` was already checked before the restart.
    let resuming = run.resume !== undefined;
    const first = resuming ? (resumeAt(run, (r) => typeof r === "number" && r >= 1 && r <= limit) as number) : 1;
    try {
      for (let i = first; ; i++) {
        if (a.count !== undefined && i > a.count) break;
        if (!resuming && whileOk !== undefined && !whileOk(run.vars, run.trace)) break;
        if (i > limit) throw new Error(`repeat: more than ${limit} rounds (raise max if that is intended)`);
        note(run, `${indent}repeat ${i}:${resuming ? " (resumed)" : ""}`);
        resuming = false;
        run.vars.set("repeat", { index: i, first: i === 1, ...(a.count === undefined ? {} : { last: i === a.count }) });
        await inside(run, i, () => body(run));
        if (untilOk?.(run.vars, run.trace)) break;
      }
    } finally {
      if (outer === undefined) run.vars.delete("repeat");
      else run.vars.set("repeat", outer);
    }
  };
}

function waitStep(a: Extract<Action, { action: "wait" }>, host: ActionHost, indent: string): Step {
  return async (run) => {
    const { due, resumed } = deadline(run, host, a.timeout);
    const what = `${indent}wait for ${a.triggers.map((t) => t.trigger).join(" or ")}${a.timeout === undefined ? "" : ` (timeout ${ms(a.timeout)})`}`;
    note(run, resumed ? `${what} (resumed after a restart${due === undefined ? "" : `, ${ms(Math.max(0, due - host.clock.now()))} left`})` : what);
    const forget = host.hold?.(run, due);
    const fired = await new Promise<Value>((resolve, reject) => {
      let done = false;
      const holds: Cancel[] = forget === undefined ? [] : [forget];
      const release = () => {
        done = true;
        run.pending.delete(cancel);
        for (const h of holds) h();
      };
      const finish = (v: Value) => {
        if (done) return;
        release();
        resolve(v);
      };
      const cancel = () => {
        if (done) return;
        release();
        reject(new RunCancelled());
      };
      run.pending.add(cancel);
      try {
        for (let i = 0; i < a.triggers.length; i++) holds.push(host.arm(a.triggers[i]!, i, (tv) => finish(tv)));
        if (done) for (const h of holds) h(); // fired while arming: release what was armed after it
      } catch (err) {
        release();
        reject(err);
        return;
      }
      if (due !== undefined) holds.push(host.clock.after(Math.max(0, due - host.clock.now()), () => finish(null)));
    });
    const timedOut = fired === null;
    run.vars.set("wait", { trigger: fired, timed_out: timedOut });
    note(run, `${indent}  ${timedOut ? "timed out" : `fired: ${short(toText(fired))}`}`);
    if (timedOut && !a.continue_on_timeout) throw new StopRun("wait timed out", false);
  };
}

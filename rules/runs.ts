// Runs of a rule: what a trigger firing does (conditions, then a run according to the rule's mode:
// single / restart / queued / parallel with max), how a run ends (ok, stopped, error, cancelled; its
// status, log line and trace), and stopping a rule with everything it has going. A failing action
// ends that run only (issue "rules engine", item 8).
import type { Cancel, Clock, Logger } from "../hub/contracts.js";
import { RunCancelled, type Run, type Step, StopRun } from "./actions.js";
import type { Check } from "./conditions.js";
import { describeTrigger } from "./describe.js";
import type { Value } from "./expressions.js";
import type { Rule } from "./schema.js";
import type { RunResult, StatusKeeper } from "./status.js";
import type { SavedRun } from "./timers.js";
import type { TriggerVars } from "./triggers.js";

/** A rule in force: compiled once, with its armed triggers, runs and status. */
export interface RuleRuntime {
  rule: Rule;
  /** Hash of the rule's text: saved timers resume only into the same rule. */
  version: string;
  check: Check;
  body: Step;
  armed: Cancel[];
  active: Map<Run, Promise<void>>;
  /** Runs waiting for the running one (mode queued): conditions already held; `release` forgets the saved copy. */
  queue: QueuedRun[];
  status: StatusKeeper;
  storm: { since: number; count: number };
}

export interface QueuedRun {
  vars: Map<string, Value>;
  trace: string[];
  release: () => void;
}

export interface RunnerDeps {
  clock: Clock;
  log: Logger;
  /** False before start and after stop: a trigger firing then starts nothing. */
  accepting(): boolean;
  /** Called instead while not accepting: the engine keeps what fires while it is still starting. */
  defer(f: () => void): void;
  onRun?: (report: { rule: string; result: RunResult; trace: readonly string[]; at: number }) => void;
  /** Saves a run put in the queue (rules/timers.ts) until it starts or is dropped; the Cancel forgets it. */
  holdQueued?: (rt: RuleRuntime, vars: Map<string, Value>, firedAt: number) => () => void;
}

export interface Runner {
  /** A trigger of `rt` fired: check its conditions and run it as its mode says. */
  fire(rt: RuleRuntime, tv: TriggerVars): void;
  /** Starts a run now (a resumed one continues at `resume`'s position). */
  start(rt: RuleRuntime, vars: Map<string, Value>, trace: string[], resume?: SavedRun): void;
  /** The rule a run belongs to. */
  owner(run: Run): RuleRuntime | undefined;
  /** A run that was queued before a restart: behind the rule's running one, else started now. */
  requeue(rt: RuleRuntime, vars: Map<string, Value>, trace: string[], firedAt: number): void;
}

/** More trigger firings than this in one second, for one rule, are dropped (a rule feeding itself). */
const STORM_PER_SECOND = 500;

function cancelRun(run: Run): void {
  run.cancelled = true;
  for (const c of [...run.pending]) c();
}

/** Stops a rule: its triggers, its queue and its runs (cancelled where they wait); resolves as they end. */
export function retire(rt: RuleRuntime): Promise<void>[] {
  for (const c of rt.armed) c();
  rt.armed = [];
  // Released: a changed or removed rule's queued runs are not resumed. At stop the engine has frozen
  // the timer book first, so they stay saved.
  for (const q of rt.queue) q.release();
  rt.queue = [];
  rt.status.close();
  const ending = [...rt.active.values()];
  for (const run of rt.active.keys()) cancelRun(run);
  return ending;
}

export function createRunner(deps: RunnerDeps): Runner {
  const { clock, log } = deps;
  const owners = new WeakMap<Run, RuleRuntime>();

  const finish = (rt: RuleRuntime, trace: string[], result: RunResult, started: number, error?: string) => {
    const now = clock.now();
    const s = rt.status;
    s.running = rt.active.size;
    s.queued = rt.queue.length;
    s.ran(started, now, result, trace, error);
    const fields = { rule: rt.rule.id, result, ms: now - started };
    if (result === "error") log.warn("rule failed", { ...fields, error });
    else if (result === "conditions_failed" || result === "cancelled") log.debug("rule did not run to the end", fields);
    else log.info("rule ran", fields);
    deps.onRun?.({ rule: rt.rule.id, result, trace, at: now });
  };

  /**
   * Runs a run's actions to the end and does its bookkeeping. One async function rather than a
   * .then/.finally/.catch chain: a run costs one promise instead of four (the rules bench: fewer
   * short-lived objects promoted by the hub's 1 MB young generation, fewer old-space collections).
   */
  const execute = async (rt: RuleRuntime, run: Run, trace: string[], started: number): Promise<void> => {
    let failed = false;
    let failure: unknown;
    try {
      await rt.body(run);
    } catch (err) {
      failed = true;
      failure = err;
    }
    try {
      try {
        if (!failed) finish(rt, trace, "ok", started);
        else if (failure instanceof RunCancelled) {
          trace.push("cancelled");
          finish(rt, trace, "cancelled", started);
        } else if (failure instanceof StopRun) finish(rt, trace, failure.error ? "error" : "stopped", started, failure.error ? failure.message : undefined);
        else {
          const message = failure instanceof Error ? failure.message : String(failure);
          trace.push(`error: ${message}`);
          finish(rt, trace, "error", started, message);
        }
      } finally {
        rt.active.delete(run);
        rt.status.running = rt.active.size;
        const next = rt.rule.mode === "queued" && deps.accepting() ? rt.queue.shift() : undefined;
        if (next !== undefined) {
          next.release();
          start(rt, next.vars, next.trace);
        }
      }
    } catch (err) {
      // A fault in the engine's own bookkeeping stays in the rules part (DESIGN.md §7).
      log.error("rule run bookkeeping failed", { rule: rt.rule.id, error: err });
    }
  };

  const start = (rt: RuleRuntime, vars: Map<string, Value>, trace: string[], resume?: SavedRun) => {
    const started = clock.now();
    const run: Run = { rule: rt.rule.id, vars, trace, cancelled: false, pending: new Set(), at: [], started: resume?.started ?? started };
    if (resume !== undefined) run.resume = { path: [...resume.path], due: resume.due };
    owners.set(run, rt);
    rt.status.runs++;
    const p = execute(rt, run, trace, started);
    rt.active.set(run, p);
    rt.status.running = rt.active.size;
  };

  const refuse = (rt: RuleRuntime, why: string) => {
    rt.status.dropped++;
    log.warn("trigger dropped", { rule: rt.rule.id, mode: rt.rule.mode, why });
  };

  const fired = (rt: RuleRuntime, tv: TriggerVars) => {
    if (!deps.accepting()) {
      deps.defer(() => fire(rt, tv));
      return;
    }
    const now = clock.now();
    rt.status.triggered(now, tv);
    const trace = [describeTrigger(tv)];
    const vars = new Map<string, Value>([
      ["trigger", tv],
      ["rule", { id: rt.rule.id, description: rt.rule.description ?? "" }],
    ]);
    if (!rt.check(vars, trace)) {
      trace.push("conditions not met: actions not run");
      finish(rt, trace, "conditions_failed", now);
      return;
    }
    // Counted once the conditions hold: a busy topic is fine, a rule feeding itself is not.
    const mono = clock.monotonic();
    if (mono - rt.storm.since >= 1000) rt.storm = { since: mono, count: 0 };
    if (++rt.storm.count > STORM_PER_SECOND) {
      if (rt.storm.count === STORM_PER_SECOND + 1) refuse(rt, `more than ${STORM_PER_SECOND} runs in a second`);
      return;
    }
    const { mode, max } = rt.rule;
    if (rt.active.size > 0) {
      if (mode === "single") return refuse(rt, "already running (mode single)");
      if (mode === "restart") for (const run of rt.active.keys()) cancelRun(run);
      if (mode === "queued") {
        if (rt.queue.length >= max) return refuse(rt, `queue full (max ${max})`);
        rt.queue.push({ vars, trace, release: deps.holdQueued?.(rt, vars, now) ?? (() => {}) });
        rt.status.queued = rt.queue.length;
        return;
      }
      if (mode === "parallel" && rt.active.size >= max) return refuse(rt, `${max} runs already (max)`);
    }
    start(rt, vars, trace);
  };

  const fire = (rt: RuleRuntime, tv: TriggerVars) => {
    try {
      fired(rt, tv);
    } catch (err) {
      log.error("rule trigger failed", { rule: rt.rule.id, error: err });
    }
  };

  const requeue = (rt: RuleRuntime, vars: Map<string, Value>, trace: string[], firedAt: number) => {
    if (rt.active.size === 0) return start(rt, vars, trace);
    rt.queue.push({ vars, trace, release: deps.holdQueued?.(rt, vars, firedAt) ?? (() => {}) });
    rt.status.queued = rt.queue.length;
  };

  return { fire, start, owner: (run) => owners.get(run), requeue };
}

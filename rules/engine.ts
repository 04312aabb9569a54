// The rules engine, a Service: arms every enabled rule's triggers, keeps the last value of every topic
// a rule reads (retained ones included), runs the actions of a rule whose conditions hold according
// to its mode, and reports each rule's last trigger, run, error and trace under
// <base>/rules/<id>/ and in the log.
//
// Topic index: one bus subscription per distinct filter, each with the set of triggers listening on
// it, so the broker's subscription tree delivers a message only to the rules whose filters match it.
// Pending `for` timers and paused runs are kept in a TimerStore (rules/timers.ts) and resumed at
// start; reloads (SIGHUP, a watched rules file changing) run one at a time.
import type { Bus, Cancel, Clock, Logger, Message, Service } from "../hub/contracts.js";
import { type ActionHost, compileActions, RunCancelled, type Run, type Step, StopRun } from "./actions.js";
import { type Check, compileConditions } from "./conditions.js";
import { describeTrigger, readTopics, stableText } from "./describe.js";
import type { Value } from "./expressions.js";
import { formatRuleProblems, type RulesLoad } from "./load.js";
import type { Rule, Trigger } from "./schema.js";
import type { Location } from "./sun.js";
import { type RuleStatus, type RunResult, type StatusKeeper, statusKeeper } from "./status.js";
import { systemTimeZone, zone as makeZone } from "./time.js";
import { type SavedFor, type SavedRun, type SavedTimer, type TimerStore, ruleVersion, timerBook } from "./timers.js";
import { armTrigger, type Cached, type ForKeeper, type Listener, type TriggerHost, type TriggerVars } from "./triggers.js";
import { payloadValue } from "./values.js";

export interface RulesEngineDeps {
  rules: readonly Rule[];
  bus: Bus;
  clock: Clock;
  log: Logger;
  /** Base topic: status goes to <base>/rules/<id>/..., set/toggle to <base>/<device>/set. */
  topicsBase: string;
  location?: Location;
  /** IANA zone for cron triggers and time conditions; default: the system's. */
  timeZone?: string;
  /** False while the wall clock is not yet trusted; default: it reads 2020 or later. */
  clockSynchronised?: () => boolean;
  /**
   * Reads more rules (a rules directory) at start and on reload(). At start a problem is fatal; on
   * reload the old rules keep running and the problems are logged.
   */
  loadRules?: () => RulesLoad;
  /** Called after each evaluation (for `hub rules test`): the rule, its result and its trace. */
  onRun?: (report: { rule: string; result: RunResult; trace: readonly string[]; at: number }) => void;
  /** Publish status topics (default true). */
  publishStatus?: boolean;
  /**
   * Keeps pending `for` timers and paused runs across restarts (rules/timers.ts); without it they
   * live in memory only.
   */
  timers?: TimerStore;
  /** Changes to the pending timers are saved this long after the first one (a burst: one write). Default 1 s. */
  saveDelayMs?: number;
  /**
   * Watches the rules files (from start to stop): `changed` is called on any change; the engine
   * reloads once they have been quiet for `reloadDelayMs` (an editor's save is several events).
   */
  watchRules?: (changed: () => void) => Cancel;
  /** Default 500 ms. */
  reloadDelayMs?: number;
}

export type { RuleStatus, RunResult } from "./status.js";

export interface RulesEngine extends Service {
  status(id: string): RuleStatus | undefined;
}

interface RuleRuntime {
  rule: Rule;
  /** Hash of the rule's text: saved timers resume only into the same rule. */
  version: string;
  check: Check;
  body: Step;
  armed: Cancel[];
  active: Map<Run, Promise<void>>;
  queue: { vars: Map<string, Value>; trace: string[] }[];
  status: StatusKeeper;
  storm: { since: number; count: number };
}

interface FilterEntry {
  listeners: Set<Listener>;
  /** Kept for the state cache even without listeners. */
  pinned: boolean;
  /** The subscription is in place; until then a retained message is a startup value. */
  ready: boolean;
  dead: boolean;
  unsubscribe?: Cancel;
}

/** More trigger firings than this in one second, for one rule, are dropped (a rule feeding itself). */
const STORM_PER_SECOND = 500;
const SYNCED_AFTER = Date.UTC(2020, 0, 1);
const SAVE_DELAY_MS = 1000;
const RELOAD_DELAY_MS = 500;

export function createRulesEngine(deps: RulesEngineDeps): RulesEngine {
  const { bus, clock, log, topicsBase } = deps;
  const zone = makeZone(deps.timeZone ?? systemTimeZone());
  const cache = new Map<string, Cached>();
  const index = new Map<string, FilterEntry>();
  const subscribing = new Set<Promise<void>>();
  const publishStatus = deps.publishStatus ?? true;
  let accepting = false;
  /** While start() runs: triggers that fire (a resumed `for` already due) wait for it to finish. */
  let starting = false;
  let deferred: (() => void)[] = [];

  // ---- durable timers (rules/timers.ts) ----
  const book = timerBook(deps.timers, clock, log, deps.saveDelayMs ?? SAVE_DELAY_MS);
  const remember = book.remember;
  /** `for` timers saved at the last stop, by `<rule>#<trigger>`, until their triggers are armed. */
  let savedFor = new Map<string, SavedFor>();
  const keeps = (rt: RuleRuntime) => book.enabled && rt.rule.on_restart === "resume";
  const runOwner = new WeakMap<Run, RuleRuntime>();

  // ---- reload: SIGHUP and file changes, one at a time ----
  let reloading: Promise<void> = Promise.resolve();
  let unwatch: Cancel | undefined;
  let quiet: Cancel | undefined;
  const fileChanged = () => {
    quiet?.();
    quiet = clock.after(deps.reloadDelayMs ?? RELOAD_DELAY_MS, () => {
      quiet = undefined;
      log.info("a rules file changed: reloading");
      void engine.reload!();
    });
  };

  const onMessage = (e: FilterEntry, m: Message): void => {
    const topic = m.topic;
    const text = m.payload.toString("utf8");
    const now = clock.now();
    let c = cache.get(topic);
    if (c === undefined || c.text !== text) {
      c = { text, value: payloadValue(text), at: now, changedAt: now };
      cache.set(topic, c);
    } else c.at = now;
    const initial = !e.ready && m.retain;
    for (const l of e.listeners) {
      try {
        l(topic, c, initial, m);
      } catch (err) {
        log.error("trigger failed", { topic, error: err });
      }
    }
  };

  const entryFor = (filter: string): FilterEntry => {
    let e = index.get(filter);
    if (e !== undefined) return e;
    const entry: FilterEntry = { listeners: new Set(), pinned: false, ready: false, dead: false };
    index.set(filter, entry);
    const p = bus
      .subscribe(filter, (m) => onMessage(entry, m), { qos: 1 })
      .then(
        (cancel) => {
          if (entry.dead) cancel();
          else {
            entry.unsubscribe = cancel;
            entry.ready = true;
          }
        },
        (err) => log.error("cannot subscribe", { filter, error: err }),
      )
      .finally(() => subscribing.delete(p));
    subscribing.add(p);
    e = entry;
    return e;
  };

  const drop = (filter: string, e: FilterEntry) => {
    e.dead = true;
    e.unsubscribe?.();
    if (index.get(filter) === e) index.delete(filter);
  };

  const host: ActionHost & TriggerHost = {
    clock,
    zone,
    log,
    bus,
    topicsBase,
    location: deps.location,
    cached: (topic) => cache.get(topic),
    clockSynchronised: deps.clockSynchronised ?? (() => clock.now() >= SYNCED_AFTER),
    listen(filter, fn) {
      const e = entryFor(filter);
      e.listeners.add(fn);
      return () => {
        e.listeners.delete(fn);
        if (e.listeners.size === 0 && !e.pinned && !e.dead) drop(filter, e);
      };
    },
    arm: (t: Trigger, i: number, fire) => armTrigger(t, i, host, fire),
    hold(run, due) {
      const rt = runOwner.get(run);
      if (rt === undefined || !keeps(rt)) return () => {};
      const vars = Object.fromEntries(run.vars) as SavedRun["vars"];
      return remember({ kind: "run", rule: rt.rule.id, version: rt.version, path: [...run.at], vars, due, started: run.started });
    },
  };

  const compile = (rule: Rule, text = stableText(rule)): RuleRuntime => ({
    rule,
    version: ruleVersion(text),
    check: compileConditions(rule.conditions, host),
    body: compileActions(rule.actions, host),
    armed: [],
    active: new Map(),
    queue: [],
    status: statusKeeper(rule.id, rule.enabled, { bus, clock, log, topic: `${topicsBase}/rules/${rule.id}`, publish: publishStatus }),
    storm: { since: Number.NEGATIVE_INFINITY, count: 0 },
  });
  /** The rules in force, by id, with the stable text of each (to tell an unchanged one on reload). */
  let byId = new Map<string, { rt: RuleRuntime; text: string }>();
  for (const rule of deps.rules) byId.set(rule.id, { rt: compile(rule), text: stableText(rule) });

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

  const cancelRun = (run: Run) => {
    run.cancelled = true;
    for (const c of [...run.pending]) c();
  };

  const start = (rt: RuleRuntime, vars: Map<string, Value>, trace: string[], resume?: SavedRun) => {
    const started = clock.now();
    const run: Run = { rule: rt.rule.id, vars, trace, cancelled: false, pending: new Set(), at: [], started: resume?.started ?? started };
    if (resume !== undefined) run.resume = { path: [...resume.path], due: resume.due };
    runOwner.set(run, rt);
    rt.status.runs++;
    const p = rt
      .body(run)
      .then(
        () => finish(rt, trace, "ok", started),
        (err: unknown) => {
          if (err instanceof RunCancelled) {
            trace.push("cancelled");
            finish(rt, trace, "cancelled", started);
          } else if (err instanceof StopRun) finish(rt, trace, err.error ? "error" : "stopped", started, err.error ? err.message : undefined);
          else {
            const message = err instanceof Error ? err.message : String(err);
            trace.push(`error: ${message}`);
            finish(rt, trace, "error", started, message);
          }
        },
      )
      .finally(() => {
        rt.active.delete(run);
        rt.status.running = rt.active.size;
        const next = rt.rule.mode === "queued" && accepting ? rt.queue.shift() : undefined;
        if (next !== undefined) start(rt, next.vars, next.trace);
      })
      // A fault in the engine's own bookkeeping stays in the rules part (DESIGN.md §7).
      .catch((err: unknown) => log.error("rule run bookkeeping failed", { rule: rt.rule.id, error: err }));
    rt.active.set(run, p);
    rt.status.running = rt.active.size;
  };

  const refuse = (rt: RuleRuntime, why: string) => {
    rt.status.dropped++;
    log.warn("trigger dropped", { rule: rt.rule.id, mode: rt.rule.mode, why });
  };

  const onFire = (rt: RuleRuntime, tv: TriggerVars) => {
    try {
      fired(rt, tv);
    } catch (err) {
      log.error("rule trigger failed", { rule: rt.rule.id, error: err });
    }
  };

  const fired = (rt: RuleRuntime, tv: TriggerVars) => {
    if (!accepting) {
      if (starting) deferred.push(() => onFire(rt, tv));
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
        rt.queue.push({ vars, trace });
        rt.status.queued = rt.queue.length;
        return;
      }
      if (mode === "parallel" && rt.active.size >= max) return refuse(rt, `${max} runs already (max)`);
    }
    start(rt, vars, trace);
  };

  /** Saves a rule trigger's pending `for`, and hands it the one saved at the last stop. */
  const keeperFor = (rt: RuleRuntime, i: number): ForKeeper | undefined => {
    if (!keeps(rt)) return undefined;
    const key = `${rt.rule.id}#${i}`;
    return {
      resume() {
        const s = savedFor.get(key);
        if (s === undefined || s.version !== rt.version) return undefined;
        savedFor.delete(key);
        log.info("resuming a pending `for` after the restart", { rule: rt.rule.id, trigger: i, due: new Date(s.due).toISOString() });
        return { vars: s.vars, due: s.due };
      },
      hold: (vars, due) => remember({ kind: "for", rule: rt.rule.id, version: rt.version, trigger: i, vars, due }),
    };
  };

  const arm = (rt: RuleRuntime) => {
    rt.rule.triggers.forEach((t, i) => {
      try {
        rt.armed.push(armTrigger(t, i, host, (tv) => onFire(rt, tv), keeperFor(rt, i)));
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        rt.status.failed(clock.now(), message);
        log.error("trigger cannot run", { rule: rt.rule.id, trigger: i, error: message });
      }
    });
  };

  /** Stops a rule: its triggers, its queue and its runs (cancelled where they wait). */
  const retire = (rt: RuleRuntime): Promise<void>[] => {
    for (const c of rt.armed) c();
    rt.armed = [];
    rt.queue = [];
    rt.status.close();
    const ending = [...rt.active.values()];
    for (const run of rt.active.keys()) cancelRun(run);
    return ending;
  };

  /** Subscribes to the topics the rules read; unpins those no longer read. */
  const pinReadTopics = async () => {
    const reads = readTopics([...byId.values()].map((x) => x.rt.rule));
    const want = new Set(reads.dynamic ? ["#"] : reads.topics);
    for (const [filter, e] of [...index]) {
      if (e.pinned && !want.has(filter)) {
        e.pinned = false;
        if (e.listeners.size === 0) drop(filter, e);
      }
    }
    for (const topic of want) entryFor(topic).pinned = true;
    while (subscribing.size > 0) await Promise.all([...subscribing]);
  };

  const fireStartup = (rts: RuleRuntime[]) => {
    for (const rt of rts) {
      rt.rule.triggers.forEach((t, i) => {
        if (t.trigger === "startup") onFire(rt, { kind: "startup", id: t.id ?? String(i) });
      });
    }
  };

  /** Why a saved timer does not resume into the rules now in force, or undefined if it does. */
  const unfit = (t: SavedTimer): string | undefined => {
    const rt = byId.get(t.rule)?.rt;
    if (rt === undefined) return "the rule is gone";
    if (rt.version !== t.version) return "the rule changed";
    if (!rt.rule.enabled) return "the rule is disabled";
    if (rt.rule.on_restart === "drop") return "on_restart: drop";
    return undefined;
  };

  /** Reads the timers saved at the last stop: `for`s wait for their triggers; runs are returned. */
  const loadSaved = (): SavedRun[] => {
    savedFor = new Map();
    const runs: SavedRun[] = [];
    for (const t of book.load()) {
      const why = unfit(t);
      if (why !== undefined) log.info("saved rule timer dropped", { rule: t.rule, kind: t.kind, why });
      else if (t.kind === "for") savedFor.set(`${t.rule}#${t.trigger}`, t);
      else runs.push(t);
    }
    return runs;
  };

  const resumeRuns = (runs: SavedRun[]) => {
    for (const saved of runs) {
      const rt = byId.get(saved.rule)!.rt;
      const vars = new Map<string, Value>(Object.entries(saved.vars));
      // Each repeat on the saved path sets repeat.* again as it resumes its round.
      vars.delete("repeat");
      const left = saved.due === undefined ? "no timeout" : `${Math.max(0, saved.due - clock.now())} ms left`;
      log.info("resuming a paused run after the restart", { rule: saved.rule, at: JSON.stringify(saved.path), left });
      const trace = [`resumed after a restart (run started ${new Date(saved.started).toISOString()})`];
      rt.status.runs--; // counted again by start(); the run is the one that was counted before
      start(rt, vars, trace, saved);
    }
  };

  const loadMore = (): Rule[] | string => {
    if (deps.loadRules === undefined) return [];
    const r = deps.loadRules();
    return r.ok ? r.rules : formatRuleProblems(r.problems);
  };

  /**
   * Re-reads the rules files. Invalid files: the old rules keep running and every problem is logged
   * with its file:line:col. Valid: unchanged rules keep their state, pending `for` timers and runs;
   * changed and removed ones are stopped; changed and new ones start (and their startup triggers fire).
   */
  const reloadNow = async (): Promise<void> => {
    if (deps.loadRules === undefined || !accepting) return;
    const more = loadMore();
    if (typeof more === "string") {
      log.error("rules not reloaded: the old rules keep running", { problems: more });
      return;
    }
    const next = new Map<string, { rt: RuleRuntime; text: string }>();
    const fresh: RuleRuntime[] = [];
    let kept = 0;
    for (const rule of [...deps.rules, ...more]) {
      const text = stableText(rule);
      const old = byId.get(rule.id);
      if (old !== undefined && old.text === text) {
        next.set(rule.id, old);
        kept++;
      } else {
        const rt = compile(rule, text);
        next.set(rule.id, { rt, text });
        fresh.push(rt);
      }
    }
    const ending: Promise<void>[] = [];
    let removed = 0;
    for (const [id, { rt }] of byId) {
      if (next.get(id)?.rt !== rt) {
        ending.push(...retire(rt));
        if (!next.has(id)) removed++;
      }
    }
    byId = next;
    const begun = fresh.filter((rt) => rt.rule.enabled);
    for (const rt of begun) arm(rt);
    await pinReadTopics();
    log.info("rules reloaded", { kept, new_or_changed: fresh.length, removed });
    fireStartup(begun);
    await Promise.allSettled(ending);
  };

  const engine: RulesEngine = {
    name: "rules",
    status: (id) => byId.get(id)?.rt.status.view(),
    async start() {
      const more = loadMore();
      if (typeof more === "string") throw new Error(`invalid rules:\n${more}`);
      for (const rule of more) byId.set(rule.id, { rt: compile(rule), text: stableText(rule) });
      const enabled = [...byId.values()].map((x) => x.rt).filter((rt) => rt.rule.enabled);
      const runs = loadSaved();
      starting = true;
      try {
        for (const rt of enabled) arm(rt);
        await pinReadTopics();
      } finally {
        starting = false;
      }
      for (const [, s] of savedFor) log.info("saved rule timer dropped", { rule: s.rule, kind: "for", why: "its trigger no longer waits" });
      savedFor.clear();
      accepting = true;
      log.info("rules started", { rules: byId.size, enabled: enabled.length, subscriptions: index.size, time_zone: zone.name });
      // What was pending at the last stop first (overdue ones once, now), then startup triggers.
      resumeRuns(runs);
      const late = deferred;
      deferred = [];
      for (const f of late) f();
      fireStartup(enabled);
      book.changed();
      if (deps.watchRules !== undefined && deps.loadRules !== undefined) {
        try {
          unwatch = deps.watchRules(fileChanged);
        } catch (err) {
          log.warn("cannot watch the rules files; SIGHUP still reloads them", { error: err });
        }
      }
    },
    /** SIGHUP, or a rules file changed: one reload at a time, in order. */
    reload() {
      const next = reloading.then(reloadNow, reloadNow);
      reloading = next.catch((err: unknown) => log.error("rules reload failed", { error: err }));
      return next;
    },
    async stop() {
      accepting = false;
      unwatch?.();
      unwatch = undefined;
      quiet?.();
      quiet = undefined;
      await reloading;
      // Saved before the runs are cancelled: stopping is not a reason to forget them.
      book.freeze();
      const ending: Promise<void>[] = [];
      for (const { rt } of byId.values()) ending.push(...retire(rt));
      await Promise.allSettled(ending);
      for (const [filter, e] of [...index]) drop(filter, e);
      await Promise.allSettled([...subscribing]);
    },
  };
  return engine;
}

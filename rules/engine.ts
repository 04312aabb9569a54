// The rules engine, a Service: arms every enabled rule's triggers, keeps the last value of every topic
// a rule reads (retained ones included), runs the actions of a rule whose conditions hold according
// to its mode, and reports each rule's last trigger, run, error and trace under
// <base>/rules/<id>/ and in the log.
//
// The parts: the topic index and state cache (rules/topic-index.ts: a message reaches only the rules
// whose filters match it), runs by mode (rules/runs.ts), pending `for` timers and paused runs kept in
// a TimerStore (rules/timers.ts) and resumed at start. This file wires them and reloads: SIGHUP
// re-reads the config file's own rules and the rules files, a watched rules file changing re-reads
// the rules files; reloads run one at a time and an invalid file keeps the old rules running.
import type { Bus, Cancel, Clock, Logger, Service } from "../hub/contracts.js";
import { type ActionHost, compileActions } from "./actions.js";
import { compileConditions } from "./conditions.js";
import { readTopics, stableText } from "./describe.js";
import type { Value } from "./expressions.js";
import { formatRuleProblems, type RulesLoad } from "./problems.js";
import { createRunner, retire, type RuleRuntime } from "./runs.js";
import type { Rule, Trigger } from "./schema.js";
import type { Location } from "./sun.js";
import { type RuleStatus, type RunResult, statusKeeper } from "./status.js";
import { lazyZone } from "./time.js";
import { type SavedFor, type SavedRun, type SavedTimer, type TimerStore, ruleVersion, timerBook } from "./timers.js";
import { createTopicIndex } from "./topic-index.js";
import { armTrigger, type ForKeeper, type TriggerHost } from "./triggers.js";

/** The config file's rules read again (SIGHUP), or its problems, one `file:line:col: …` per line. */
export type ConfigRulesLoad = { ok: true; rules: readonly Rule[] } | { ok: false; problems: string };

export interface RulesEngineDeps {
  /** The config file's own `rules:` as read at start. */
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
   * Reads more rules (a rules directory) at start and on reload(); `configRules` are the config's
   * rules in force (ids must not repeat them). At start a problem is fatal; on reload the old rules
   * keep running and the problems are logged. May be asynchronous: the hub reads them in a child
   * process (hub/config/isolated.ts), so the schema never loads into the long-running process.
   */
  loadRules?: (configRules: readonly Rule[]) => RulesLoad | Promise<RulesLoad>;
  /**
   * Re-reads the config file's own `rules:` on reload() (SIGHUP), not on a rules file change. A
   * problem anywhere in the config file keeps the old rules running (logged with file:line:col).
   * Without it, `rules` stay those given at start.
   */
  reloadConfigRules?: () => ConfigRulesLoad | Promise<ConfigRulesLoad>;
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

const SYNCED_AFTER = Date.UTC(2020, 0, 1);
const SAVE_DELAY_MS = 1000;
const RELOAD_DELAY_MS = 500;

export function createRulesEngine(deps: RulesEngineDeps): RulesEngine {
  const { bus, clock, log, topicsBase } = deps;
  // Made when a rule first needs it (cron, time, sun): loading time-zone data costs ~7 MB of RSS.
  const zone = lazyZone(deps.timeZone);
  const topics = createTopicIndex({ bus, clock, log });
  const publishStatus = deps.publishStatus ?? true;
  let accepting = false;
  /** While start() runs: triggers that fire (a resumed `for` already due) wait for it to finish. */
  let starting = false;
  let deferred: (() => void)[] = [];
  /** The config file's rules in force (replaced by a SIGHUP that reads a valid config file). */
  let configRules = deps.rules;

  // ---- durable timers (rules/timers.ts) ----
  const book = timerBook(deps.timers, clock, log, deps.saveDelayMs ?? SAVE_DELAY_MS);
  const remember = book.remember;
  /** `for` timers saved at the last stop, by `<rule>#<trigger>`, until their triggers are armed. */
  let savedFor = new Map<string, SavedFor>();
  const keeps = (rt: RuleRuntime) => book.enabled && rt.rule.on_restart === "resume";

  const runner = createRunner({
    clock,
    log,
    accepting: () => accepting,
    defer: (f) => {
      if (starting) deferred.push(f);
    },
    onRun: deps.onRun,
    holdQueued(rt, vars, firedAt) {
      if (!keeps(rt)) return () => {};
      const saved = Object.fromEntries(vars) as SavedRun["vars"];
      return remember({ kind: "run", rule: rt.rule.id, version: rt.version, path: [], vars: saved, started: firedAt, queued: true });
    },
  });

  // ---- reload: SIGHUP and file changes, one at a time ----
  let reloading: Promise<void> = Promise.resolve();
  let unwatch: Cancel | undefined;
  let quiet: Cancel | undefined;
  const queueReload = (withConfig: boolean): Promise<void> => {
    const next = reloading.then(
      () => reloadNow(withConfig),
      () => reloadNow(withConfig),
    );
    reloading = next.catch((err: unknown) => log.error("rules reload failed", { error: err }));
    return next;
  };
  const fileChanged = () => {
    quiet?.();
    quiet = clock.after(deps.reloadDelayMs ?? RELOAD_DELAY_MS, () => {
      quiet = undefined;
      log.info("a rules file changed: reloading");
      void queueReload(false);
    });
  };

  const host: ActionHost & TriggerHost = {
    clock,
    zone,
    log,
    bus,
    topicsBase,
    location: deps.location,
    cached: topics.cached,
    clockSynchronised: deps.clockSynchronised ?? (() => clock.now() >= SYNCED_AFTER),
    listen: topics.listen,
    arm: (t: Trigger, i: number, fire) => armTrigger(t, i, host, fire),
    hold(run, due) {
      const rt = runner.owner(run);
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
  for (const rule of configRules) byId.set(rule.id, { rt: compile(rule), text: stableText(rule) });

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
        rt.armed.push(armTrigger(t, i, host, (tv) => runner.fire(rt, tv), keeperFor(rt, i)));
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        rt.status.failed(clock.now(), message);
        log.error("trigger cannot run", { rule: rt.rule.id, trigger: i, error: message });
      }
    });
  };

  /** Subscribes to the topics the rules read (for conditions and state()); unpins those no longer read. */
  const pinReadTopics = () => {
    const reads = readTopics([...byId.values()].map((x) => x.rt.rule));
    return topics.pin(new Set(reads.dynamic ? ["#"] : reads.topics));
  };

  const fireStartup = (rts: RuleRuntime[]) => {
    for (const rt of rts) {
      rt.rule.triggers.forEach((t, i) => {
        if (t.trigger === "startup") runner.fire(rt, { kind: "startup", id: t.id ?? String(i) });
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

  /** Runs queued (mode: queued) at the last stop go back into the queue, after the paused runs resumed. */
  const requeueWaiting = (runs: SavedRun[]) => {
    for (const saved of runs) {
      if (saved.queued !== true) continue;
      // Same version as when saved (unfit() checked), so still mode: queued.
      const rt = byId.get(saved.rule)!.rt;
      log.info("queueing a run that was waiting before the restart", { rule: saved.rule, fired: new Date(saved.started).toISOString() });
      const vars = new Map<string, Value>(Object.entries(saved.vars));
      runner.requeue(rt, vars, [`queued before a restart (fired ${new Date(saved.started).toISOString()})`], saved.started);
    }
  };
  /** Runs paused in a delay or wait at the last stop continue where they were. */
  const resumePaused = (runs: SavedRun[]) => {
    for (const saved of runs) {
      if (saved.queued === true) continue;
      const rt = byId.get(saved.rule)!.rt;
      const vars = new Map<string, Value>(Object.entries(saved.vars));
      // Each repeat on the saved path sets repeat.* again as it resumes its round.
      vars.delete("repeat");
      const left = saved.due === undefined ? "no timeout" : `${Math.max(0, saved.due - clock.now())} ms left`;
      log.info("resuming a paused run after the restart", { rule: saved.rule, at: JSON.stringify(saved.path), left });
      const trace = [`resumed after a restart (run started ${new Date(saved.started).toISOString()})`];
      rt.status.runs--; // counted again by start(); the run is the one that was counted before
      runner.start(rt, vars, trace, saved);
    }
  };

  /** The rules files' rules (none without a rules directory), or their problems as text. */
  const loadMore = async (config: readonly Rule[]): Promise<Rule[] | string> => {
    if (deps.loadRules === undefined) return [];
    const r = await deps.loadRules(config);
    return r.ok ? r.rules : formatRuleProblems(r.problems);
  };

  /**
   * Re-reads the rules (with the config file's on SIGHUP). Any invalid file: the old rules keep
   * running and every problem is logged with its file:line:col. Valid: unchanged rules keep their
   * state, pending `for` timers and runs; changed and removed ones are stopped; changed and new ones
   * start (and their startup triggers fire).
   */
  const reloadNow = async (withConfig: boolean): Promise<void> => {
    const fromConfig = withConfig && deps.reloadConfigRules !== undefined;
    if (!accepting || (deps.loadRules === undefined && !fromConfig)) return;
    let config = configRules;
    if (fromConfig) {
      const c = await deps.reloadConfigRules!();
      if (!accepting) return; // stopped while the config was being read
      if (!c.ok) {
        log.error("rules not reloaded: the old rules keep running", { problems: c.problems });
        return;
      }
      config = c.rules;
    }
    const more = await loadMore(config);
    if (!accepting) return;
    if (typeof more === "string") {
      log.error("rules not reloaded: the old rules keep running", { problems: more });
      return;
    }
    const next = new Map<string, { rt: RuleRuntime; text: string }>();
    const fresh: RuleRuntime[] = [];
    let kept = 0;
    for (const rule of [...config, ...more]) {
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
    configRules = config;
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
      const more = await loadMore(configRules);
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
      log.info("rules started", { rules: byId.size, enabled: enabled.length, subscriptions: topics.size(), time_zone: zone.knownName ?? "system" });
      // What was pending at the last stop first (overdue ones once, now), then startup triggers.
      resumePaused(runs);
      requeueWaiting(runs);
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
    /** SIGHUP: the config file's rules and the rules files, after any reload in progress. */
    reload: () => queueReload(true),
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
      await topics.close();
    },
  };
  return engine;
}

// Each rule's status: counters and the last trigger, run, error and trace, kept as raw numbers and
// formatted only when asked (status()) or published. Publishing under <base>/rules/<id>/ (retained)
// is throttled per rule (a token bucket: bursts of 5, then 1 a second, always the latest values), so
// a rule firing 1,000 times a second does not cost 5,000 status messages a second.
import type { Bus, Cancel, Clock, Logger } from "../hub/contracts.js";
import { summary } from "./describe.js";
import type { TriggerVars } from "./triggers.js";

export type RunResult = "ok" | "stopped" | "error" | "cancelled" | "conditions_failed";

/** What status() returns and the topics show. Times are ISO 8601. */
export interface RuleStatus {
  id: string;
  enabled: boolean;
  /** Runs whose conditions held (whatever their result). */
  runs: number;
  /** Triggers dropped by the mode (single while running, queue or parallel limit full). */
  dropped: number;
  running: number;
  queued: number;
  lastTrigger?: { at: string; trigger: TriggerVars };
  lastRun?: { started: string; finished: string; result: RunResult; duration_ms: number; error?: string };
  lastError?: { at: string; message: string };
  /** Why the last trigger did or did not lead to actions, and what they did. */
  trace: string[];
}

const BURST = 5;
const PER_SECOND = 1;
type Leaf = "last_trigger" | "last_run" | "runs" | "last_error" | "trace";

export interface StatusKeeper {
  runs: number;
  dropped: number;
  running: number;
  queued: number;
  triggered(at: number, tv: TriggerVars): void;
  ran(started: number, finished: number, result: RunResult, trace: string[], error?: string): void;
  failed(at: number, message: string): void;
  view(): RuleStatus;
  /** Cancels a pending publication (the engine is stopping or the rule is gone). */
  close(): void;
}

export interface StatusDeps {
  bus: Bus;
  clock: Clock;
  log: Logger;
  /** <base>/rules/<id> */
  topic: string;
  publish: boolean;
}

const iso = (ms: number) => new Date(ms).toISOString();

export function statusKeeper(id: string, enabled: boolean, deps: StatusDeps): StatusKeeper {
  let trigger: { at: number; tv: TriggerVars } | undefined;
  let run: { started: number; finished: number; result: RunResult; error?: string } | undefined;
  let error: { at: number; message: string } | undefined;
  let trace: string[] = [];
  const dirty = new Set<Leaf>();
  let tokens = BURST;
  let refilled = deps.clock.monotonic();
  let timer: Cancel | undefined;
  let scheduled = false;
  let closed = false;

  const k: StatusKeeper = {
    runs: 0,
    dropped: 0,
    running: 0,
    queued: 0,
    triggered(at, tv) {
      trigger = { at, tv };
      changed("last_trigger");
    },
    ran(started, finished, result, t, err) {
      run = { started, finished, result, ...(err === undefined ? {} : { error: err }) };
      trace = t;
      changed("last_run");
      changed("trace");
      if (result !== "conditions_failed") changed("runs");
      if (result === "error") k.failed(finished, err ?? "error");
    },
    failed(at, message) {
      error = { at, message };
      changed("last_error");
    },
    view() {
      const s: RuleStatus = { id, enabled, runs: k.runs, dropped: k.dropped, running: k.running, queued: k.queued, trace };
      if (trigger) s.lastTrigger = { at: iso(trigger.at), trigger: summary(trigger.tv) };
      if (run) {
        s.lastRun = { started: iso(run.started), finished: iso(run.finished), result: run.result, duration_ms: run.finished - run.started };
        if (run.error !== undefined) s.lastRun.error = run.error;
      }
      if (error) s.lastError = { at: iso(error.at), message: error.message };
      return s;
    },
    close() {
      closed = true;
      timer?.();
      timer = undefined;
    },
  };

  /** Publishes what changed at the end of this turn (one run's leaves together), or when a token is due. */
  function changed(leaf: Leaf): void {
    if (!deps.publish || closed) return;
    dirty.add(leaf);
    if (scheduled) return;
    scheduled = true;
    const now = deps.clock.monotonic();
    tokens = Math.min(BURST, tokens + ((now - refilled) * PER_SECOND) / 1000);
    refilled = now;
    if (tokens >= 1) queueMicrotask(flush);
    else timer = deps.clock.after(Math.ceil(((1 - tokens) * 1000) / PER_SECOND), flush);
  }

  function flush(): void {
    scheduled = false;
    timer = undefined;
    if (closed || dirty.size === 0) return;
    const now = deps.clock.monotonic();
    tokens = Math.min(BURST, tokens + ((now - refilled) * PER_SECOND) / 1000) - 1;
    refilled = now;
    const s = k.view();
    for (const leaf of dirty) {
      const value = leaf === "last_trigger" ? s.lastTrigger : leaf === "last_run" ? s.lastRun : leaf === "last_error" ? s.lastError : leaf === "runs" ? String(s.runs) : s.trace;
      const payload = Buffer.from(typeof value === "string" ? value : JSON.stringify(value));
      deps.bus.publish({ topic: `${deps.topic}/${leaf}`, payload, qos: 0, retain: true }).catch((err) => {
        deps.log.warn("cannot publish rule status", { rule: id, error: err });
      });
    }
    dirty.clear();
  }

  return k;
}

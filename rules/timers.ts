// Durable rule timers (issue "rules engine", item 6): the pending `for` of a state/numeric trigger,
// the runs paused in a `delay` or `wait` and the runs queued behind them (mode: queued) are saved,
// so that after a restart they resume against the wall clock (a deadline that passed while the hub
// was down fires once, right after start) or are dropped, per rule (`on_restart`).
//
// Where: rules/ only defines the TimerStore interface and the book that decides when to save. With
// the embedded broker's storage on, the hub keeps them in the broker's SQLite file (table rule_timers,
// hub/broker/store/rule-timers.ts); otherwise in a small JSON file in the state dir (below): the set
// is small, rewritten whole, and an atomic replace (temp file, fsync, rename, fsync of the directory)
// is crash-safe with no native module. The filesystem is injected: rules/ does no I/O of its own.
import { createRequire } from "node:module";
import { dirname } from "node:path";
import type { Cancel, Clock, Logger } from "../hub/contracts.js";
import type { Value } from "./expressions.js";

/** A pending `for` of one of a rule's own triggers. */
export interface SavedFor {
  kind: "for";
  rule: string;
  /** Hash of the rule's text: a changed rule does not resume the old one's timers. */
  version: string;
  trigger: number;
  /** The trigger variable it will fire with. */
  vars: { [k: string]: Value };
  /** Wall-clock ms when it fires. */
  due: number;
}

/** A run paused in a `delay` or `wait`: where it is in the actions, and its variables. */
export interface SavedRun {
  kind: "run";
  rule: string;
  version: string;
  /** Position in the action tree: list indexes, `then`/`else`, a choice index or `default`, a repeat round. */
  path: (number | string)[];
  vars: { [k: string]: Value };
  /** Wall-clock ms when the delay ends or the wait times out; absent: a wait without timeout. */
  due?: number;
  /** Wall-clock ms when the run started (shown in the trace when it resumes); queued: when it fired. */
  started: number;
  /**
   * Not started yet: waiting in the queue of a `mode: queued` rule (its conditions held when it
   * fired). path is [] and due absent; after a restart it queues again behind the resumed run.
   */
  queued?: true;
}

export type SavedTimer = SavedFor | SavedRun;

/** Where the engine keeps its pending timers. `save` replaces the whole set. */
export interface TimerStore {
  load(): SavedTimer[];
  save(timers: readonly SavedTimer[]): void;
}

// Loaded by the first hash (a hub with rules), not at start: node:crypto initialises OpenSSL.
let crypto: typeof import("node:crypto") | undefined;

/** Short hash of a rule's stable text. */
export function ruleVersion(stableText: string): string {
  crypto ??= createRequire(import.meta.url)("node:crypto") as typeof import("node:crypto");
  return crypto.createHash("sha256").update(stableText).digest("hex").slice(0, 16);
}

/** The subset of node:fs the file store uses. */
export interface TimerFs {
  readFileSync(path: string, encoding: "utf8"): string;
  openSync(path: string, flags: string, mode?: number): number;
  writeSync(fd: number, data: string): number;
  fsyncSync(fd: number): void;
  closeSync(fd: number): void;
  renameSync(from: string, to: string): void;
}

const FORMAT = 1;

/** A saved timer as read back (JSON from a file or a database row) has the shape the engine needs. */
export function isSavedTimer(x: unknown): x is SavedTimer {
  if (typeof x !== "object" || x === null) return false;
  const t = x as Record<string, unknown>;
  if (typeof t.rule !== "string" || typeof t.version !== "string" || typeof t.vars !== "object" || t.vars === null) return false;
  if (t.kind === "for") return typeof t.trigger === "number" && typeof t.due === "number";
  if (t.kind === "run")
    return (
      Array.isArray(t.path) &&
      t.path.every((p) => typeof p === "number" || typeof p === "string") &&
      typeof t.started === "number" && // shown as a date when the run resumes: a missing one would throw at start
      (t.due === undefined || typeof t.due === "number") &&
      (t.queued === undefined || t.queued === true)
    );
  return false;
}

/**
 * The JSON file store. A missing file is an empty set; an unreadable or corrupt one is moved aside
 * (`<file>.corrupt-<ms>`) with a warning and the rules start without timers (DESIGN.md §6: never
 * refuse to boot over a store).
 */
export function jsonTimerStore(file: string, fs: TimerFs, log: Logger, now: () => number): TimerStore {
  const dir = dirname(file);
  return {
    load() {
      let text: string;
      try {
        text = fs.readFileSync(file, "utf8");
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
        log.warn("cannot read the rule timers; starting without them", { file, error: (err as Error).message });
        return [];
      }
      try {
        const doc = JSON.parse(text) as { format?: unknown; timers?: unknown };
        if (doc.format !== FORMAT || !Array.isArray(doc.timers)) throw new Error(`not a format ${FORMAT} timers file`);
        const timers = doc.timers.filter(isSavedTimer);
        if (timers.length !== doc.timers.length) log.warn("some saved rule timers are malformed and were dropped", { file, dropped: doc.timers.length - timers.length });
        return timers;
      } catch (err) {
        const aside = `${file}.corrupt-${now()}`;
        try {
          fs.renameSync(file, aside);
        } catch {
          // Nothing more to do: the next save replaces it.
        }
        log.warn("the rule timers file is corrupt: moved aside, starting without them", { file, moved_to: aside, error: (err as Error).message });
        return [];
      }
    },
    save(timers) {
      // Temp file + fsync + rename + fsync of the directory: after a crash the file is either the
      // old set or the new one, never half of each.
      const tmp = `${file}.tmp`;
      const fd = fs.openSync(tmp, "w", 0o600);
      try {
        fs.writeSync(fd, `${JSON.stringify({ format: FORMAT, saved_at: now(), timers })}\n`);
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      fs.renameSync(tmp, file);
      try {
        const d = fs.openSync(dir, "r");
        try {
          fs.fsyncSync(d);
        } finally {
          fs.closeSync(d);
        }
      } catch {
        // Some filesystems cannot fsync a directory; the rename is still atomic.
      }
    },
  };
}

/** A store in memory, for tests. */
export function memoryTimerStore(initial: readonly SavedTimer[] = []): TimerStore & { saved: SavedTimer[]; saves: number } {
  const s = {
    saved: structuredClone([...initial]) as SavedTimer[],
    saves: 0,
    load: () => structuredClone(s.saved),
    save(timers: readonly SavedTimer[]) {
      s.saved = structuredClone([...timers]) as SavedTimer[];
      s.saves++;
    },
  };
  return s;
}

/** The engine's book of pending timers: what is held now, saved a moment after each change. */
export interface TimerBook {
  readonly enabled: boolean;
  /** Holds a timer until the Cancel (fired, cancelled); each change schedules a save. */
  remember(t: SavedTimer): () => void;
  /** Schedules a save (e.g. after start, so dropped timers leave the file). */
  changed(): void;
  /** Reads what was saved at the last stop and starts an empty book. */
  load(): SavedTimer[];
  /** Saves now, then ignores releases: runs cancelled by stopping stay saved. */
  freeze(): void;
}

/** After a failed save, the next try comes this much later (at least). */
const RETRY_MS = 5000;

export function timerBook(store: TimerStore | undefined, clock: Clock, log: Logger, saveDelayMs: number): TimerBook {
  const held = new Map<object, SavedTimer>();
  let frozen = false;
  let timer: Cancel | undefined;
  /** The last save failed (disk full, I/O error): logged once, retried until one succeeds. */
  let failing = false;
  const saveNow = () => {
    timer?.();
    timer = undefined;
    try {
      store?.save([...held.values()]);
    } catch (err) {
      if (!failing) log.error("cannot save the pending rule timers; retrying", { error: err });
      failing = true;
      if (!frozen) timer = clock.after(Math.max(saveDelayMs, RETRY_MS), saveNow);
      return;
    }
    if (failing) log.info("pending rule timers saved again");
    failing = false;
  };
  const changed = () => {
    if (store === undefined || frozen || timer !== undefined) return;
    timer = clock.after(saveDelayMs, saveNow);
  };
  return {
    enabled: store !== undefined,
    remember(t) {
      const token = {};
      held.set(token, t);
      changed();
      return () => {
        if (frozen || !held.delete(token)) return;
        changed();
      };
    },
    changed,
    load() {
      held.clear();
      frozen = false;
      return store?.load() ?? [];
    },
    freeze() {
      frozen = true; // first: a failing save at stop arms no retry
      if (store !== undefined) saveNow();
    },
  };
}

// The broker's durable state: a write-behind log of state changes, group-committed to SQLite.
// In-memory routing stays the source of truth; every change to what must survive a restart (retained
// messages, persistent sessions, their subscriptions, QoS 1/2 deliveries, inbound QoS 2 ids) is
// recorded here as the final state of a row, keyed (the pending batch: store/batch.ts), and written
// by one transaction per commit (store/commit.ts).
// - Group commit (DESIGN.md §6): the first change arms a timer (commit_interval); everything recorded
//   until it fires is one transaction. afterCommit() holds acks (PUBACK, PUBREC, PUBCOMP, PUBREL)
//   until then, in order; with nothing pending they go at once. QoS 0 never waits.
// - A failed commit (disk full, I/O error) keeps the pending rows (they are the difference between
//   the file and memory), fails the held acks, logs once, reports on $SYS/broker/store/status and
//   retries every few seconds; the first retry that commits resumes durable operation.
import type { Clock, Logger } from "../../contracts.js";
import type { BrokerCore } from "../core.js";
import type { RetainedMessage } from "../retained.js";
import type { InflightEntry } from "../session.js";
import type { SubOptions } from "../subscriptions.js";
import { createBatch, type MsgRef, STATE } from "./batch.js";
import { encodeWill } from "./codec.js";
import { prepareCommit } from "./commit.js";
import { type Db, openAndLoad } from "./db.js";
import { applyState, EMPTY_STATE, loadState, type RestoreSummary } from "./restore.js";
import type { CoreJournal } from "./types.js";

export interface BrokerStoreOptions {
  /** <state_dir>/broker.db */
  path: string;
  sync: "normal" | "full";
  commitIntervalMs: number;
  /** A batch is committed at once when this many changes are pending. Default 1000. */
  maxBatch?: number;
  /** After a failed commit, the next try comes this much later. Default 5 s. */
  retryIntervalMs?: number;
  /** Caps the file at this many pages; tests use it to stand in for a full disk. */
  maxPageCount?: number;
}

export interface BrokerStoreDeps {
  clock: Clock;
  log: Logger;
}

/** durable: writing; failing: writes fail, retrying; memory: no file could be opened; closed. */
export type StoreStatus = "starting" | "durable" | "failing" | "memory" | "closed";

export interface StoreStats {
  commits: number;
  failedCommits: number;
  /** Row writes and deletes executed (a measure of write amplification). */
  rowOps: number;
}

export interface BrokerStore extends CoreJournal {
  readonly path: string;
  readonly status: StoreStatus;
  readonly stats: Readonly<StoreStats>;
  /** The open file, for the rule timers that share it (hub/broker/store/rule-timers.ts); undefined before open() and in memory mode. */
  readonly db: Db | undefined;
  /** Opens the file (a corrupt one is moved aside) and restores its state into `core`. Before listeners. */
  open(core: BrokerCore): RestoreSummary;
  /** Commits what is pending now. */
  flush(): void;
  /** Flushes and closes the file (clean shutdown). */
  close(): void;
}

export const STATUS_TOPIC = "$SYS/broker/store/status";

interface Waiter {
  run: () => void;
  fail: (() => void) | undefined;
}

export function createBrokerStore(o: BrokerStoreOptions, deps: BrokerStoreDeps): BrokerStore {
  const { clock, log } = deps;
  const maxBatch = o.maxBatch ?? 1000;
  const retryMs = o.retryIntervalMs ?? 5_000;
  let db: Db | undefined;
  let core: BrokerCore | undefined;
  let status: StoreStatus = "starting";
  const stats: StoreStats = { commits: 0, failedCommits: 0, rowOps: 0 };

  let waiters: Waiter[] = [];
  let timer: (() => void) | undefined;
  let timerAt0 = false;

  const recording = () => status === "durable" || status === "failing" || status === "starting";

  const publishStatus = (why?: string) => {
    if (!core) return;
    const text = why === undefined ? status : `${status}: ${why}`;
    core.route({ topic: STATUS_TOPIC, payload: Buffer.from(text), qos: 0, retain: true });
  };

  const schedule = () => {
    if (status !== "durable") return; // failing: the retry timer commits; starting: open() does
    const urgent = batch.ops >= maxBatch || o.commitIntervalMs <= 0;
    if (timer && (timerAt0 || !urgent)) return;
    timer?.();
    timerAt0 = urgent;
    timer = clock.after(urgent ? 0 : o.commitIntervalMs, flush);
  };
  const batch = createBatch(clock, schedule);
  const { noted, client, ref, unref, putOut, dropOut, clearClient } = batch;

  // --- the commit --------------------------------------------------------------------------------
  let commitTx: (() => void) | undefined;
  const settle = (ok: boolean) => {
    if (waiters.length === 0) return;
    const list = waiters;
    waiters = [];
    for (const w of list) {
      try {
        if (ok || !w.fail) w.run();
        else w.fail();
      } catch (err) {
        log.error("acknowledgement after commit failed", { error: err });
      }
    }
  };

  let retryTimer: (() => void) | undefined;
  function flush(): void {
    timer?.();
    timer = undefined;
    if (!db || !commitTx || (status !== "durable" && status !== "failing")) {
      settle(true);
      return;
    }
    if (batch.ops === 0) {
      settle(true);
      return;
    }
    try {
      commitTx();
    } catch (err) {
      stats.failedCommits++;
      if (status !== "failing") {
        status = "failing";
        const code = (err as { code?: string }).code ?? "error";
        log.error("cannot write the broker state file (disk full?); QoS 1/2 messages are refused until it can be written again", {
          file: o.path,
          error: err,
        });
        publishStatus(code);
      }
      settle(false);
      retryTimer?.();
      retryTimer = clock.after(retryMs, () => {
        retryTimer = undefined;
        flush();
      });
      return;
    }
    stats.commits++;
    batch.reset();
    if (status === "failing") {
      status = "durable";
      log.info("broker state file can be written again; durable operation resumed", { file: o.path });
      publishStatus();
    }
    settle(true);
  }

  const store: BrokerStore = {
    path: o.path,
    get status() {
      return status;
    },
    get failing() {
      return status === "failing";
    },
    stats,
    get db() {
      return db;
    },

    open(c) {
      core = c;
      const r = openAndLoad(o.path, { sync: o.sync, maxPageCount: o.maxPageCount }, clock, log, loadState, EMPTY_STATE);
      if (!r) {
        status = "memory";
        publishStatus();
        return { sessions: 0, subscriptions: 0, queued: 0, inflight: 0, retained: 0, dropped: 0, expired: 0 };
      }
      db = r.db;
      for (const m of r.loaded.msgs) if (m.id >= batch.nextMsgId) batch.nextMsgId = m.id + 1;
      commitTx = prepareCommit(db, batch, clock, stats);
      const byId = new Map<number, MsgRef>();
      const summary = applyState(c, r.loaded, clock, {
        dropRetained: (topic) => {
          batch.retained.set(topic, null);
          noted();
        },
        dropOut,
        dropMsg: (id) => {
          batch.msgs.set(id, { row: null, fresh: false });
          noted();
        },
        adopt: (m, id) => {
          let ref = byId.get(id);
          if (!ref) {
            ref = { id, refs: 0 };
            byId.set(id, ref);
            batch.refs.set(m, ref);
          }
          ref.refs++;
        },
        attach: (s) => {
          s.journal = store;
        },
      });
      status = "durable";
      flush();
      log.info("broker state restored", { file: o.path, ...summary });
      publishStatus();
      return summary;
    },

    flush,

    close() {
      if (status === "closed") return;
      flush();
      timer?.();
      retryTimer?.();
      timer = retryTimer = undefined;
      if (status === "failing") log.warn("broker state not fully written at shutdown (disk full?)", { file: o.path, pending: batch.ops });
      status = "closed";
      settle(false);
      if (db) log.info("broker state file closed", { file: o.path, commits: stats.commits, failed_commits: stats.failedCommits, row_ops: stats.rowOps });
      db?.close();
      db = undefined;
    },

    afterCommit(run, fail) {
      // Nothing pending (or nothing durable to wait for): at once. Else in order after the commit.
      if (status !== "durable" || (batch.ops === 0 && waiters.length === 0)) run();
      else waiters.push({ run, fail });
    },

    // --- SessionJournal --------------------------------------------------------------------------
    queued(s, d) {
      if (!recording()) return;
      d.seq = s.nextSeq++;
      ref(d.msg);
      putOut(s, d, null, STATE.queued, true);
    },
    sent(s, e: InflightEntry) {
      if (!recording()) return;
      const isNew = e.seq === undefined;
      if (isNew) {
        e.seq = s.nextSeq++;
        ref(e.msg);
      }
      putOut(s, e, e.id, STATE.publish, isNew);
    },
    released(s, e) {
      if (!recording() || e.seq === undefined) return;
      putOut(s, e, e.id, STATE.pubrel, false);
    },
    removed(s, d) {
      if (!recording() || d.seq === undefined) return;
      unref(d.msg);
      dropOut(s.clientId, d.seq);
    },
    cleared(s) {
      if (!recording()) return;
      for (let i = s.queueHead; i < s.queue.length; i++) {
        const d = s.queue[i]!;
        if (d.seq !== undefined) unref(d.msg);
      }
      for (const e of s.inflight.values()) if (e.seq !== undefined) unref(e.msg);
      clearClient(s, false);
    },

    // --- CoreJournal -----------------------------------------------------------------------------
    sessionSaved(s) {
      if (!recording()) return;
      if (s.expiryMs === 0) {
        store.sessionEnded(s);
        return;
      }
      s.journal = store;
      if (s.link) s.offlineAt = -1;
      else if (s.offlineAt < 0) s.offlineAt = clock.now();
      client(s.clientId).session = {
        expiryMs: Number.isFinite(s.expiryMs) ? s.expiryMs : null,
        offlineAt: s.offlineAt < 0 ? null : s.offlineAt,
        will: encodeWill(s.will),
        username: s.username ?? null,
      };
      noted();
    },
    sessionEnded(s) {
      if (s.journal === undefined) return;
      s.journal = undefined;
      if (!recording()) return;
      clearClient(s, true);
    },
    subscribed(s, filter, opts: SubOptions) {
      if (!s.journal || !recording()) return;
      const c = client(s.clientId);
      c.subs ??= new Map();
      c.subs.set(filter, {
        qos: opts.qos,
        nl: opts.noLocal ? 1 : 0,
        rap: opts.retainAsPublished ? 1 : 0,
        rh: opts.retainHandling,
        subId: opts.subscriptionId ?? null,
      });
      noted();
    },
    unsubscribed(s, filter) {
      if (!s.journal || !recording()) return;
      const c = client(s.clientId);
      c.subs ??= new Map();
      c.subs.set(filter, null);
      noted();
    },
    inboundQos2(s, id, present) {
      if (!s.journal || !recording()) return;
      const c = client(s.clientId);
      c.inq2 ??= new Map();
      c.inq2.set(id, present);
      noted();
    },
    retained(topic, m: RetainedMessage | undefined) {
      // $SYS topics are regenerated by the broker; not worth a write.
      if (!recording() || topic.startsWith("$SYS/")) return;
      batch.retained.set(topic, m ?? null);
      noted();
    },
  };
  return store;
}

// The broker's durable state: a write-behind log of state changes, group-committed to SQLite.
// In-memory routing stays the source of truth; every change to what must survive a restart (retained
// messages, persistent sessions, their subscriptions, QoS 1/2 deliveries, inbound QoS 2 ids) is
// recorded here as the final state of a row, keyed, so a row changed many times in one batch is
// written once, and a delivery created and acknowledged within one batch is never written at all.
// Messages are stored once (msgs) and referenced by every session holding them (outq).
// - Group commit (DESIGN.md §6): the first change arms a timer (commit_interval); everything recorded
//   until it fires is one transaction. afterCommit() holds acks (PUBACK, PUBREC, PUBCOMP, PUBREL)
//   until then, in order; with nothing pending they go at once. QoS 0 never waits.
// - A failed commit (disk full, I/O error) keeps the pending rows (they are the difference between
//   the file and memory), fails the held acks, logs once, reports on $SYS/broker/store/status and
//   retries every few seconds; the first retry that commits resumes durable operation.
import type { Clock, Logger } from "../../contracts.js";
import type { BrokerCore } from "../core.js";
import type { RoutedMessage } from "../publish-encode.js";
import type { RetainedMessage } from "../retained.js";
import type { Delivery, InflightEntry, Session } from "../session.js";
import type { SubOptions } from "../subscriptions.js";
import { encodeProps, encodePublisher, encodeWill, wallExpiry } from "./codec.js";
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

interface Entry<R> {
  row: R | null;
  /** The row was created in this batch (not in the file): deleting it needs no SQL. */
  fresh: boolean;
}
interface MsgRow {
  topic: string;
  payload: Buffer;
  qos: number;
  retain: number;
  props: string | null;
  expiresAt: number | null;
}
interface OutRow {
  msgId: number;
  qos: number;
  retain: number;
  subIds: string | null;
  packetId: number | null;
  state: number;
}
interface SessionRow {
  expiryMs: number | null;
  offlineAt: number | null;
  will: string | null;
  /** The owner (C10); null: anonymous. */
  username: string | null;
}
interface SubRow {
  qos: number;
  nl: number;
  rap: number;
  rh: number;
  subId: number | null;
}
interface ClientOps {
  /** Delete every row of the client first (session ended); later entries are applied after. */
  clear: boolean;
  session: SessionRow | null | undefined;
  subs: Map<string, SubRow | null> | undefined;
  out: Map<number, Entry<OutRow>> | undefined;
  inq2: Map<number, boolean> | undefined;
}
interface MsgRef {
  id: number;
  refs: number;
}
interface Waiter {
  run: () => void;
  fail: (() => void) | undefined;
}

const STATE = { queued: 0, publish: 1, pubrel: 2 } as const;

export function createBrokerStore(o: BrokerStoreOptions, deps: BrokerStoreDeps): BrokerStore {
  const { clock, log } = deps;
  const maxBatch = o.maxBatch ?? 1000;
  const retryMs = o.retryIntervalMs ?? 5_000;
  let db: Db | undefined;
  let core: BrokerCore | undefined;
  let status: StoreStatus = "starting";
  const stats: StoreStats = { commits: 0, failedCommits: 0, rowOps: 0 };

  let msgs = new Map<number, Entry<MsgRow>>();
  // The message itself, encoded at commit: its publisher may be filled in after it was stored (a
  // retained will, core.ts publishWill), and a topic replaced many times in a batch is encoded once.
  let retained = new Map<string, RetainedMessage | null>();
  let clients = new Map<string, ClientOps>();
  let ops = 0;
  let waiters: Waiter[] = [];
  const refs = new Map<RoutedMessage, MsgRef>();
  let nextMsgId = 1;
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
    const urgent = ops >= maxBatch || o.commitIntervalMs <= 0;
    if (timer && (timerAt0 || !urgent)) return;
    timer?.();
    timerAt0 = urgent;
    timer = clock.after(urgent ? 0 : o.commitIntervalMs, flush);
  };
  const noted = () => {
    ops++;
    schedule();
  };
  const client = (id: string): ClientOps => {
    let c = clients.get(id);
    if (!c) {
      c = { clear: false, session: undefined, subs: undefined, out: undefined, inq2: undefined };
      clients.set(id, c);
    }
    return c;
  };

  const ref = (m: RoutedMessage): number => {
    let r = refs.get(m);
    if (!r) {
      r = { id: nextMsgId++, refs: 0 };
      refs.set(m, r);
      const row: MsgRow = {
        topic: m.topic,
        payload: m.payload,
        qos: m.qos,
        retain: m.retain ? 1 : 0,
        props: encodeProps(m.properties),
        expiresAt: wallExpiry(m.expiresAt, clock),
      };
      msgs.set(r.id, { row, fresh: true });
    }
    r.refs++;
    return r.id;
  };
  const unref = (m: RoutedMessage) => {
    const r = refs.get(m);
    if (!r || --r.refs > 0) return;
    refs.delete(m);
    const e = msgs.get(r.id);
    if (e?.fresh) msgs.delete(r.id);
    else msgs.set(r.id, { row: null, fresh: false });
  };

  const putOut = (s: Session, d: Delivery, packetId: number | null, state: number, isNew: boolean) => {
    const c = client(s.clientId);
    c.out ??= new Map();
    const seq = d.seq!;
    const prev = c.out.get(seq);
    const row: OutRow = {
      msgId: refs.get(d.msg)!.id,
      qos: d.qos,
      retain: d.retain ? 1 : 0,
      subIds: d.subscriptionIds ? JSON.stringify(d.subscriptionIds) : null,
      packetId,
      state,
    };
    c.out.set(seq, { row, fresh: isNew || (prev?.fresh ?? false) });
    noted();
  };
  const dropOut = (clientId: string, seq: number) => {
    const c = client(clientId);
    c.out ??= new Map();
    if (c.out.get(seq)?.fresh) c.out.delete(seq);
    else c.out.set(seq, { row: null, fresh: false });
    noted();
  };
  const clearClient = (s: Session, ended: boolean) => {
    const c = client(s.clientId);
    c.clear = true;
    c.subs = c.out = c.inq2 = undefined;
    c.session = ended ? null : c.session;
    noted();
  };

  // --- the commit --------------------------------------------------------------------------------
  let commitTx: (() => void) | undefined;
  const prepare = (d: Db) => {
    const insMsg = d.prepare("INSERT OR REPLACE INTO msgs (id, topic, payload, qos, retain, props, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)");
    const delMsg = d.prepare("DELETE FROM msgs WHERE id = ?");
    const putRet = d.prepare("INSERT OR REPLACE INTO retained (topic, payload, qos, props, expires_at, publisher) VALUES (?, ?, ?, ?, ?, ?)");
    const delRet = d.prepare("DELETE FROM retained WHERE topic = ?");
    const putSess = d.prepare("INSERT OR REPLACE INTO sessions (client_id, expiry_ms, offline_at, will, username) VALUES (?, ?, ?, ?, ?)");
    const delSess = d.prepare("DELETE FROM sessions WHERE client_id = ?");
    const putSub = d.prepare("INSERT OR REPLACE INTO subs (client_id, filter, qos, nl, rap, rh, sub_id) VALUES (?, ?, ?, ?, ?, ?, ?)");
    const delSub = d.prepare("DELETE FROM subs WHERE client_id = ? AND filter = ?");
    const delSubs = d.prepare("DELETE FROM subs WHERE client_id = ?");
    const putOutS = d.prepare("INSERT OR REPLACE INTO outq (client_id, seq, msg_id, qos, retain, sub_ids, packet_id, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
    const delOutS = d.prepare("DELETE FROM outq WHERE client_id = ? AND seq = ?");
    const delOuts = d.prepare("DELETE FROM outq WHERE client_id = ?");
    const putIn = d.prepare("INSERT OR IGNORE INTO inq2 (client_id, packet_id) VALUES (?, ?)");
    const delIn = d.prepare("DELETE FROM inq2 WHERE client_id = ? AND packet_id = ?");
    const delIns = d.prepare("DELETE FROM inq2 WHERE client_id = ?");
    commitTx = d.transaction(() => {
      let n = 0;
      for (const [id, e] of msgs) {
        const r = e.row;
        if (r) insMsg.run(id, r.topic, r.payload, r.qos, r.retain, r.props, r.expiresAt);
        else delMsg.run(id);
        n++;
      }
      for (const [topic, m] of retained) {
        if (m) putRet.run(topic, m.payload, m.qos, encodeProps(m.properties as never), wallExpiry(m.expiresAt, clock), encodePublisher(m.publisher));
        else delRet.run(topic);
        n++;
      }
      for (const [id, c] of clients) {
        if (c.clear) {
          delSess.run(id);
          delSubs.run(id);
          delOuts.run(id);
          delIns.run(id);
          n += 4;
        }
        if (c.session) putSess.run(id, c.session.expiryMs, c.session.offlineAt, c.session.will, c.session.username);
        else if (c.session === null && !c.clear) delSess.run(id);
        if (c.subs) {
          for (const [f, r] of c.subs) {
            if (r) putSub.run(id, f, r.qos, r.nl, r.rap, r.rh, r.subId);
            else delSub.run(id, f);
          }
          n += c.subs.size;
        }
        if (c.out) {
          for (const [seq, e] of c.out) {
            const r = e.row;
            if (r) putOutS.run(id, seq, r.msgId, r.qos, r.retain, r.subIds, r.packetId, r.state);
            else delOutS.run(id, seq);
          }
          n += c.out.size;
        }
        if (c.inq2) {
          for (const [pid, present] of c.inq2) {
            if (present) putIn.run(id, pid);
            else delIn.run(id, pid);
          }
          n += c.inq2.size;
        }
      }
      stats.rowOps += n;
    });
  };

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
    if (ops === 0) {
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
    msgs = new Map();
    retained = new Map();
    clients = new Map();
    ops = 0;
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
      for (const m of r.loaded.msgs) if (m.id >= nextMsgId) nextMsgId = m.id + 1;
      prepare(db);
      const byId = new Map<number, MsgRef>();
      const summary = applyState(c, r.loaded, clock, {
        dropRetained: (topic) => {
          retained.set(topic, null);
          noted();
        },
        dropOut,
        dropMsg: (id) => {
          msgs.set(id, { row: null, fresh: false });
          noted();
        },
        adopt: (m, id) => {
          let ref = byId.get(id);
          if (!ref) {
            ref = { id, refs: 0 };
            byId.set(id, ref);
            refs.set(m, ref);
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
      if (status === "failing") log.warn("broker state not fully written at shutdown (disk full?)", { file: o.path, pending: ops });
      status = "closed";
      settle(false);
      if (db) log.info("broker state file closed", { file: o.path, commits: stats.commits, failed_commits: stats.failedCommits, row_ops: stats.rowOps });
      db?.close();
      db = undefined;
    },

    afterCommit(run, fail) {
      // Nothing pending (or nothing durable to wait for): at once. Else in order after the commit.
      if (status !== "durable" || (ops === 0 && waiters.length === 0)) run();
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
      retained.set(topic, m ?? null);
      noted();
    },
  };
  return store;
}

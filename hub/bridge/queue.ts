// The durable store-and-forward queue of one bridge: an SQLite file (better-sqlite3, WAL) holding
// outbound messages in arrival order until the remote has them (DESIGN.md §6).
// - append() is group-committed: every message appended during one event-loop turn goes into one
//   transaction, so a burst costs one write, not one per message. Nothing is sent before its commit.
// - Bounds (max_messages, max_bytes, max_age) and the policies drop_oldest / drop_new / latest_only
//   are applied inside the same transaction; every message dropped is counted by reason.
// - Rows the sender has handed to the MQTT client (`protect`) are never dropped: they are on the wire.
// - A corrupt file is moved aside (logged) and a fresh one created; if no file can be opened at all,
//   or a write fails (disk full), the hub keeps running: the failure is logged and counted.
import Database from "better-sqlite3";
import type { Clock, Logger, PublishProperties, QoS } from "../contracts.js";
import { moveAside } from "../broker/store/db.js";

export interface QueueOptions {
  maxMessages: number;
  maxBytes: number;
  /** Milliseconds; messages older than this are dropped by expire(). */
  maxAgeMs?: number;
  policy: "drop_oldest" | "drop_new";
  synchronous: "normal" | "full";
  /** Caps the file at this many pages (4 KiB each); tests use it to stand in for a full disk. */
  maxPageCount?: number;
}

export interface QueueDeps {
  clock: Clock;
  log: Logger;
  /** True for rows handed to the client and not yet acknowledged: bounds never drop them. */
  protect?: (id: number) => boolean;
  /** Called after a commit that added messages (the sender drains then). */
  onAppend?: () => void;
}

export interface OutMessage {
  topic: string;
  payload: Buffer;
  qos: QoS;
  retain: boolean;
  properties?: PublishProperties;
  /** latest_only: this message replaces the queued ones of the same topic that are not yet sent. */
  latestOnly?: boolean;
}

export interface QueuedMessage {
  id: number;
  /** Wall-clock ms when queued (survives restarts, unlike monotonic time). */
  at: number;
  topic: string;
  payload: Buffer;
  qos: QoS;
  retain: boolean;
  properties?: PublishProperties;
}

/** Messages dropped, by reason. */
export interface DropCounts {
  oldest: number;
  new: number;
  superseded: number;
  expired: number;
  rejected: number;
  write_failed: number;
}

export interface Queue {
  readonly path: string;
  /** False when the file could not be opened and the queue lives in memory only. */
  readonly durable: boolean;
  readonly dropped: Readonly<DropCounts>;
  /**
   * The open file, for the bridge's session store (session-store.ts): its table lives in the same
   * file so that recording a PUBREC and removing the message's row commit in one transaction.
   */
  readonly db: Database.Database;
  append(m: OutMessage): void;
  /** Commits pending appends and removals now (otherwise at the end of this event-loop turn). */
  flush(): void;
  /** Up to `limit` messages with id > afterId, oldest first. */
  peek(afterId: number, limit: number): QueuedMessage[];
  /** The newest message's id (0 when empty). */
  lastId(): number;
  /** The distinct topics of the messages with id <= `id`. */
  topicsUpTo(id: number): Set<string>;
  /** One message by id (committed rows only). */
  get(id: number): QueuedMessage | undefined;
  /** The remote has it (or it was written, QoS 0): forget it. Group-committed like append(). */
  remove(id: number): void;
  /** Like remove(), but now, inside the caller's transaction if one is open. True if it was there. */
  removeNow(id: number): boolean;
  /** Counts messages dropped outside the queue (refused by the remote, expired before sending). */
  countDrop(reason: keyof DropCounts, n?: number): void;
  /** Drops messages older than max_age; returns how many. */
  expire(): number;
  depth(): number;
  bytes(): number;
  /** Wall-clock ms of the oldest message, or undefined when empty. */
  oldestAt(): number | undefined;
  /** Gives free pages (more than 1 MiB of them) back to the file system; returns the pages freed. */
  shrink(): number;
  close(): void;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS queue (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at INTEGER NOT NULL,
  topic TEXT NOT NULL,
  payload BLOB NOT NULL,
  qos INTEGER NOT NULL,
  retain INTEGER NOT NULL,
  props TEXT,
  latest INTEGER NOT NULL DEFAULT 0,
  size INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS queue_latest ON queue(topic) WHERE latest = 1;
`;

interface Row {
  id: number;
  at: number;
  topic: string;
  payload: Buffer;
  qos: number;
  retain: number;
  props: string | null;
}

interface IdSize {
  id: number;
  size: number;
  at: number;
}

const CHUNK = 256;

function isCorruption(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return code === "SQLITE_CORRUPT" || code === "SQLITE_NOTADB" || (err instanceof Error && err.message.startsWith("integrity check failed"));
}

function openFile(path: string, o: QueueOptions): Database.Database {
  const db = new Database(path);
  try {
    // Free pages go back to the file system (shrink()) after a long outage's backlog has drained;
    // must be chosen before the first table exists (a file from before this is converted once).
    const fresh = db.pragma("page_count", { simple: true }) === 0;
    db.pragma("auto_vacuum = INCREMENTAL");
    if (!fresh && db.pragma("auto_vacuum", { simple: true }) !== 2) db.exec("VACUUM");
    db.pragma("journal_mode = WAL");
    // The -wal file is cut back to this after each checkpoint instead of keeping its largest size.
    db.pragma("journal_size_limit = 4194304");
    db.pragma(`synchronous = ${o.synchronous === "full" ? "FULL" : "NORMAL"}`);
    const check = db.pragma("quick_check", { simple: true });
    if (check !== "ok") throw new Error(`integrity check failed: ${String(check)}`);
    db.exec(SCHEMA);
    if (o.maxPageCount !== undefined) db.pragma(`max_page_count = ${o.maxPageCount}`);
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

/** Opens (or creates) the queue file; a corrupt one is moved to `<path>.corrupt-<time>` first. */
function openDatabase(path: string, o: QueueOptions, deps: QueueDeps): { db: Database.Database; durable: boolean } {
  try {
    return { db: openFile(path, o), durable: true };
  } catch (first) {
    let err = first;
    if (isCorruption(err)) {
      try {
        const aside = moveAside(path, deps.clock);
        deps.log.error("bridge queue file is corrupt; moved it aside and started an empty queue", { file: path, moved_to: aside, error: err });
        return { db: openFile(path, o), durable: true };
      } catch (err2) {
        err = err2;
      }
    }
    deps.log.error("cannot open the bridge queue file; queueing in memory only (lost on restart)", { file: path, error: err });
    return { db: openFile(":memory:", o), durable: false };
  }
}

export function encodeProps(p: PublishProperties | undefined): string | null {
  if (p === undefined) return null;
  const o: Record<string, unknown> = { ...p };
  if (p.correlationData !== undefined) o.correlationData = p.correlationData.toString("base64");
  return JSON.stringify(o);
}

export function decodeProps(s: string): PublishProperties {
  const o = JSON.parse(s) as Record<string, unknown>;
  if (typeof o.correlationData === "string") o.correlationData = Buffer.from(o.correlationData, "base64");
  return o as PublishProperties;
}

function toMessage(r: Row): QueuedMessage {
  const m: QueuedMessage = { id: r.id, at: r.at, topic: r.topic, payload: r.payload, qos: r.qos as QoS, retain: r.retain === 1 };
  if (r.props !== null) m.properties = decodeProps(r.props);
  return m;
}

export function openQueue(path: string, o: QueueOptions, deps: QueueDeps): Queue {
  const { clock, log } = deps;
  const protect = deps.protect ?? (() => false);
  const { db, durable } = openDatabase(path, o, deps);

  const insert = db.prepare("INSERT INTO queue (at, topic, payload, qos, retain, props, latest, size) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
  const delById = db.prepare<[number], { size: number }>("DELETE FROM queue WHERE id = ? RETURNING size");
  const selLatest = db.prepare<[string], IdSize>("SELECT id, size, at FROM queue WHERE topic = ? AND latest = 1");
  const selOldest = db.prepare<[number, number], IdSize>("SELECT id, size, at FROM queue WHERE id > ? ORDER BY id LIMIT ?");
  const selAfter = db.prepare<[number, number], Row>("SELECT id, at, topic, payload, qos, retain, props FROM queue WHERE id > ? ORDER BY id LIMIT ?");
  const selOne = db.prepare<[number], Row>("SELECT id, at, topic, payload, qos, retain, props FROM queue WHERE id = ?");
  const selLast = db.prepare<[], { id: number | null }>("SELECT max(id) AS id FROM queue");
  const selTopics = db.prepare<[number], { topic: string }>("SELECT DISTINCT topic FROM queue WHERE id <= ?");
  const selHead = db.prepare<[], { at: number }>("SELECT at FROM queue ORDER BY id LIMIT 1");
  const selTotals = db.prepare<[], { n: number; b: number }>("SELECT count(*) AS n, coalesce(sum(size), 0) AS b FROM queue");

  let depth = 0;
  let bytes = 0;
  const recount = () => {
    const t = selTotals.get()!;
    depth = t.n;
    bytes = t.b;
  };
  recount();

  const dropped: DropCounts = { oldest: 0, new: 0, superseded: 0, expired: 0, rejected: 0, write_failed: 0 };
  let appends: OutMessage[] = [];
  let removals: number[] = [];
  let scheduled: NodeJS.Immediate | undefined;
  let failing = false;
  let closed = false;

  const within = () => depth <= o.maxMessages && bytes <= o.maxBytes;

  const dropRow = (r: IdSize) => {
    if (delById.get(r.id) === undefined) return false;
    depth--;
    bytes -= r.size;
    return true;
  };

  /** drop_oldest: deletes the oldest unprotected rows until within bounds. */
  const makeRoom = () => {
    let after = 0;
    while (!within()) {
      const rows = selOldest.all(after, CHUNK);
      if (rows.length === 0) return;
      for (const r of rows) {
        after = r.id;
        if (protect(r.id) || !dropRow(r)) continue;
        dropped.oldest++;
        if (within()) return;
      }
    }
  };

  const commit = db.transaction((adds: OutMessage[], dels: number[]) => {
    let added = 0;
    for (const id of dels) {
      const r = delById.get(id);
      if (r === undefined) continue;
      depth--;
      bytes -= r.size;
    }
    const now = clock.now();
    for (const m of adds) {
      const size = Buffer.byteLength(m.topic) + m.payload.length;
      if (m.latestOnly) {
        for (const r of selLatest.all(m.topic)) if (!protect(r.id) && dropRow(r)) dropped.superseded++;
      }
      if (size > o.maxBytes || (o.policy === "drop_new" && (depth + 1 > o.maxMessages || bytes + size > o.maxBytes))) {
        dropped.new++;
        continue;
      }
      insert.run(now, m.topic, m.payload, m.qos, m.retain ? 1 : 0, encodeProps(m.properties), m.latestOnly ? 1 : 0, size);
      depth++;
      bytes += size;
      added++;
      if (!within()) makeRoom();
    }
    return added;
  });

  const writeFailed = (err: unknown, lost: number, what: string) => {
    dropped.write_failed += lost;
    if (!failing) log.error(`cannot write the bridge queue (disk full?); ${what}`, { file: path, error: err, lost });
    failing = true;
  };

  const flush = () => {
    if (scheduled !== undefined) {
      clearImmediate(scheduled);
      scheduled = undefined;
    }
    if (closed || (appends.length === 0 && removals.length === 0)) return;
    const adds = appends;
    const dels = removals;
    appends = [];
    removals = [];
    let added: number;
    try {
      added = commit(adds, dels);
    } catch (err) {
      // Rolled back: the counts are re-read. New messages cannot be kept; removals are retried.
      recount();
      removals = dels.concat(removals);
      writeFailed(err, adds.length, "new messages are dropped until it can be written again");
      return;
    }
    if (failing) log.info("bridge queue writes work again", { file: path });
    failing = false;
    if (added > 0) deps.onAppend?.();
  };

  const schedule = () => {
    if (scheduled === undefined && !closed) scheduled = setImmediate(flush);
  };

  return {
    path,
    durable,
    dropped,
    db,
    append(m) {
      appends.push(m);
      schedule();
    },
    flush,
    peek(afterId, limit) {
      flush();
      return selAfter.all(afterId, limit).map(toMessage);
    },
    lastId() {
      flush();
      return selLast.get()?.id ?? 0;
    },
    topicsUpTo(id) {
      flush();
      return new Set(selTopics.all(id).map((r) => r.topic));
    },
    get(id) {
      const r = selOne.get(id);
      return r === undefined ? undefined : toMessage(r);
    },
    remove(id) {
      removals.push(id);
      schedule();
    },
    removeNow(id) {
      const r = delById.get(id);
      if (r === undefined) return false;
      depth--;
      bytes -= r.size;
      return true;
    },
    countDrop(reason, n = 1) {
      dropped[reason] += n;
    },
    expire() {
      if (o.maxAgeMs === undefined || closed) return 0;
      flush();
      const cutoff = clock.now() - o.maxAgeMs;
      let n = 0;
      try {
        db.transaction(() => {
          let after = 0;
          for (;;) {
            const rows = selOldest.all(after, CHUNK);
            if (rows.length === 0) return;
            for (const r of rows) {
              after = r.id;
              // Rows are in arrival order: the first young one ends the sweep.
              if (r.at >= cutoff) return;
              if (!protect(r.id) && dropRow(r)) n++;
            }
          }
        })();
      } catch (err) {
        recount();
        writeFailed(err, 0, "expired messages stay until it can be written again");
        return 0;
      }
      dropped.expired += n;
      return n;
    },
    depth: () => depth,
    bytes: () => bytes,
    oldestAt() {
      return depth === 0 ? undefined : selHead.get()?.at;
    },
    shrink() {
      if (closed) return 0;
      try {
        const free = db.pragma("freelist_count", { simple: true }) as number;
        if (free < 256) return 0;
        db.pragma("incremental_vacuum");
        db.pragma("wal_checkpoint(TRUNCATE)");
        return free;
      } catch (err) {
        log.warn("cannot shrink the bridge queue file", { file: path, error: err });
        return 0;
      }
    },
    close() {
      if (closed) return;
      flush();
      closed = true;
      db.close();
    },
  };
}

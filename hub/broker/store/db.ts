// Opening the broker's SQLite file (<state_dir>/broker.db): pragmas, tables, and the rule that a
// corrupt file never stops the hub (DESIGN.md §6, hardware-notes "Storage on an SD card"): a file that
// is not SQLite, fails quick_check, or cannot be read back is renamed to broker.db.corrupt-<time>
// (with its -wal/-shm) and a fresh one is created. Same pattern as the bridge queue (bridge/queue.ts).
import { renameSync } from "node:fs";
import Database from "better-sqlite3";
import type { Clock, Logger } from "../../contracts.js";

export type Db = Database.Database;

/**
 * msgs: a message body, stored once however many sessions hold it (outq rows reference it).
 * outq: one row per QoS 1/2 delivery of a persistent session; packet_id NULL = queued,
 *   state 1 = PUBLISH sent, 2 = PUBREL sent. seq keeps the session's delivery order.
 * retained.publisher: JSON of who published it (ACL check G3), NULL when access control was off.
 * sessions.username: the user that owns the session (checklist C10: another user may not take over its
 *   client id, also after a restart; wills are re-authorized as this user, G7). NULL: anonymous.
 * Small-row tables are WITHOUT ROWID: one B-tree, fewer pages written per change.
 * rule_timers: the rules engine's pending `for` timers and paused or queued runs (rules/timers.ts
 *   SavedTimer as JSON in body; seq keeps their order), written by hub/broker/store/rule-timers.ts, not
 *   by the journal. Added after the first file format: CREATE IF NOT EXISTS gives older files the table.
 */
const SCHEMA = `
CREATE TABLE IF NOT EXISTS msgs (
  id INTEGER PRIMARY KEY, topic TEXT NOT NULL, payload BLOB NOT NULL, qos INTEGER NOT NULL,
  retain INTEGER NOT NULL, props TEXT, expires_at INTEGER
);
CREATE TABLE IF NOT EXISTS retained (
  topic TEXT PRIMARY KEY, payload BLOB NOT NULL, qos INTEGER NOT NULL, props TEXT, expires_at INTEGER,
  publisher TEXT
);
CREATE TABLE IF NOT EXISTS sessions (
  client_id TEXT PRIMARY KEY, expiry_ms INTEGER, offline_at INTEGER, will TEXT, username TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS subs (
  client_id TEXT NOT NULL, filter TEXT NOT NULL, qos INTEGER NOT NULL, nl INTEGER NOT NULL,
  rap INTEGER NOT NULL, rh INTEGER NOT NULL, sub_id INTEGER, PRIMARY KEY (client_id, filter)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outq (
  client_id TEXT NOT NULL, seq INTEGER NOT NULL, msg_id INTEGER NOT NULL, qos INTEGER NOT NULL,
  retain INTEGER NOT NULL, sub_ids TEXT, packet_id INTEGER, state INTEGER NOT NULL,
  PRIMARY KEY (client_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS inq2 (
  client_id TEXT NOT NULL, packet_id INTEGER NOT NULL, PRIMARY KEY (client_id, packet_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rule_timers (
  seq INTEGER PRIMARY KEY, rule TEXT NOT NULL, body TEXT NOT NULL
);
`;

export interface OpenOptions {
  sync: "normal" | "full";
  /** Caps the file at this many pages; tests use it to stand in for a full disk. */
  maxPageCount?: number;
}

/** SQLITE_FULL, SQLITE_IOERR_*, ENOSPC or SQLITE_CANTOPEN: the disk (not the data) is the problem; retry later. */
export function isWriteFault(err: unknown): boolean {
  const code = String((err as { code?: unknown }).code ?? "");
  return code === "SQLITE_FULL" || code.startsWith("SQLITE_IOERR") || code === "ENOSPC" || code === "SQLITE_CANTOPEN";
}

export function openFile(path: string, o: OpenOptions): Db {
  const db = new Database(path);
  try {
    db.pragma("journal_mode = WAL");
    // NORMAL in WAL mode: commits are not fsynced (checkpoints are), so kill -9 loses nothing
    // committed but a power cut may lose the last commits. FULL fsyncs the WAL on every commit.
    db.pragma(`synchronous = ${o.sync === "full" ? "FULL" : "NORMAL"}`);
    // The WAL file is truncated back to 4 MiB after checkpoints instead of staying at its peak size.
    db.pragma("journal_size_limit = 4194304");
    // quick_check reads every page (O(N)); the full integrity_check also cross-checks indexes, which
    // costs seconds on a Pi for a large file and adds nothing the loader would not notice.
    const check = db.pragma("quick_check", { simple: true });
    if (check !== "ok") throw new Error(`integrity check failed: ${String(check)}`);
    db.exec(SCHEMA);
    migrate(db);
    if (o.maxPageCount !== undefined) db.pragma(`max_page_count = ${o.maxPageCount}`);
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

/**
 * Columns added after the first release of the file format: a file written by an older hub gets
 * them (NULL in existing rows) instead of failing every statement that names them.
 */
function migrate(db: Db): void {
  const columns = (table: string) => new Set(db.prepare<[], { name: string }>(`SELECT name FROM pragma_table_info('${table}')`).all().map((c) => c.name));
  if (!columns("retained").has("publisher")) db.exec("ALTER TABLE retained ADD COLUMN publisher TEXT");
  // A session restored without its owner could be taken over by the first user to resume it (C10).
  if (!columns("sessions").has("username")) db.exec("ALTER TABLE sessions ADD COLUMN username TEXT");
}

/** Renames the file and its -wal/-shm to `<path>.corrupt-<ISO time>`; returns the new name. */
export function moveAside(path: string, clock: Clock): string {
  const aside = `${path}.corrupt-${new Date(clock.now()).toISOString().replace(/[:.]/g, "-")}`;
  renameSync(path, aside);
  for (const ext of ["-wal", "-shm"]) {
    try {
      renameSync(path + ext, aside + ext);
    } catch {
      // absent: nothing to move
    }
  }
  return aside;
}

/**
 * Opens the file and runs `load` on it; a corrupt file (at open or while loading) is moved aside
 * and a fresh one used. Returns undefined when no file can be opened at all (the caller then runs
 * in memory only). `load` must not have side effects that survive a throw.
 */
export function openAndLoad<T>(path: string, o: OpenOptions, clock: Clock, log: Logger, load: (db: Db) => T, empty: () => T): { db: Db; loaded: T } | undefined {
  let err: unknown;
  try {
    const db = openFile(path, o);
    try {
      return { db, loaded: load(db) };
    } catch (e) {
      db.close();
      throw e;
    }
  } catch (e) {
    err = e;
  }
  // Anything unreadable in the file (bad pages, rows that do not decode) counts as corruption.
  if (!isWriteFault(err) && (err as { code?: unknown }).code !== "SQLITE_BUSY") {
    try {
      const aside = moveAside(path, clock);
      log.warn("broker state file is corrupt or unreadable; moved it aside and starting with empty state", {
        file: path,
        moved_to: aside,
        error: err,
      });
      return { db: openFile(path, o), loaded: empty() };
    } catch (e2) {
      err = e2;
    }
  }
  log.error("cannot open the broker state file; sessions and retained messages are kept in memory only", { file: path, error: err });
  return undefined;
}

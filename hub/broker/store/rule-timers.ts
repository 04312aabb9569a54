// The rules engine's pending timers (rules/timers.ts TimerStore: `for` deadlines, runs paused in a
// delay or wait, runs queued behind them) kept in the broker's own SQLite file, table rule_timers
// (DESIGN.md §2: one durable file for broker state and rule timers). rules/ stays free of I/O and
// native modules: it sees only the TimerStore interface; hub/app.ts picks this store when the embedded
// broker keeps state on disk, and the JSON file store otherwise.
// - A save is one transaction that writes only the difference to what the table holds (a timer that
//   stays pending is not rewritten); it is durable when save() returns, as far as broker.storage.sync
//   says: normal survives a crash or kill -9, full also a power cut (the WAL is fsynced per commit).
// - Shares the journal's connection: better-sqlite3 is synchronous, so a save never interleaves with
//   the journal's group commit, and it does not wait for (or use) the journal's commit timer.
// - <state_dir>/rules-timers.json left by a hub that ran without the broker store is newer than the
//   table (a hub with the store deletes it at start), so at load it replaces the table's rows, then the
//   file is deleted.
// - No connection (the broker could not open its file, status "memory"): the JSON file store is used
//   instead, so timers stay durable.
// - A corrupt broker.db is moved aside by the broker before the rules start (db.ts openAndLoad): the
//   rules then find an empty table and start without timers.
import type { Logger } from "../../contracts.js";
import { isSavedTimer, type SavedTimer, type TimerStore } from "../../../rules/timers.js";
import type { Db } from "./db.js";

export interface RuleTimersDeps {
  /** The broker store's open connection (BrokerStore.db), read at load(). */
  db: () => Db | undefined;
  /** The JSON file store: imported from once, and used when there is no connection. */
  json: TimerStore;
  /** Path of the JSON file (for the log), and its existence and removal. */
  jsonFile: string;
  exists: (file: string) => boolean;
  remove: (file: string) => void;
  log: Logger;
}

interface Row {
  seq: number;
  rule: string;
  body: string;
}

export function sqliteTimerStore(deps: RuleTimersDeps): TimerStore {
  const { log } = deps;
  /** Set at load(): the table, or the JSON file when there is no connection. */
  let target: TimerStore | undefined;

  const tableStore = (db: Db): TimerStore => {
    const all = db.prepare<[], Row>("SELECT seq, rule, body FROM rule_timers ORDER BY seq");
    const ins = db.prepare<[string, string]>("INSERT INTO rule_timers (rule, body) VALUES (?, ?)");
    const del = db.prepare<[number]>("DELETE FROM rule_timers WHERE seq = ?");
    /** What the table holds: the seqs of the rows holding each body (equal timers may repeat). */
    let held = new Map<string, number[]>();

    /** Writes `timers` as the table's content, changing only rows that differ; one transaction. */
    const write = db.transaction((timers: readonly SavedTimer[]) => {
      const want = new Map<string, { rule: string; n: number }>();
      for (const t of timers) {
        const body = JSON.stringify(t);
        const w = want.get(body);
        if (w) w.n++;
        else want.set(body, { rule: t.rule, n: 1 });
      }
      const next = new Map<string, number[]>();
      for (const [body, seqs] of held) {
        const keep = Math.min(seqs.length, want.get(body)?.n ?? 0);
        for (const seq of seqs.slice(keep)) del.run(seq);
        if (keep > 0) next.set(body, seqs.slice(0, keep));
      }
      for (const [body, w] of want) {
        const seqs = next.get(body) ?? [];
        while (seqs.length < w.n) seqs.push(Number(ins.run(w.rule, body).lastInsertRowid));
        next.set(body, seqs);
      }
      return next;
    });

    return {
      load() {
        held = new Map();
        const out: SavedTimer[] = [];
        let bad = 0;
        let rows: Row[];
        try {
          rows = all.all();
        } catch (err) {
          log.error("cannot read the saved rule timers from the broker state file; starting without them", { error: err });
          return [];
        }
        for (const r of rows) {
          let t: unknown;
          try {
            t = JSON.parse(r.body);
          } catch {
            t = undefined;
          }
          if (!isSavedTimer(t)) {
            bad++;
            del.run(r.seq);
            continue;
          }
          out.push(t);
          const seqs = held.get(r.body);
          if (seqs) seqs.push(r.seq);
          else held.set(r.body, [r.seq]);
        }
        if (bad > 0) log.warn("some saved rule timers are malformed and were dropped", { dropped: bad });
        return out;
      },
      save(timers) {
        // Assigned only after the commit: a failed one (disk full) rolled back, the table is unchanged.
        held = write(timers);
      },
    };
  };

  return {
    load() {
      const db = deps.db();
      if (db === undefined) {
        log.warn("the broker state file is not open: rule timers are kept in the JSON file", { file: deps.jsonFile });
        target = deps.json;
        return target.load();
      }
      const table = tableStore(db);
      target = table;
      if (!deps.exists(deps.jsonFile)) return table.load();
      // Left by a run without the broker store: newer than the table. Into the table, then deleted
      // (a crash in between imports it again, which is harmless).
      const imported = deps.json.load();
      try {
        table.load();
        table.save(imported);
        // synchronous=NORMAL does not fsync a commit; the file is the only other copy, so make the
        // import durable before deleting it (once, at start).
        db.pragma("wal_checkpoint(FULL)");
      } catch (err) {
        // Disk full or an I/O error: this run keeps the JSON file (else a later start would take
        // the file, now older than the table, for the newer one).
        log.error("cannot move the saved rule timers into the broker state file; keeping the JSON file", { file: deps.jsonFile, error: err });
        target = deps.json;
        return imported;
      }
      try {
        deps.remove(deps.jsonFile);
      } catch (err) {
        // ENOENT: moved aside as corrupt by the JSON store's load, nothing left to delete. Otherwise
        // the file stays, and so this run keeps saving to it (it must not turn stale).
        if ((err as NodeJS.ErrnoException).code !== "ENOENT") {
          log.warn("cannot delete the rule timers JSON file; this run keeps using it", { file: deps.jsonFile, error: err });
          target = deps.json;
          return imported;
        }
      }
      log.info("moved the saved rule timers from the JSON file into the broker state file", { file: deps.jsonFile, timers: imported.length });
      return imported;
    },
    save(timers) {
      if (target === undefined) throw new Error("rule timers saved before they were loaded");
      target.save(timers);
    },
  };
}

// The rules engine's pending timers in the broker's SQLite file (hub/broker/store/rule-timers.ts):
// a save writes only what changed, in one transaction (a failed one changes nothing), malformed rows
// are dropped, no connection falls back to the JSON file; and the hub built from a config
// (buildApp) resumes a pending `for` and a paused delay from broker.db after a restart, imports
// (then deletes) the JSON file a run without the store left, and starts without timers (logged)
// when broker.db is corrupt and moved aside.
import * as fs from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import t, { type Test } from "tap";
import { buildApp } from "../../../hub/app.js";
import { openFile } from "../../../hub/broker/store/db.js";
import { sqliteTimerStore } from "../../../hub/broker/store/rule-timers.js";
import { formatProblems, loadConfigText } from "../../../hub/config/load.js";
import type { Message } from "../../../hub/contracts.js";
import { memoryLogger } from "../../../hub/log.js";
import { jsonTimerStore, type SavedTimer } from "../../../rules/timers.js";
import { flush } from "../../rules/harness.js";
import { fakeClock } from "../../support/fake-clock.js";

const T0 = Date.UTC(2024, 0, 15, 12, 0, 0);
const forA: SavedTimer = { kind: "for", rule: "a", version: "v1", trigger: 0, vars: { kind: "state", to: "open" }, due: T0 + 60_000 };
const runB: SavedTimer = { kind: "run", rule: "b", version: "v2", path: [1], vars: { trigger: { value: 3 } }, due: T0 + 90_000, started: T0 };
const waitC: SavedTimer = { kind: "run", rule: "c", version: "v3", path: [0], vars: {}, started: T0 };

function openDb(t: Test, dir: string, maxPageCount?: number) {
  const db = openFile(join(dir, "broker.db"), { sync: "normal", maxPageCount });
  t.teardown(() => db.close());
  return db;
}

function store(dir: string, db: () => ReturnType<typeof openFile> | undefined, log = memoryLogger()) {
  const jsonFile = join(dir, "rules-timers.json");
  return sqliteTimerStore({
    db,
    json: jsonTimerStore(jsonFile, fs, log, () => 5),
    jsonFile,
    exists: fs.existsSync,
    remove: fs.unlinkSync,
    log,
  });
}

const rows = (db: Database.Database) => db.prepare<[], { seq: number; rule: string }>("SELECT seq, rule FROM rule_timers ORDER BY seq").all();

t.test("saves replace the set, writing only the rows that changed; equal timers are kept apart; order is kept", async (t) => {
  const dir = t.testdir();
  const db = openDb(t, dir);
  const s = store(dir, () => db);
  t.same(s.load(), [], "a new file has none");
  s.save([forA, runB]);
  const first = rows(db);
  t.same(first.map((r) => r.rule), ["a", "b"]);
  s.save([forA, runB, waitC, waitC]);
  const second = rows(db);
  t.same(second.slice(0, 2), first, "rows that stay pending are not rewritten");
  t.same(second.map((r) => r.rule), ["a", "b", "c", "c"]);
  s.save([runB, waitC]);
  t.same(rows(db).map((r) => r.seq), [first[1]!.seq, second[2]!.seq]);
  t.same(store(dir, () => db).load(), [runB, waitC], "read back by a new store, in order");
  s.save([]);
  t.same(rows(db), []);
});

t.test("a save that fails (disk full) changes nothing, and the next one writes the right difference", async (t) => {
  const dir = t.testdir();
  const setup = openFile(join(dir, "broker.db"), { sync: "normal" });
  const pages = setup.pragma("page_count", { simple: true }) as number;
  setup.close();
  const db = openDb(t, dir, pages + 1);
  const s = store(dir, () => db);
  s.load();
  s.save([forA]);
  const big: SavedTimer = { ...runB, vars: { blob: "x".repeat(64 * 1024) } };
  t.throws(() => s.save([big]), { code: "SQLITE_FULL" });
  t.same(rows(db).map((r) => r.rule), ["a"], "the old set is intact");
  s.save([forA, runB]);
  t.same(store(dir, () => db).load(), [forA, runB]);
});

t.test("a malformed row is dropped with a warning (and deleted); the others load", async (t) => {
  const dir = t.testdir();
  const db = openDb(t, dir);
  db.prepare("INSERT INTO rule_timers (rule, body) VALUES (?, ?)").run("x", '{"kind":"for"');
  db.prepare("INSERT INTO rule_timers (rule, body) VALUES (?, ?)").run("a", JSON.stringify(forA));
  const log = memoryLogger();
  t.same(store(dir, () => db, log).load(), [forA]);
  t.match(log.lines.join("\n"), /WARN .*some saved rule timers are malformed and were dropped .*dropped=1/);
  t.same(rows(db).map((r) => r.rule), ["a"]);
});

t.test("without a connection (the broker file could not be opened) the JSON file keeps them", async (t) => {
  const dir = t.testdir();
  const log = memoryLogger();
  const s = store(dir, () => undefined, log);
  t.same(s.load(), []);
  s.save([forA]);
  t.same(jsonTimerStore(join(dir, "rules-timers.json"), fs, log, () => 0).load(), [forA]);
  t.match(log.lines.join("\n"), /WARN .*rule timers are kept in the JSON file/);
  t.throws(() => store(dir, () => undefined).save([]), /before they were loaded/);
});

t.test("the JSON file of a run without the store replaces the table's (older) rows, then is deleted", async (t) => {
  const dir = t.testdir();
  const db = openDb(t, dir);
  const earlier = store(dir, () => db);
  earlier.load();
  earlier.save([waitC]); // what an earlier run with the store left
  const jsonFile = join(dir, "rules-timers.json");
  jsonTimerStore(jsonFile, fs, memoryLogger(), () => 0).save([forA, runB]);
  const log = memoryLogger();
  const s = store(dir, () => db, log);
  t.same(s.load(), [forA, runB]);
  t.notOk(fs.existsSync(jsonFile), "the file is deleted");
  t.same(rows(db).map((r) => r.rule), ["a", "b"]);
  t.match(log.lines.join("\n"), /INFO .*moved the saved rule timers from the JSON file into the broker state file .*timers=2/);
  s.save([runB]);
  t.same(store(dir, () => db).load(), [runB], "later saves go to the table");
});

// ---- the hub: buildApp with the broker's storage on (the default) ---------------------------------

const RULES = `
rules:
  - id: door
    triggers: [{ trigger: state, topic: hub/door, to: open, for: 5m }]
    actions: [{ action: publish, topic: out/door, payload: open }]
  - id: later
    triggers: [{ trigger: mqtt, topic: hub/go }]
    actions:
      - { action: delay, duration: 10m }
      - { action: publish, topic: out/later, payload: done }
`;

/** A hub on `dir` whose clock starts at `start`; everything published on out/# is collected. */
async function hub(t: Test, dir: string, start: number, storage = true) {
  const loaded = loadConfigText(
    `
state_dir: ${dir}
broker:
  listeners: [{ host: 127.0.0.1, port: 0 }]
  sys_interval: 0s
  storage: { enabled: ${storage} }
${RULES}`,
    "hub.yaml",
    { readFile: () => "", env: {} },
  );
  if (!loaded.ok) throw new Error(formatProblems(loaded.problems));
  const clock = fakeClock(start);
  const log = memoryLogger("debug");
  const app = await buildApp({ config: loaded.config, clock, log, version: "test", random: () => 0.5 });
  await app.lifecycle.start();
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await app.lifecycle.stop(5000);
  };
  t.teardown(stop);
  const out: string[] = [];
  await app.bus.subscribe("out/#", (m: Message) => out.push(`${m.topic} ${m.payload.toString()}`));
  const publish = async (topic: string, payload: string) => {
    await app.bus.publish({ topic, payload: Buffer.from(payload), qos: 0, retain: true });
    await flush();
  };
  const advance = async (ms: number) => {
    clock.advance(ms);
    await flush();
  };
  return { app, clock, log, out, publish, advance, stop };
}

/** The rules of the saved timers, read by another connection: what is in the file, committed. */
function savedRules(dir: string): string[] {
  const r = new Database(join(dir, "broker.db"), { readonly: true });
  try {
    return r.prepare<[], { rule: string }>("SELECT rule FROM rule_timers ORDER BY seq").all().map((x) => x.rule);
  } finally {
    r.close();
  }
}

t.test("a pending `for` and a run in a delay resume from broker.db after the hub restarts", async (t) => {
  const dir = t.testdir();
  const a = await hub(t, dir, T0);
  await a.publish("hub/door", "closed");
  await a.publish("hub/door", "open");
  await a.publish("hub/go", "1");
  await a.advance(1000); // the engine saves a moment after a change
  t.same(savedRules(dir).sort(), ["door", "later"], "committed to the file while the hub runs (a crash keeps them)");
  t.notOk(fs.existsSync(join(dir, "rules-timers.json")), "no JSON file with the broker store");
  await a.stop();

  const b = await hub(t, dir, T0 + 4 * 60_000);
  const lines = () => b.log.lines.join("\n");
  t.match(lines(), /resuming a pending `for` after the restart .*rule=door/);
  t.match(lines(), /resuming a paused run after the restart .*rule=later/);
  await b.advance(59_000);
  t.same(b.out, [], "the `for` is not due yet");
  await b.advance(1000);
  t.same(b.out, ["out/door open"], "due 5 minutes after the door opened, counted across the restart");
  await b.advance(5 * 60_000);
  t.same(b.out, ["out/door open", "out/later done"], "the delay ended 10 minutes after it began");
  await b.advance(1000);
  t.same(savedRules(dir), [], "nothing pending: the table is empty");
});

t.test("a JSON file left by a run without the broker store is moved into broker.db", async (t) => {
  const dir = t.testdir();
  const a = await hub(t, dir, T0, false);
  await a.publish("hub/go", "1");
  await a.stop(); // saves at stop
  const jsonFile = join(dir, "rules-timers.json");
  t.ok(fs.existsSync(jsonFile), "without the store: the JSON file");

  const b = await hub(t, dir, T0 + 60_000);
  t.match(b.log.lines.join("\n"), /moved the saved rule timers from the JSON file into the broker state file .*timers=1/);
  t.notOk(fs.existsSync(jsonFile), "deleted");
  t.same(savedRules(dir), ["later"]);
  await b.advance(9 * 60_000);
  t.same(b.out, ["out/later done"]);
});

for (const [how, damage] of [
  ["overwritten header", (f: string) => fs.writeFileSync(f, Buffer.alloc(4096, 0x5a))],
  ["torn (half the file, garbage pages)", (f: string) => {
    const b = fs.readFileSync(f);
    fs.writeFileSync(f, Buffer.concat([b.subarray(0, 100), Buffer.alloc(b.length - 100, 0xff)]));
  }],
] as const) {
  t.test(`a corrupt broker.db (${how}) is moved aside: the hub starts, the rules without timers, and it is logged`, async (t) => {
    const dir = t.testdir();
    const a = await hub(t, dir, T0);
    await a.publish("hub/go", "1");
    await a.advance(1000);
    await a.stop();
    t.same(savedRules(dir), ["later"]);
    damage(join(dir, "broker.db"));

    const b = await hub(t, dir, T0 + 60_000);
    const lines = b.log.lines.join("\n");
    t.match(lines, /WARN .*broker state file is corrupt or unreadable; moved it aside and starting with empty state/);
    t.match(lines, /rules started/);
    t.notMatch(lines, /resuming a paused run/);
    t.ok(fs.readdirSync(dir).some((f) => f.startsWith("broker.db.corrupt-")), "the damaged file is kept aside");
    await b.advance(10 * 60_000);
    t.same(b.out, [], "the lost delay does not fire");
    await b.publish("hub/go", "2");
    await b.advance(1000);
    t.same(savedRules(dir), ["later"], "new timers are saved in the fresh file");
  });
}

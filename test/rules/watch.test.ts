// Reload when a rules file changes: the directory watch filters file names, a burst of events
// (an editor's save) gives one reload after a quiet moment on the injected clock, a bad file keeps
// the old rules with file:line:col in the log, stopping releases the watch; and the built hub
// reloads a changed file in rules_dir by itself, and keeps rule timers across a restart.
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import t from "tap";
import { memoryLogger } from "../../hub/log.js";
import { createRulesEngine } from "../../rules/engine.js";
import { loadRulesDir, type WatchFn, watchRulesDir } from "../../rules/load.js";
import { fakeClock } from "../support/fake-clock.js";
import { freePort, killOnTeardown, spawnHub } from "../support/spawn.js";
import { flush, testBroker } from "./harness.js";

const buttonRule = (payload: string) => `- id: button
  triggers: [{ trigger: mqtt, topic: hub/button }]
  actions: [{ action: publish, topic: out, payload: "${payload}" }]
`;

function fakeWatch() {
  const w = {
    listener: undefined as ((event: string, name: string | null) => void) | undefined,
    onError: undefined as ((err: Error) => void) | undefined,
    closed: false,
    fn: ((_dir, listener) => {
      w.listener = listener;
      return {
        close: () => {
          w.closed = true;
        },
        on: (_e: "error", fn: (err: Error) => void) => {
          w.onError = fn;
        },
      };
    }) as WatchFn,
  };
  return w;
}

t.test("watchRulesDir: only rules files count; errors are logged", async (t) => {
  const w = fakeWatch();
  const log = memoryLogger();
  let calls = 0;
  const cancel = watchRulesDir("/rules.d", () => calls++, log, w.fn);
  for (const name of ["a.yaml", "b.yml", ".a.yaml.swp", "4913", "notes.txt", ".#a.yaml", "a.yaml~"]) w.listener!("rename", name);
  t.equal(calls, 2, "a.yaml and b.yml only");
  w.listener!("change", null);
  t.equal(calls, 3, "no name given: could be anything");
  w.onError!(new Error("ENOENT"));
  t.match(log.lines.join("\n"), /WARN .*stopped watching the rules directory; SIGHUP still reloads it dir=\/rules\.d error=ENOENT/);
  cancel();
  t.equal(w.closed, true);
});

t.test("the engine reloads once after a burst of file changes; a bad file keeps the old rules", async (t) => {
  const files = new Map([["button.yaml", buttonRule("v1")]]);
  const clock = fakeClock();
  const log = memoryLogger("debug");
  const tb = await testBroker(clock, log);
  const { broker } = tb;
  const out = await tb.record("out");
  const press = () => tb.publish("hub/button", "x");
  const w = fakeWatch();
  const engine = createRulesEngine({
    rules: [],
    bus: broker.bus("rules"),
    clock,
    log: log.child("rules"),
    topicsBase: "hub",
    publishStatus: false,
    loadRules: () => loadRulesDir("/rules.d", { readdir: () => [...files.keys()], readFile: (p) => files.get(p.replace("/rules.d/", ""))! }),
    watchRules: (changed) => watchRulesDir("/rules.d", changed, log, w.fn),
    reloadDelayMs: 500,
  });
  await engine.start();
  await press();
  t.same(out, ["v1"]);

  const reloads = () => log.lines.filter((l) => l.includes("rules reloaded")).length;
  files.set("button.yaml", buttonRule("v2"));
  for (let i = 0; i < 5; i++) {
    w.listener!("change", "button.yaml");
    clock.advance(100);
  }
  await flush();
  t.equal(reloads(), 0, "still changing: not yet");
  clock.advance(500);
  await flush();
  t.equal(reloads(), 1, "one reload for the burst");
  t.match(log.lines.join("\n"), /a rules file changed: reloading/);
  await press();
  t.same(out, ["v1", "v2"]);

  files.set("button.yaml", buttonRule("v3").replace("trigger: mqtt", "trigger: mqt"));
  w.listener!("change", "button.yaml");
  clock.advance(500);
  await flush();
  t.match(log.lines.join("\n"), /ERROR .*rules not reloaded: the old rules keep running problems="\/rules\.d\/button\.yaml:2:25: \[0\]\.triggers\[0\]\.trigger: expected one of/);
  await press();
  t.same(out, ["v1", "v2", "v2"], "the old rules still run");

  w.listener!("change", "button.yaml");
  await engine.stop();
  t.equal(w.closed, true, "the watch is released at stop");
  await broker.stop();
  t.equal(clock.pending(), 0, "and the pending reload");
});

t.test("SIGHUP and a file change at once: reloads run one after the other", async (t) => {
  let loads = 0;
  const subs: (() => void)[] = [];
  const rule = (n: number) => buttonRule("x").replace("hub/button", `t/${n}`);
  const engine = createRulesEngine({
    rules: [],
    // A subscription completes only when the test says so: a reload waits for it.
    bus: { publish: async () => {}, subscribe: () => new Promise((resolve) => subs.push(() => resolve(() => {}))) },
    clock: fakeClock(),
    log: memoryLogger(),
    topicsBase: "hub",
    publishStatus: false,
    loadRules: () => loadRulesDir("/d", { readdir: () => ["a.yaml"], readFile: () => rule(++loads) }),
  });
  const started = engine.start();
  await flush();
  subs.shift()!();
  await started;
  const all = Promise.all([engine.reload!(), engine.reload!(), engine.reload!()]);
  await flush();
  t.equal(loads, 2, "the first reload waits for its subscription; the others wait for it");
  subs.shift()!();
  await flush();
  t.equal(loads, 3);
  subs.shift()!();
  await flush();
  subs.shift()!();
  await all;
  t.equal(loads, 4, "start + three reloads, in turn");
  await engine.stop();
});

t.test("the built hub: a changed file in rules_dir is reloaded without SIGHUP", async (t) => {
  const dir = fs.mkdtempSync(join(tmpdir(), "hub-watch-"));
  const rulesDir = join(dir, "rules.d");
  fs.mkdirSync(rulesDir);
  fs.writeFileSync(join(rulesDir, "a.yaml"), buttonRule("v1"));
  const port = await freePort();
  const config = join(dir, "hub.yaml");
  fs.writeFileSync(config, `state_dir: ${join(dir, "state")}\nbroker: { listeners: [{ host: 127.0.0.1, port: ${port} }] }\nrules_dir: ${rulesDir}\n`);
  const hub = spawnHub(["run", "--config", config]);
  killOnTeardown(t, hub);
  await hub.waitFor("hub running", { timeoutMs: 20_000 });
  fs.writeFileSync(join(rulesDir, "a.yaml"), `${buttonRule("v2")}${buttonRule("b").replace("id: button", "id: second")}`);
  await hub.waitFor(/rules reloaded kept=0 new_or_changed=2 removed=0/, { timeoutMs: 20_000 });
  fs.writeFileSync(join(rulesDir, "a.yaml"), "- id: broken\n  triggers: [\n");
  await hub.waitFor(/rules not reloaded: the old rules keep running problems=.*a\.yaml:3:1/, { stream: "both", timeoutMs: 20_000 });
  hub.kill("SIGTERM");
  t.equal((await hub.waitExit()).code, 0);
  // The broker's storage is on (the default): the rule timers live in broker.db, not in a JSON file.
  t.notOk(fs.existsSync(join(dir, "state", "rules-timers.json")), "no JSON timers file");
  const db = new Database(join(dir, "state", "broker.db"), { readonly: true });
  t.same(db.prepare("SELECT count(*) AS n FROM rule_timers").get(), { n: 0 }, "the timers table, written at stop: nothing pending");
  db.close();
});

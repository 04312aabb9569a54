// Reload (SIGHUP): unchanged rules keep timers, changed/new/removed ones are handled, a typo keeps the old rules;
// SIGHUP also re-reads the config file's own rules (a file change does not), in the engine and in the built hub.
import * as fs from "node:fs";
import { join } from "node:path";
import t from "tap";
import { memoryLogger } from "../../hub/log.js";
import { type ConfigRulesLoad, createRulesEngine as createEngine } from "../../rules/engine.js";
import { loadRulesDir } from "../../rules/load.js";
import { fakeClock } from "../support/fake-clock.js";
import { connect, end } from "../support/mqtt.js";
import { freePort, killOnTeardown, spawnHub } from "../support/spawn.js";
import { flush, rules, testBroker } from "./harness.js";

const doorRule = `
- id: door_open_too_long
  triggers: [{ trigger: state, topic: hub/door, to: open, for: 5m }]
  actions: [{ action: publish, topic: out, payload: "door open 5 min" }]
`;
const buttonRule = (payload: string) => `
- id: button
  triggers: [{ trigger: mqtt, topic: hub/button }]
  actions: [{ action: publish, topic: out, payload: "${payload}" }]
`;

t.test("reload: unchanged rules keep their timers, changed and new ones start, a typo keeps the old rules", async (t) => {
  const files = new Map<string, string>([
    ["door.yaml", doorRule],
    ["button.yaml", buttonRule("v1")],
    ["gone.yaml", buttonRule("x").replace("id: button", "id: gone").replace("hub/button", "hub/gone")],
  ]);
  const fs = { readdir: () => [...files.keys()], readFile: (p: string) => files.get(p.replace("/rules.d/", ""))! };
  const clock = fakeClock();
  const log = memoryLogger("debug");
  const tb = await testBroker(clock, log);
  const { broker } = tb;
  const out = await tb.record("out");
  const publish = (topic: string, payload: string) => tb.publish(topic, payload, true);
  const engine = createEngine({
    rules: [],
    bus: broker.bus("rules"),
    clock,
    log: log.child("rules"),
    topicsBase: "hub",
    publishStatus: false,
    loadRules: () => loadRulesDir("/rules.d", fs),
  });
  await engine.start();
  await publish("hub/door", "closed");
  await publish("hub/door", "open"); // the 5-minute count starts
  await publish("hub/button", "press");
  t.same(out, ["v1"]);

  clock.advance(2 * 60_000);
  files.set("button.yaml", buttonRule("v2"));
  files.delete("gone.yaml");
  files.set("new.yaml", buttonRule("new").replace("id: button", "id: fresh"));
  await engine.reload!();
  await flush();
  t.match(log.lines.join("\n"), /rules reloaded kept=1 new_or_changed=2 removed=1/);
  t.equal(engine.status("gone"), undefined, "removed");
  await publish("hub/button", "press");
  t.same(out.slice(1).sort(), ["new", "v2"], "the changed rule runs its new actions; the new rule runs");

  clock.advance(3 * 60_000);
  await flush();
  t.same(out.at(-1), "door open 5 min", "the unchanged rule kept its pending `for`: 2 + 3 minutes");

  files.set("button.yaml", `${buttonRule("v3")}\n  - oops`);
  files.set("door.yaml", doorRule.replace("for: 5m", "for: five"));
  await engine.reload!();
  const text = log.lines.join("\n");
  t.match(text, /ERROR .*rules not reloaded: the old rules keep running/);
  t.match(text, /\/rules\.d\/door\.yaml:3:64: \[0\]\.triggers\[0\]\.for: expected a duration/);
  t.match(text, /\/rules\.d\/button\.yaml:5:1: A block sequence may not be used as an implicit map key\\n\/rules\.d\/button\.yaml:6:3: Implicit keys/);
  await publish("hub/button", "again");
  t.same(out.slice(-2).sort(), ["new", "v2"], "the old rules still run");

  await engine.stop();
  await broker.stop();
  t.equal(clock.pending(), 0);
});

t.test("invalid rules files at start: the engine does not start", async (t) => {
  const engine = createEngine({
    rules: [],
    bus: { publish: async () => {}, subscribe: async () => () => {} },
    clock: fakeClock(),
    log: memoryLogger(),
    topicsBase: "hub",
    loadRules: () => loadRulesDir("/rules.d", { readdir: () => ["a.yaml"], readFile: () => "- id: A\n" }),
  });
  await t.rejects(engine.start(), /invalid rules:\n(.*\n)*\/rules\.d\/a\.yaml:1:7: \[0\]\.id: expected an id/);
});

t.test("SIGHUP re-reads the config file's rules; a rules file change does not; a bad config keeps the old rules", async (t) => {
  const clock = fakeClock();
  const log = memoryLogger("debug");
  const tb = await testBroker(clock, log);
  const { broker } = tb;
  const out = await tb.record("out");
  const press = () => tb.publish("hub/button", "x");
  let config: ConfigRulesLoad = { ok: true, rules: rules(buttonRule("config v1")) };
  const files = new Map([["door.yaml", doorRule]]);
  let seenByDir: string[] = [];
  let changed: () => void = () => {};
  const engine = createEngine({
    rules: rules(buttonRule("config v1")),
    bus: broker.bus("rules"),
    clock,
    log: log.child("rules"),
    topicsBase: "hub",
    publishStatus: false,
    reloadConfigRules: () => config,
    loadRules: (configRules) => {
      seenByDir = configRules.map((r) => r.id);
      return loadRulesDir("/rules.d", { readdir: () => [...files.keys()], readFile: (p) => files.get(p.replace("/rules.d/", ""))! }, configRules);
    },
    watchRules: (fn) => {
      changed = fn;
      return () => {};
    },
    reloadDelayMs: 500,
  });
  await engine.start();
  await press();
  t.same(out, ["config v1"]);
  t.same(seenByDir, ["button"], "the rules files are checked against the config's rules (ids)");

  config = { ok: true, rules: rules(buttonRule("config v2")) };
  changed();
  clock.advance(500);
  await flush();
  t.match(log.lines.join("\n"), /rules reloaded kept=2 new_or_changed=0 removed=0/, "a rules file change leaves the config's rules alone");
  await press();
  t.same(out.at(-1), "config v1");

  await engine.reload!();
  t.match(log.lines.join("\n"), /rules reloaded kept=1 new_or_changed=1 removed=0/);
  await press();
  t.same(out.at(-1), "config v2", "SIGHUP: the config's changed rule runs its new actions");

  config = { ok: false, problems: "hub.yaml:12:9: rules[0].triggers[0].trigger: expected one of mqtt, state, ..." };
  await engine.reload!();
  t.match(log.lines.join("\n"), /ERROR .*rules not reloaded: the old rules keep running problems="hub\.yaml:12:9: rules\[0\]/);
  await press();
  t.same(out.at(-1), "config v2", "a bad config file: the old rules still run");

  // An id moved from a rules file into the config: checked against the new config's rules.
  config = { ok: true, rules: [...rules(buttonRule("config v2")), ...rules(doorRule)] };
  await engine.reload!();
  t.match(log.lines.join("\n"), /rules not reloaded.*\/rules\.d\/door\.yaml:2:7: \[0\]\.id: expected an id not used by another rule \(also in the config\)/);
  files.delete("door.yaml");
  await engine.reload!();
  t.match(log.lines.join("\n"), /rules reloaded kept=1 new_or_changed=1 removed=0/);
  t.same(seenByDir, ["button", "door_open_too_long"]);

  await engine.stop();
  await broker.stop();
});

t.test("the built hub: SIGHUP reloads the config file's rules; a typo in it keeps the old rules running", async (t) => {
  const dir = t.testdir();
  const port = await freePort();
  const file = join(dir, "hub.yaml");
  const write = (payload: string, trigger = "mqtt") =>
    fs.writeFileSync(
      file,
      `state_dir: ${join(dir, "state")}\nbroker: { listeners: [{ host: 127.0.0.1, port: ${port} }] }\nrules:${buttonRule(payload).replace(/^/gm, "  ").replace("trigger: mqtt", `trigger: ${trigger}`)}`,
    );
  write("v1");
  const hub = spawnHub(["run", "--config", file]);
  killOnTeardown(t, hub);
  await hub.waitFor("hub running", { timeoutMs: 20_000 });
  const c = await connect(`mqtt://127.0.0.1:${port}`, { protocolVersion: 5 });
  const got: string[] = [];
  c.on("message", (_t, p) => got.push(p.toString()));
  await c.subscribeAsync("out", { qos: 1 });
  const pressAndSee = async (want: string) => {
    const n = got.length;
    await c.publishAsync("hub/button", "x", { qos: 1 });
    while (got.length === n) await new Promise((r) => c.once("message", r));
    return got.at(-1) === want;
  };
  t.ok(await pressAndSee("v1"));

  write("v2");
  hub.kill("SIGHUP");
  await hub.waitFor(/rules reloaded kept=0 new_or_changed=1 removed=0/, { timeoutMs: 20_000 });
  t.ok(await pressAndSee("v2"), "the changed rule runs after SIGHUP");

  write("v3", "mqt");
  hub.kill("SIGHUP");
  const line = await hub.waitFor(/rules not reloaded: the old rules keep running/, { stream: "both", timeoutMs: 20_000 });
  t.match(line, /hub\.yaml:5:27: rules\[0\]\.triggers\[0\]\.trigger: expected one of/, "file:line:col of the typo");
  t.ok(await pressAndSee("v2"), "the old rule still runs");
  await end(c);
  hub.kill("SIGTERM");
  t.equal((await hub.waitExit()).code, 0);
});

// Reload (SIGHUP): unchanged rules keep timers, changed/new/removed ones are handled, a typo keeps the old rules.
import t from "tap";
import { createBroker } from "../../hub/broker/broker.js";
import type { Message } from "../../hub/contracts.js";
import { memoryLogger } from "../../hub/log.js";
import { createRulesEngine } from "../../rules/engine.js";
import { loadRulesDir } from "../../rules/load.js";
import { defaultLimits } from "../support/broker.js";
import { fakeClock } from "../support/fake-clock.js";
import { flush } from "./harness.js";

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
  const broker = createBroker({ limits: defaultLimits(), listeners: [], sysIntervalMs: 0, version: "test", clock, log: log.child("broker") });
  await broker.start();
  const bus = broker.bus("test");
  const out: string[] = [];
  await bus.subscribe("out", (m: Message) => out.push(m.payload.toString()));
  const publish = async (topic: string, payload: string) => {
    await bus.publish({ topic, payload: Buffer.from(payload), qos: 0, retain: true });
    await flush();
  };
  const engine = createRulesEngine({
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
  const engine = createRulesEngine({
    rules: [],
    bus: { publish: async () => {}, subscribe: async () => () => {} },
    clock: fakeClock(),
    log: memoryLogger(),
    topicsBase: "hub",
    loadRules: () => loadRulesDir("/rules.d", { readdir: () => ["a.yaml"], readFile: () => "- id: A\n" }),
  });
  await t.rejects(engine.start(), /invalid rules:\n(.*\n)*\/rules\.d\/a\.yaml:1:7: \[0\]\.id: expected an id/);
});

// A sun trigger needs the config's location: without one, `hub check` (the config loader's
// cross-checks) and the rules-directory loader report each sun trigger at its file:line:col, so the
// mistake is found before the hub runs, not when the rule is armed.
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { formatProblems, loadConfigText } from "../../hub/config/load.js";
import { sunTriggerPaths } from "../../rules/describe.js";
import { formatRuleProblems, loadRulesDir } from "../../rules/load.js";
import { fakeDeps, yaml } from "../config/helpers.js";
import { runHub } from "../support/spawn.js";
import { rules } from "./harness.js";

const sunRules = [
  "rules:",
  "  - id: evening",
  "    triggers:",
  "      - { trigger: mqtt, topic: a }",
  "      - { trigger: sun, event: sunset, offset: -30m }",
  "    actions:",
  "      - action: wait",
  "        triggers:",
  "          - trigger: sun",
  "            event: dusk",
  "      - { action: publish, topic: b }",
];

t.test("hub check: a sun trigger without location is a problem at its position (also inside wait)", async (t) => {
  const r = loadConfigText(yaml(...sunRules), "c.yaml", fakeDeps());
  t.equal(r.ok, false);
  if (r.ok) return;
  t.same(formatProblems(r.problems).split("\n"), [
    "c.yaml:5:20: rules[0].triggers[1].trigger: expected location: { latitude, longitude } in the config for a sun trigger, found no location",
    "c.yaml:9:22: rules[0].actions[0].triggers[0].trigger: expected location: { latitude, longitude } in the config for a sun trigger, found no location",
  ]);
  const withLocation = loadConfigText(yaml("location: { latitude: 52.5, longitude: 13.4 }", ...sunRules), "c.yaml", fakeDeps());
  t.equal(withLocation.ok, true, withLocation.ok ? "" : formatProblems(withLocation.problems));
});

t.test("sunTriggerPaths finds every sun trigger and nothing else", async (t) => {
  const rs = rules(`
- id: a
  triggers: [{ trigger: cron, cron: "0 * * * *" }, { trigger: sun, event: sunrise }]
  actions:
    - action: if
      if: [{ condition: state, topic: x, state: sun }]
      then: [{ action: wait, triggers: [{ trigger: sun, event: sunset }] }]
`);
  t.same(sunTriggerPaths(rs), [
    [0, "triggers", 1],
    [0, "actions", 0, "then", 0, "triggers", 0],
  ]);
  t.same(sunTriggerPaths(rules("- { id: b, triggers: [{ trigger: mqtt, topic: sun }], actions: [{ action: log, message: sun }] }")), []);
});

t.test("a rules directory: a sun trigger without location is reported per file; with one it loads", async (t) => {
  const file = "- id: porch\n  triggers:\n    - { trigger: sun, event: sunset }\n  actions: [{ action: set, device: porch, payload: 'ON' }]\n";
  const fs = { readdir: () => ["porch.yaml"], readFile: () => file };
  const r = loadRulesDir("/rules.d", fs, [], { hasLocation: false });
  t.same(!r.ok && formatRuleProblems(r.problems), "/rules.d/porch.yaml:3:18: [0].triggers[0].trigger: expected location: { latitude, longitude } in the config for a sun trigger, found no location");
  t.equal(loadRulesDir("/rules.d", fs, [], { hasLocation: true }).ok, true);
  t.equal(loadRulesDir("/rules.d", fs).ok, true, "callers that do not say are not checked (hub rules check: no config)");
});

t.test("hub check (the built CLI) checks rules_dir too, with the location rule", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "hub-check-rules-"));
  const rulesDir = join(dir, "rules.d");
  mkdirSync(rulesDir);
  writeFileSync(join(rulesDir, "sun.yaml"), "- id: porch\n  triggers:\n    - { trigger: sun, event: sunset }\n  actions: [{ action: log, message: hi }]\n");
  const config = join(dir, "hub.yaml");
  writeFileSync(config, `rules_dir: ${rulesDir}\n`);
  const bad = await runHub(["check", "--config", config]);
  t.equal(bad.code, 78);
  t.match(bad.stderr, `${rulesDir}/sun.yaml:3:18: [0].triggers[0].trigger: expected location`);
  writeFileSync(config, `rules_dir: ${rulesDir}\nlocation: { latitude: 52.5, longitude: 13.4 }\n`);
  const good = await runHub(["check", "--config", config]);
  t.equal(good.code, 0, good.stderr);
});

t.test("a sun condition without location: hub check and the rules loader name it (also inside choose)", async (t) => {
  const lines = [
    "rules:",
    "  - id: porch",
    "    triggers: [{ trigger: mqtt, topic: a }]",
    "    conditions:",
    "      - { condition: sun, after: sunset, before: sunrise }",
    "    actions:",
    "      - action: choose",
    "        choices:",
    "          - conditions: [{ condition: sun, after: sunset }]",
    "            actions: [{ action: publish, topic: b }]",
  ];
  const r = loadConfigText(yaml(...lines), "c.yaml", fakeDeps());
  t.same(!r.ok && formatProblems(r.problems).split("\n"), [
    "c.yaml:5:22: rules[0].conditions[0].condition: expected location: { latitude, longitude } in the config for a sun condition, found no location",
    "c.yaml:9:39: rules[0].actions[0].choices[0].conditions[0].condition: expected location: { latitude, longitude } in the config for a sun condition, found no location",
  ]);
  t.equal(loadConfigText(yaml("location: { latitude: 52.5, longitude: 13.4 }", ...lines), "c.yaml", fakeDeps()).ok, true);
  const file = lines.slice(1).map((l) => l.slice(2)).join("\n");
  const d = loadRulesDir("/rules.d", { readdir: () => ["porch.yaml"], readFile: () => file }, [], { hasLocation: false });
  t.same(!d.ok && formatRuleProblems(d.problems).split("\n"), [
    "/rules.d/porch.yaml:4:20: [0].conditions[0].condition: expected location: { latitude, longitude } in the config for a sun condition, found no location",
    "/rules.d/porch.yaml:8:37: [0].actions[0].choices[0].conditions[0].condition: expected location: { latitude, longitude } in the config for a sun condition, found no location",
  ]);
});

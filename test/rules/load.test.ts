// Rules files and directories: parsing with file:line:col problems, unique ids across files.
import t from "tap";
import { formatRuleProblems, loadRulesDir, parseRulesText, type RulesFs } from "../../rules/load.js";
import { rules } from "./harness.js";

function memFs(files: Record<string, string>): RulesFs {
  return {
    readdir: (dir) => {
      if (dir !== "/etc/hub/rules.d") throw Object.assign(new Error("nope"), { code: "ENOENT" });
      return Object.keys(files);
    },
    readFile: (p) => {
      const f = files[p.replace("/etc/hub/rules.d/", "")];
      if (f === undefined) throw Object.assign(new Error("nope"), { code: "ENOENT" });
      return f;
    },
  };
}

const good = `
- id: a
  triggers: [{ trigger: mqtt, topic: x }]
  actions: [{ action: log, message: hi }]
`;

t.test("a rules file parses into rules", async (t) => {
  const r = parseRulesText(good, "a.yaml");
  t.ok(r.ok);
  if (r.ok) t.equal(r.rules[0]!.id, "a");
  const empty = parseRulesText("", "e.yaml");
  t.same(empty, { ok: true, rules: [] }, "an empty file holds no rules");
});

t.test("problems in a rules file, each at file:line:col", async (t) => {
  const r = parseRulesText(
    `
- id: a
  triggers:
    - { trigger: state, topic: hub/door, to: open, fro: closed }
  conditions:
    - { condition: time, after: "25:00" }
  actions:
    - action: publish
      payload: x
`,
    "/etc/hub/rules.d/door.yaml",
  );
  t.notOk(r.ok);
  if (r.ok) return;
  t.same(formatRuleProblems(r.problems).split("\n"), [
    '/etc/hub/rules.d/door.yaml:4:52: [0].triggers[0].fro: unknown key "fro"',
    '/etc/hub/rules.d/door.yaml:6:33: [0].conditions[0].after: expected a time of day such as 22:00 or 06:30:15 (24-hour, quoted), found "25:00"',
    "/etc/hub/rules.d/door.yaml:8:7: [0].actions[0].topic: expected an MQTT topic, found nothing (the key is missing)",
  ]);
  const yamlError = parseRulesText("- id: a\n  triggers: [\n", "bad.yaml");
  t.notOk(yamlError.ok);
  if (!yamlError.ok) t.match(yamlError.problems[0], { file: "bad.yaml", line: 3 });
  const notList = parseRulesText("id: a\n", "m.yaml");
  t.match(!notList.ok && formatRuleProblems(notList.problems), "m.yaml:1:1: expected a list of rules, found a mapping");
});

t.test("a directory: *.yaml files in name order, ids unique across files and the config", async (t) => {
  const fs = memFs({ "10-a.yaml": good, "20-b.yml": good.replace("id: a", "id: b"), "notes.txt": "x", ".hidden.yaml": "junk: [" });
  const r = loadRulesDir("/etc/hub/rules.d", fs);
  t.ok(r.ok);
  if (r.ok) t.same(r.rules.map((x) => x.id), ["a", "b"]);
  const dup = loadRulesDir("/etc/hub/rules.d", memFs({ "1.yaml": good, "2.yaml": `\n\n${good}` }), rules(good.replace("id: a", "id: c")));
  t.same(!dup.ok && formatRuleProblems(dup.problems), '/etc/hub/rules.d/2.yaml:4:7: [0].id: expected an id not used by another rule (also in /etc/hub/rules.d/1.yaml), found "a"');
  const withConfig = loadRulesDir("/etc/hub/rules.d", memFs({ "1.yaml": good }), rules(good));
  t.match(!withConfig.ok && formatRuleProblems(withConfig.problems), "(also in the config)");
  const missing = loadRulesDir("/nowhere", fs);
  t.same(!missing.ok && formatRuleProblems(missing.problems), "/nowhere:1:1: expected a readable directory of rules files, found ENOENT");
});

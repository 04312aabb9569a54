// `hub rules check` and `hub rules test` as a user runs them (the built CLI).
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { runHub } from "../support/spawn.js";

t.test("hub rules check: the shipped examples are valid; a typo is reported at file:line:col with 78", async (t) => {
  const ok = await runHub(["rules", "check", "rules/examples/porch-light.yaml", "rules/examples/temperature-alert.yaml"]);
  t.equal(ok.code, 0, ok.stderr);
  t.match(ok.stdout, /ok \(\d+ rules?\)/);
  const dir = mkdtempSync(join(tmpdir(), "hub-rules-"));
  const bad = join(dir, "bad.yaml");
  writeFileSync(bad, "- id: bad\n  triggers:\n    - { trigger: mqtt, topic: a/b }\n  actions:\n    - { action: publsh, topic: x }\n");
  const r = await runHub(["rules", "check", bad]);
  t.equal(r.code, 78);
  t.match(r.stderr, new RegExp(`${bad.replace(/[/.]/g, "\\$&")}:5:\\d+: .*action`));
});

t.test("hub rules test: replays a scenario and shows what fired", async (t) => {
  const r = await runHub(["rules", "test", "rules/examples/porch-light.yaml", "--events", "test/rules/fixtures/porch-evening.yaml"]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /-> hub\/porch_light\/set "ON"/);
});

t.test("hub rules without a subcommand is a usage error", async (t) => {
  const r = await runHub(["rules"]);
  t.equal(r.code, 64);
});

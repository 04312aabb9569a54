// Config and rules validation in a child process (hub/config/isolated.ts): the child's answer is the
// same data the in-process loader gives (nothing lost in the v8 copy), problems keep file:line:col,
// a child that cannot answer falls back to the hub's own process (logged), and the running hub
// (start, SIGHUP, a rules file change) never imports zod or yaml itself: a resolve hook given to
// the hub's process only (the child gets no inherited V8 flags) makes any such import fail.
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import t from "tap";
import { answer, isolatedLoader } from "../../hub/config/isolated.js";
import { loadConfigFile } from "../../hub/config/load.js";
import { memoryLogger } from "../../hub/log.js";
import { loadRulesDir } from "../../rules/load.js";
import { freePort, HUB_MAIN, killOnTeardown, spawnProcess } from "../support/spawn.js";

const rule = (id: string) => `- id: ${id}\n  triggers: [{ trigger: mqtt, topic: hub/button }]\n  actions: [{ action: publish, topic: out, payload: "on" }]\n`;

function tempDir(t: { teardown(fn: () => unknown): void }): string {
  const dir = fs.mkdtempSync(join(tmpdir(), "hub-isolated-"));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const readFile = (p: string) => fs.readFileSync(p, "utf8");

/** A temp dir with rules.d/a.yaml holding the rule `from-file`. */
function withRulesDir(t: { teardown(fn: () => unknown): void }): { dir: string; rulesDir: string } {
  const dir = tempDir(t);
  const rulesDir = join(dir, "rules.d");
  fs.mkdirSync(rulesDir);
  fs.writeFileSync(join(rulesDir, "a.yaml"), rule("from-file"));
  return { dir, rulesDir };
}

t.test("the child's config is the in-process loader's, problems keep file:line:col", async (t) => {
  const dir = tempDir(t);
  const good = join(dir, "good.yaml");
  fs.writeFileSync(
    good,
    `state_dir: ${join(dir, "state")}\nlocation: { latitude: 52.1, longitude: 5.1, time_zone: Europe/Amsterdam }\n` +
      "broker: { listeners: [{ host: 127.0.0.1, port: 18999 }] }\nrules:\n" +
      rule("a").replace(/^/gm, "  "),
  );
  const loader = isolatedLoader({ execPath: process.execPath, script: HUB_MAIN });
  const r = await loader.config(good);
  const local = loadConfigFile(good, { readFile, env: process.env });
  t.ok(r.ok && local.ok);
  if (r.ok && local.ok) t.same(r.config, local.config, "deep-equal to the in-process result");

  const bad = join(dir, "bad.yaml");
  fs.writeFileSync(bad, "broker:\n  listeners: [{ host: 127.0.0.1, port: abc }]\n");
  const b = await loader.config(bad);
  t.equal(b.ok, false);
  if (!b.ok) {
    t.match(b.problems, new RegExp(`${bad.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}:2:\\d+: broker\\.listeners\\[0\\]\\.port: expected`));
    t.equal(b.count, 1);
  }
  const missing = await loader.config(join(dir, "nope.yaml"));
  t.equal(missing.ok, false, "an unreadable file is a problem, not a failure");
});

t.test("rules files: the child checks ids against the config's rules, like loadRulesDir", async (t) => {
  const dir = tempDir(t);
  fs.writeFileSync(join(dir, "a.yaml"), rule("one") + rule("two"));
  const loader = isolatedLoader({ execPath: process.execPath, script: HUB_MAIN });
  const fsDeps = { readdir: (d: string) => fs.readdirSync(d), readFile };
  const ok = await loader.rules(dir, [], true);
  t.same(ok, loadRulesDir(dir, fsDeps, [], { hasLocation: true }));
  t.ok(ok.ok);
  const config = loadRulesDir(dir, fsDeps);
  if (!config.ok) throw new Error("fixture");
  const dup = await loader.rules(dir, config.rules.slice(1), true);
  t.equal(dup.ok, false);
  if (!dup.ok) t.match(dup.problems[0], { file: join(dir, "a.yaml"), line: 4, path: "[1].id", message: /also in the config/ });
});

t.test("rules_dir is read with the config (one child), and used once by the rules call that follows", async (t) => {
  const { dir, rulesDir } = withRulesDir(t);
  const cfg = join(dir, "hub.yaml");
  fs.writeFileSync(cfg, `state_dir: ${join(dir, "state")}\nrules_dir: ${rulesDir}\nrules:\n${rule("in-config").replace(/^/gm, "  ")}`);
  let children = 0;
  const counting = ((...args: Parameters<typeof spawn>) => {
    children++;
    return spawn(...args);
  }) as typeof spawn;
  const loader = isolatedLoader({ execPath: process.execPath, script: HUB_MAIN, spawn: counting });
  const c = await loader.config(cfg);
  if (!c.ok) throw new Error(c.problems);
  t.equal(children, 1);
  t.notOk("rules" in c, "the answer is the config alone");
  const first = await loader.rules(rulesDir, c.config.rules, false);
  t.equal(children, 1, "the rules read with the config: no second child");
  t.same(first, await answer({ kind: "rules", dir: rulesDir, others: c.config.rules, hasLocation: false }));
  fs.writeFileSync(join(rulesDir, "a.yaml"), rule("from-file") + rule("another"));
  const second = await loader.rules(rulesDir, c.config.rules, false);
  t.equal(children, 2, "used once: a later call (a rules file changed) reads afresh");
  t.equal(second.ok && second.rules.length, 2);
  await loader.config(cfg);
  await loader.rules(rulesDir, [...c.config.rules], false);
  t.equal(children, 4, "other config rules than those read with it: read afresh");
});

t.test("a child that cannot answer: logged, and the work is done in this process", async (t) => {
  const dir = tempDir(t);
  const cfg = join(dir, "hub.yaml");
  fs.writeFileSync(cfg, `state_dir: ${join(dir, "state")}\n`);
  const exits = join(dir, "exits.mjs");
  fs.writeFileSync(exits, "process.exit(3);\n");
  const hangs = join(dir, "hangs.mjs");
  fs.writeFileSync(hangs, "setInterval(() => {}, 1e9);\n");
  const expected = await answer({ kind: "config", file: cfg });
  t.ok(expected.ok);

  const log = memoryLogger();
  const r1 = await isolatedLoader({ execPath: process.execPath, script: exits, log: () => log }).config(cfg);
  t.same(r1, expected, "exited child: same answer from the fallback");
  t.match(log.lines.at(-1), /could not validate in a child process.*error="?the child exited with 3/);

  const r2 = await isolatedLoader({ execPath: process.execPath, script: hangs, log: () => log, timeoutMs: 300 }).config(cfg);
  t.same(r2, expected, "silent child: killed, same answer");
  t.match(log.lines.at(-1), /error="no answer within 300 ms"/);

  const rulesDir = join(dir, "rules.d");
  fs.mkdirSync(rulesDir);
  fs.writeFileSync(join(rulesDir, "a.yaml"), rule("one"));
  const r3 = await isolatedLoader({ execPath: join(dir, "no-such-node"), script: HUB_MAIN, log: () => log }).rules(rulesDir, [], false);
  t.same(r3, await answer({ kind: "rules", dir: rulesDir, others: [], hasLocation: false }), "spawn error: same answer");
  t.equal(r3.ok && r3.rules[0]?.id, "one");
  t.match(log.lines.at(-1), /ENOENT/);
});

t.test("the running hub never imports zod or yaml: start, SIGHUP, a rules file change", async (t) => {
  const { dir, rulesDir } = withRulesDir(t);
  // A module resolve hook for the hub's process only (an --import flag: the child gets none).
  const hooks = join(dir, "hooks.mjs");
  fs.writeFileSync(
    hooks,
    "export async function resolve(specifier, context, next) {\n" +
      '  if (/^(zod|yaml)(\\/|$)/.test(specifier)) throw new Error("forbidden in the hub process: " + specifier);\n' +
      "  return next(specifier, context);\n}\n",
  );
  const register = join(dir, "register.mjs");
  fs.writeFileSync(register, `import { register } from "node:module";\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`);
  const port = await freePort();
  const config = join(dir, "hub.yaml");
  const write = (payload: string) =>
    fs.writeFileSync(
      config,
      `state_dir: ${join(dir, "state")}\nbroker: { listeners: [{ host: 127.0.0.1, port: ${port} }] }\nrules_dir: ${rulesDir}\nrules:\n${rule("in-config").replace(/^/gm, "  ").replace('"on"', `"${payload}"`)}`,
    );
  write("v1");
  const hub = spawnProcess(process.execPath, ["--import", pathToFileURL(register).href, HUB_MAIN, "run", "--config", config]);
  killOnTeardown(t, hub);
  await hub.waitFor("hub running", { timeoutMs: 30_000 });
  t.match(hub.transcript(), /rules started rules=2/);
  write("v2");
  hub.kill("SIGHUP");
  await hub.waitFor(/rules reloaded kept=1 new_or_changed=1 removed=0/, { timeoutMs: 30_000 });
  fs.writeFileSync(join(rulesDir, "a.yaml"), rule("from-file") + rule("another"));
  await hub.waitFor(/rules reloaded kept=2 new_or_changed=1 removed=0/, { timeoutMs: 30_000 });
  fs.writeFileSync(config, fs.readFileSync(config, "utf8").replace(`port: ${port}`, "port: abc"));
  hub.kill("SIGHUP");
  await hub.waitFor(/rules not reloaded: the old rules keep running problems=.*hub\.yaml:\d+:\d+/, { stream: "both", timeoutMs: 30_000 });
  hub.kill("SIGTERM");
  t.equal((await hub.waitExit(20_000)).code, 0);
  t.notMatch(hub.transcript(), /forbidden in the hub process|could not validate in a child/);
  // The hook does work: the same hub process with the config loaded in-process would fail.
  const probe = spawnProcess(process.execPath, ["--import", pathToFileURL(register).href, HUB_MAIN, "check", "--config", config]);
  killOnTeardown(t, probe);
  await probe.waitExit(20_000);
  t.match(probe.transcript(), /forbidden in the hub process: (zod|yaml)/, "the hook refuses zod/yaml where they are imported");
});

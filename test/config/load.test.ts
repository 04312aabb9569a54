// The config loader: YAML 1.2 parsing, every problem at once with file:line:col, ${ENV}, *_file
// secrets and cross-checks.
// biome-ignore-all lint/suspicious/noTemplateCurlyInString: the tests write ${ENV} references on purpose
import t from "tap";
import { type ConfigProblem, formatProblems, type LoadResult, loadConfigFile, loadConfigText } from "../../hub/config/load.js";
import { fakeDeps, yaml } from "./helpers.js";

const FILE = "/etc/hub/config.yaml";

function problemsOf(r: LoadResult): ConfigProblem[] {
  return r.ok ? [] : r.problems;
}

function where(r: LoadResult): string[] {
  return problemsOf(r).map((p) => `${p.line}:${p.col} ${p.path}`);
}

const sensor = (name: string) => [
  `  - name: ${name}`,
  "    type: simulated_sensor",
  "    quantities:",
  "      temperature: { start: 20, min: 10, max: 30, step: 0.5 }",
];

t.test("an empty file is all defaults", async (t) => {
  const r = loadConfigText("", FILE, fakeDeps());
  if (!r.ok) return t.fail(formatProblems(r.problems));
  t.equal(r.config.hardware, "linux");
  t.equal(r.config.base_topic, "hub");
  t.equal(r.config.broker.sys_interval, 10_000);
  t.equal(r.config.broker.limits.max_packet_size, 1_048_576);
  t.equal(r.config.broker.limits.drain_timeout, 30_000);
  t.same(
    r.config.broker.listeners.map((l) => `${l.host} ${l.port}`),
    ["127.0.0.1 1883", "::1 1883"],
  );
  t.same(r.config.devices, []);
});

t.test("YAML 1.2 core schema: on/off/yes/no stay strings", async (t) => {
  const r = loadConfigText(
    yaml("devices:", "  - name: x", "    type: simulated_sensor", "    quantities:", "      on:", "        { start: 1, min: 0, max: 2, step: 1, unit: no }"),
    FILE,
    fakeDeps(),
  );
  if (!r.ok) return t.fail(formatProblems(r.problems));
  const d = r.config.devices[0]!;
  if (d.type !== "simulated_sensor") return t.fail(d.type);
  const q = d.quantities;
  t.same(Object.keys(q), ["on"], "`on` as a key is the string on");
  t.equal(q.on!.unit, "no", "`no` as a value is the string no");
  const r2 = loadConfigText("hardware: on\n", FILE, fakeDeps());
  t.equal(formatProblems(problemsOf(r2)), `${FILE}:1:11: hardware: expected one of linux, simulate, found "on"`);
  const r3 = loadConfigText("broker:\n  external:\n    url: mqtts://h\n    tls: { insecure: yes }\n", FILE, fakeDeps());
  t.match(problemsOf(r3)[0], { path: "broker.external.tls.insecure", expected: "true or false", found: '"yes"' });
});

t.test("an unknown key is reported at the key itself", async (t) => {
  const r = loadConfigText(yaml("log:", "  level: info", "  colour: true"), FILE, fakeDeps());
  const [p, ...rest] = problemsOf(r);
  t.same(rest, []);
  t.match(p, { file: FILE, line: 3, col: 3, path: "log.colour", found: 'unknown key "colour"' });
  t.match(p?.expected, /one of level, format/);
  const typo = loadConfigText(yaml("brokr:", "  sys_interval: 5s"), FILE, fakeDeps());
  t.equal(formatProblems(problemsOf(typo)), `${FILE}:1:1: brokr: expected a known key (did you mean "broker"?), found unknown key "brokr"`);
});

t.test("three different mistakes give three problems at their own lines and columns", async (t) => {
  const text = yaml(
    "hardware: simulate", //         1
    "broker:", //                    2
    "  listeners:", //               3
    "    - host: 127.0.0.1", //      4
    '      port: "abc"', //          5  wrong type
    "  sys_interval: 10", //         6  duration without unit
    "devices:", //                   7
    "  - name: garden", //           8
    "    type: simulated_sensor", // 9
    "    quantities:", //            10
    "      lux: { start: 1, min: 0, max: 9, step: 1 }", // 11
    "    colour: green", //          12 unknown key
  );
  const r = loadConfigText(text, FILE, fakeDeps());
  t.same(where(r), ["5:13 broker.listeners[0].port", "6:17 broker.sys_interval", "12:5 devices[0].colour"]);
  t.equal(
    formatProblems(problemsOf(r)),
    [
      `${FILE}:5:13: broker.listeners[0].port: expected an integer 0..65535, found "abc"`,
      `${FILE}:6:17: broker.sys_interval: expected a duration such as 250ms, 10s, 5m, 1h30m or 1d (write a unit, e.g. 10s), found 10`,
      `${FILE}:12:5: devices[0].colour: expected one of name, type, interval, quantities, deadband, heartbeat, found unknown key "colour"`,
    ].join("\n"),
  );
});

t.test("a missing key is reported at the mapping that lacks it", async (t) => {
  const r = loadConfigText(yaml("broker:", "  listeners:", "    - host: 127.0.0.1", "      protocol: mqtt"), FILE, fakeDeps());
  t.same(where(r), ["3:7 broker.listeners[0].port"]);
  t.match(problemsOf(r)[0], { found: "nothing (the key is missing)" });
});

t.test("an unknown device type is reported at its type", async (t) => {
  const r = loadConfigText(yaml("devices:", "  - name: x", "    type: relay"), FILE, fakeDeps());
  t.same(where(r), ["3:11 devices[0].type"]);
  t.match(problemsOf(r)[0], { expected: "one of simulated_sensor", found: '"relay"' });
});

t.test("YAML syntax errors and duplicate keys are problems with positions", async (t) => {
  const dup = loadConfigText(yaml("log:", "  level: info", "  level: debug"), FILE, fakeDeps());
  t.same(where(dup), ["3:3 log.level"]);
  t.match(problemsOf(dup)[0], { found: '"level" again (first on line 2)' });

  const broken = loadConfigText(yaml("log:", "  level: [info", "state_dir: x"), FILE, fakeDeps());
  t.notOk(broken.ok);
  t.ok(
    problemsOf(broken).some((p) => p.expected === "valid YAML" && p.line >= 2),
    formatProblems(problemsOf(broken)),
  );
});

t.test("a file that is not a mapping", async (t) => {
  const r = loadConfigText("- a\n- b\n", FILE, fakeDeps());
  t.equal(formatProblems(problemsOf(r)), `${FILE}:1:1: expected a mapping, found a list`);
});

t.test("${ENV} substitution", async (t) => {
  const env = { BASE: "home", PORT: "1884", EMPTY: "" };
  const r = loadConfigText(
    yaml(
      "base_topic: ${BASE}/hub",
      "state_dir: ${STATE:-/tmp/state}",
      "log:",
      "  level: ${EMPTY:-debug}",
      "broker:",
      "  listeners:",
      "    - host: 127.0.0.1",
      "      port: ${PORT}",
      "devices:",
      "  - name: x",
      "    type: simulated_sensor",
      "    quantities:",
      "      t:",
      "        start: 1",
      "        min: 0",
      "        max: 2",
      "        step: 1",
      '        unit: "$${NOT_A_VAR} ${PORT}"',
    ),
    FILE,
    fakeDeps({}, env),
  );
  if (!r.ok) return t.fail(formatProblems(r.problems));
  t.equal(r.config.base_topic, "home/hub");
  t.equal(r.config.state_dir, "/tmp/state", "default when unset");
  t.equal(r.config.log.level, "debug", "default when empty");
  t.equal(r.config.broker.listeners[0]!.port, 1884, "a number where the schema wants a number");
  const d0 = r.config.devices[0]!;
  if (d0.type !== "simulated_sensor") return t.fail(d0.type);
  t.equal(d0.quantities.t!.unit, "${NOT_A_VAR} 1884", "$${ is a literal ${; a string field stays a string");

  const typed = loadConfigText(
    yaml(
      "broker:",
      "  listeners: [{ host: localhost, port: \"${PORT}\" }]",
      "  external:",
      "    url: mqtts://h",
      "    password: ${PIN}",
      "    tls:",
      "      insecure: ${INSECURE:-false}",
    ),
    FILE,
    fakeDeps({}, { PORT: "1884", PIN: "123456" }),
  );
  if (!typed.ok) return t.fail(formatProblems(typed.problems));
  t.equal(typed.config.broker.listeners[0]!.port, 1884, "quoted in a flow mapping, still a number");
  t.equal(typed.config.broker.external?.password, "123456", "a secret of digits stays a string");
  t.equal(typed.config.broker.external?.tls?.insecure, false);
  const notNumber = loadConfigText(yaml("broker:", "  listeners:", "    - host: localhost", "      port: ${PORT}"), FILE, fakeDeps({}, { PORT: "mqtt" }));
  t.match(problemsOf(notNumber)[0], { path: "broker.listeners[0].port", line: 4, col: 13, found: '"mqtt"' });
});

t.test("an unset variable is a problem at its scalar, and only one", async (t) => {
  const r = loadConfigText(yaml("log:", "  level: info", "state_dir: /x/${NOPE}/y", "base_topic: ${A}${B:-b}${C}"), FILE, fakeDeps({}, { A: "a" }));
  t.same(where(r), ["3:12 state_dir", "4:13 base_topic"]);
  t.match(problemsOf(r)[0]?.expected, /environment variable NOPE to be set/);
  t.match(problemsOf(r)[1]?.expected, /environment variable C to be set/);
  const bad = loadConfigText("state_dir: ${1X}\n", FILE, fakeDeps());
  t.same(where(bad), ["1:12 state_dir"]);
});

const external = (...lines: string[]) => yaml("broker:", "  external:", "    url: mqtts://broker.example.net:8883", ...lines);

t.test("password_file: the file's contents become password", async (t) => {
  const deps = fakeDeps({ "/etc/hub/secrets/mqtt": "hunter2\n" });
  const r = loadConfigText(external("    username: hub", "    password_file: secrets/mqtt"), FILE, deps);
  if (!r.ok) return t.fail(formatProblems(r.problems));
  t.same(deps.reads, ["/etc/hub/secrets/mqtt"], "relative to the config file's directory");
  t.equal(r.config.broker.external?.password, "hunter2", "trailing newline trimmed");
  t.notOk("password_file" in (r.config.broker.external ?? {}), "password_file is not in the Config");

  const abs = loadConfigText(external("    password_file: ${SECRETS}/mqtt"), FILE, fakeDeps({ "/run/s/mqtt": "pw" }, { SECRETS: "/run/s" }));
  t.equal(abs.ok && abs.config.broker.external?.password, "pw", "absolute path, after ${ENV}");
});

t.test("password_file problems name the path and errno, never a secret", async (t) => {
  const secret = "hunter2-very-secret";
  const unreadable = loadConfigText(external("    password_file: /run/secrets/missing"), FILE, fakeDeps());
  t.equal(
    formatProblems(problemsOf(unreadable)),
    `${FILE}:4:20: broker.external.password_file: expected a readable file holding the password, found "/run/secrets/missing": ENOENT`,
  );

  const both = loadConfigText(
    external(`    password: ${secret}`, "    password_file: /run/secrets/mqtt"),
    FILE,
    fakeDeps({ "/run/secrets/mqtt": secret }),
  );
  t.same(where(both), ["5:5 broker.external.password_file"]);

  // A secret that reaches the schema in a wrong place is still not shown.
  const misplaced = loadConfigText(yaml(`password: ${secret}`, "log:", "  password_file: /run/secrets/mqtt"), FILE, fakeDeps({ "/run/secrets/mqtt": secret }));
  t.ok(problemsOf(misplaced).length >= 2, "both misplaced keys reported");
  for (const r of [unreadable, both, misplaced]) {
    t.notMatch(JSON.stringify(problemsOf(r)), secret);
    t.notMatch(formatProblems(problemsOf(r)), secret);
  }
  const broken = loadConfigText(yaml("broker:", "  listeners: [{ a: ${x} }]", `    password: ${secret}`, `    password: [a] ${secret}`), FILE, fakeDeps());
  t.notOk(broken.ok, "a syntax error near a secret");
  t.notMatch(formatProblems(problemsOf(broken)), secret);
  const inUrl = loadConfigText(yaml("broker:", "  external:", `    url: mqtt://hub:${secret}@host`, "    tls: { insecure: true }"), FILE, fakeDeps());
  t.same(where(inUrl), ["3:10 broker.external.url"]);
  t.notMatch(formatProblems(problemsOf(inUrl)), secret);
});

t.test("a quantity named password_file is not a secret", async (t) => {
  const r = loadConfigText(
    yaml("devices:", "  - name: x", "    type: simulated_sensor", "    quantities:", "      password_file: { start: 1, min: 0, max: 2, step: 1 }"),
    FILE,
    fakeDeps(),
  );
  t.ok(r.ok, formatProblems(problemsOf(r)));
});

t.test("cross-checks: duplicate device names, listeners, quantity ranges", async (t) => {
  const r = loadConfigText(
    yaml(
      "broker:",
      "  listeners:",
      "    - { host: 127.0.0.1, port: 1883 }",
      "    - { host: 127.0.0.1, port: 0 }",
      "    - { host: 127.0.0.1, port: 0 }",
      "    - { host: 127.0.0.1, port: 1883 }",
      "devices:",
      ...sensor("kitchen"),
      ...sensor("kitchen"),
      "  - name: cellar",
      "    type: simulated_sensor",
      "    quantities:",
      "      temperature: { start: 40, min: 10, max: 30, step: 0.5 }",
    ),
    FILE,
    fakeDeps(),
  );
  t.same(where(r), ["6:7 broker.listeners[3]", "12:11 devices[1].name", "19:29 devices[2].quantities.temperature.start"]);
  t.match(problemsOf(r)[1], { expected: "a device name not used by another device", found: '"kitchen" again (also devices[0])' });
});

t.test("cross-checks: TLS options need a TLS URL, and cert_file needs key_file", async (t) => {
  const r = loadConfigText(yaml("broker:", "  external:", "    url: mqtt://host", "    tls:", "      cert_file: client.pem"), FILE, fakeDeps());
  t.same(where(r), ["3:10 broker.external.url", "5:18 broker.external.tls.cert_file"]);
  const ok = loadConfigText(yaml("broker:", "  external:", "    url: wss://host/mqtt", "    tls: { ca_file: ca.pem }"), FILE, fakeDeps());
  t.ok(ok.ok, formatProblems(problemsOf(ok)));
});

t.test("an alias bomb is refused, not expanded", async (t) => {
  const bomb = ["a: &a [x, x, x, x, x, x, x, x, x, x]"];
  for (const n of ["b", "c", "d", "e"]) bomb.push(`${n}: &${n} [${Array(10).fill(`*${String.fromCharCode(n.charCodeAt(0) - 1)}`).join(", ")}]`);
  const r = loadConfigText(yaml(...bomb), FILE, fakeDeps());
  t.match(problemsOf(r), [{ line: 1, col: 1, expected: "valid YAML" }]);
});

t.test("loadConfigFile reads through deps; an unreadable file is one problem at 1:1", async (t) => {
  const ok = loadConfigFile(FILE, fakeDeps({ [FILE]: "hardware: simulate\n" }));
  t.equal(ok.ok && ok.config.hardware, "simulate");
  const missing = loadConfigFile("/nope.yaml", fakeDeps());
  t.equal(formatProblems(problemsOf(missing)), '/nope.yaml:1:1: expected a readable config file, found "/nope.yaml": ENOENT');
});

// `hub status` (hub/status.ts): the report's wording from a snapshot (pure), which listener it asks,
// the query against a real embedded broker, and the CLI end to end: exit 0 and the report while a
// hub runs, 69 with a clear message when nothing answers or another broker holds the port.
import { existsSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { systemClock } from "../hub/clock.js";
import { type Config, type ConfigInput, configSchema } from "../hub/config/schema.js";
import { EX_UNAVAILABLE, formatStatus, formatUptime, queryStatus, type StatusSnapshot, statusCommand, statusEndpoint } from "../hub/status.js";
import { startBroker } from "./support/broker.js";
import { freePort, HUB_MAIN, killOnTeardown, packageVersion, runHub, spawnHub } from "./support/spawn.js";

const config = (input: ConfigInput = {}): Config => configSchema.parse(input);

function snapshot(o: Partial<StatusSnapshot> = {}): StatusSnapshot {
  return {
    endpoint: "127.0.0.1:1883",
    listeners: ["127.0.0.1:1883", "[::1]:1883"],
    sys: new Map([
      ["version", "hub 0.1.0"],
      ["uptime", "93784 seconds"],
      ["clients/connected", "3"],
    ]),
    hubStatus: "online",
    availability: new Map([
      ["living_room", "online"],
      ["garden", "offline"],
    ]),
    configuredDevices: ["living_room", "garden", "shed"],
    sysEnabled: true,
    cliVersion: "0.1.0",
    ...o,
  };
}

t.test("formatUptime", async (t) => {
  t.equal(formatUptime("5 seconds"), "5s");
  t.equal(formatUptime("3725 seconds"), "1h 2m 5s");
  t.equal(formatUptime("93784 seconds"), "1d 2h 3m 4s");
  t.equal(formatUptime("86400 seconds"), "1d 0h 0m 0s");
  t.equal(formatUptime(undefined), undefined);
  t.equal(formatUptime("soon"), undefined);
});

t.test("the report shows version, uptime, listeners, clients, devices, rules, bridge", async (t) => {
  t.equal(
    formatStatus(snapshot()),
    `hub 0.1.0 is running, answering at 127.0.0.1:1883
  version    0.1.0
  uptime     1d 2h 3m 4s
  listeners  127.0.0.1:1883, [::1]:1883
  clients    3 connected
  devices    1 online, 1 offline, 1 unknown
             garden       offline
             living_room  online
             shed         unknown
  rules      none configured
  bridges    none configured
`,
  );
});

t.test("the report counts rules and names those whose last run failed", async (t) => {
  const ruleResults = new Map([
    ["fan_on", "ok"],
    ["porch_light", "error"],
    ["from_rules_dir", "conditions_failed"],
  ]);
  const out = formatStatus(snapshot({ ruleResults, configuredRules: ["fan_on", "porch_light", "never_ran"] }));
  t.match(
    out,
    `  rules      4 known, 3 have run, 1 failed on their last run
             porch_light  last run failed (its rules/porch_light/last_error topic says why)
  bridges`,
  );
});

t.test("the report shows each bridge's link state, backlog and counters", async (t) => {
  const bridges = new Map([
    ["cloud", new Map([["status", "offline"], ["queue_depth", "153"], ["oldest_age", "130"], ["sent", "1234"], ["dropped", "0"], ["reconnects", "2"]])],
    ["aws", new Map([["status", "online"], ["queue_depth", "0"], ["oldest_age", "0"], ["sent", "99"], ["dropped", "3"], ["reconnects", "0"]])],
  ]);
  const out = formatStatus(snapshot({ bridges, configuredBridges: ["cloud", "aws", "spare"] }));
  t.match(
    out,
    `  bridges    1 online, 1 offline, 1 unknown
             aws    online, 0 queued, 99 sent, 3 dropped, 0 reconnects
             cloud  offline, 153 queued (oldest 2m 10s), 1234 sent, 0 dropped, 2 reconnects
             spare  unknown, ? queued, ? sent, ? dropped, ? reconnects
`,
  );
});

t.test("the report says what is unknown and why", async (t) => {
  const out = formatStatus(snapshot({ sys: new Map(), sysEnabled: false, availability: new Map(), configuredDevices: [] }));
  t.match(out, /^hub is running, answering at 127\.0\.0\.1:1883$/m);
  t.match(out, /uptime +unknown \(\$SYS is off: broker\.sys_interval is 0s\)/);
  t.match(out, /clients +unknown/);
  t.match(out, /devices +none configured/);
});

t.test("a hub still running the previous version after an upgrade is pointed out", async (t) => {
  const out = formatStatus(snapshot({ cliVersion: "0.2.0" }));
  t.match(out, /installed is 0\.2\.0: restart to run it \(systemctl restart hub\)/);
  t.notMatch(formatStatus(snapshot()), /restart/);
});

t.test("a device seen on the broker but not in the config is listed too", async (t) => {
  const out = formatStatus(snapshot({ configuredDevices: [], availability: new Map([["old_sensor", "offline"]]) }));
  t.match(out, /devices +0 online, 1 offline\n +old_sensor {2}offline/);
});

t.test("statusEndpoint: a loopback listener, else a wildcard one through loopback", async (t) => {
  t.same(statusEndpoint(config()), { host: "127.0.0.1", port: 1883 }, "the default listeners");
  t.same(
    statusEndpoint(config({ broker: { listeners: [{ host: "192.168.1.5", port: 1883, allow_anonymous: true }, { host: "::1", port: 1884 }] } })),
    { host: "::1", port: 1884 },
  );
  t.same(statusEndpoint(config({ broker: { listeners: [{ host: "0.0.0.0", port: 1885, allow_anonymous: true }] } })), { host: "127.0.0.1", port: 1885 });
  t.same(statusEndpoint(config({ broker: { listeners: [{ host: "::", port: 1886, allow_anonymous: true }] } })), { host: "::1", port: 1886 });
  t.same(
    statusEndpoint(config({ broker: { listeners: [{ host: "192.168.1.5", port: 1887, allow_anonymous: true }] } })),
    { host: "192.168.1.5", port: 1887 },
  );
  t.match(statusEndpoint(config({ broker: { listeners: [{ host: "127.0.0.1", port: 0 }] } })), { error: /fixed port/ });
  t.match(statusEndpoint(config({ broker: { external: { url: "mqtt://nas:1883" } } })), { error: /external broker \(mqtt:\/\/nas:1883\)/ });
});

t.test("queryStatus reads $SYS and availability from a running broker", async (t) => {
  const b = await startBroker({ sysIntervalMs: 10_000 });
  t.teardown(() => b.stop());
  const bus = b.broker.bus("test");
  const retain = (topic: string, payload: string) => bus.publish({ topic, payload: Buffer.from(payload), qos: 1, retain: true });
  await retain("home/status", "online");
  await retain("home/probe/availability", "online");
  await retain("home/cellar/availability", "offline");
  await retain("home/probe/temperature", "21.5");
  await retain("home/bridge/cloud/status", "offline");
  await retain("home/bridge/cloud/queue_depth", "12");
  await retain("home/rules/fan_on/last_run", JSON.stringify({ started: 1, finished: 2, result: "error" }));
  await retain("home/rules/porch/last_run", "not json");
  const cfg = config({ base_topic: "home", bridges: [{ name: "cloud", url: "mqtt://127.0.0.1:1", topics: [{ pattern: "#" }] }], devices: [{ name: "probe", type: "simulated_sensor", quantities: { t: { start: 1, min: 0, max: 2, step: 1 } } }] });
  const r = await queryStatus(cfg, { clock: systemClock(), endpoint: { host: "127.0.0.1", port: b.port }, timeoutMs: 10_000 });
  if (!r.ok) throw new Error(r.message);
  const s = r.snapshot;
  t.equal(s.endpoint, `127.0.0.1:${b.port}`);
  t.equal(s.sys.get("version"), "hub test");
  t.match(s.sys.get("uptime"), /^\d+ seconds$/);
  t.equal(s.sys.get("clients/connected"), "0", "as of the last $SYS publication");
  t.equal(s.hubStatus, "online");
  t.same([...s.availability].sort(), [
    ["cellar", "offline"],
    ["probe", "online"],
  ]);
  t.same(s.configuredDevices, ["probe"]);
  t.same(s.configuredBridges, ["cloud"]);
  t.same([...(s.bridges?.get("cloud") ?? [])].sort(), [
    ["queue_depth", "12"],
    ["status", "offline"],
  ]);
  t.same([...(s.ruleResults ?? [])].sort(), [
    ["fan_on", "error"],
    ["porch", "unknown"],
  ], "each rule's last_run result; an unreadable one is unknown");
});

t.test("nothing listening: not ok, exit 69, a message that says what to check", async (t) => {
  const port = await freePort();
  const out: string[] = [];
  const err: string[] = [];
  const code = await statusCommand(config(), {
    clock: systemClock(),
    endpoint: { host: "127.0.0.1", port },
    stdout: (s) => out.push(s),
    stderr: (s) => err.push(s),
  });
  t.equal(code, EX_UNAVAILABLE);
  t.equal(code, 69);
  t.same(out, []);
  t.match(err.join(""), new RegExp(`not answering at 127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\)`));
  t.match(err.join(""), /systemctl status hub/);
});

t.test("another broker on the port is not taken for the hub", async (t) => {
  const b = await startBroker({ sysIntervalMs: 0 });
  t.teardown(() => b.stop());
  b.broker.core.route({ topic: "$SYS/broker/version", payload: Buffer.from("mosquitto version 2.0.11"), qos: 0, retain: true });
  const r = await queryStatus(config(), { clock: systemClock(), endpoint: { host: "127.0.0.1", port: b.port }, timeoutMs: 10_000 });
  t.equal(r.ok, false);
  if (!r.ok) t.match(r.message, /is not the hub .*mosquitto version 2\.0\.11.*holds the port/);
});

t.test("CLI: hub status while the hub runs, then after it stopped", { skip: existsSync(HUB_MAIN) ? false : "run npm run build first" }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "hub-status-"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const port = await freePort();
  const file = join(dir, "config.yaml");
  writeFileSync(
    file,
    `hardware: simulate
state_dir: ${JSON.stringify(join(dir, "state"))}
broker:
  listeners:
    - { host: 127.0.0.1, port: ${port} }
devices:
  - name: probe
    type: simulated_sensor
    quantities:
      temperature: { start: 20, min: 10, max: 30, step: 0.5 }
`,
  );
  const hub = spawnHub(["run", "--config", file]);
  killOnTeardown(t, hub);
  await hub.waitFor("hub running");
  const r = await runHub(["status", "--config", file]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, new RegExp(`^hub ${packageVersion().replace(/\./g, "\\.")} is running, answering at 127\\.0\\.0\\.1:${port}`));
  t.match(r.stdout, /uptime +\d+s/);
  t.match(r.stdout, new RegExp(`listeners +127\\.0\\.0\\.1:${port}`));
  t.match(r.stdout, /devices +1 online, 0 offline\n +probe {2}online/);
  t.match(r.stdout, /rules +none configured\n +bridges +none configured/);

  hub.kill("SIGTERM");
  t.equal((await hub.waitExit()).code, 0);
  const down = await runHub(["status", "--config", file]);
  t.equal(down.code, 69);
  t.equal(down.stdout, "");
  t.match(down.stderr, /the hub is not answering at 127\.0\.0\.1:\d+ \(ECONNREFUSED\)/);
});

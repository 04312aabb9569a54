// The production entry, dist/bundle/hub.mjs (scripts/bundle.ts; package.json bin, npm start, the
// systemd unit), driven as users drive it: it finds package.json from its own location, reports
// config errors at file:line:col, and runs a broker that carries messages between two real MQTT 5
// clients, reloads on SIGHUP and stops cleanly on SIGTERM. Catches what bundling can break:
// paths relative to import.meta.url, lazily imported chunks, packages left external or bundled.
// Needs `npm run build` (npm test builds first).
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { connect, end } from "../support/mqtt.js";
import { freePort, HUB_BUNDLE, HUB_MAIN, hubEnv, killOnTeardown, packageVersion, runProcess, spawnProcess } from "../support/spawn.js";

const EX_CONFIG = 78;

if (!existsSync(HUB_BUNDLE)) t.fail(`${HUB_BUNDLE} is missing: run \`npm run build\` (npm test does) before these tests`);

const runBundle = (args: string[]) => runProcess(process.execPath, [HUB_BUNDLE, ...args], { env: hubEnv(), timeoutMs: 30_000 });

t.test("the entry keeps main.ts's shebang (the `hub` bin runs with --max-semi-space-size=1)", async (t) => {
  const firstLine = (f: string) => readFileSync(f, "utf8").split("\n", 1)[0];
  t.equal(firstLine(HUB_BUNDLE), firstLine(HUB_MAIN));
  t.match(firstLine(HUB_BUNDLE), /^#!.*node --max-semi-space-size=1$/);
});

t.test("--version prints package.json's version", async (t) => {
  const r = await runBundle(["--version"]);
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout.trim(), packageVersion(), "the version read from ../../package.json");
});

t.test("check: a type error exits 78 and names file:line:col", async (t) => {
  const file = join(t.testdir(), "bad.yaml");
  writeFileSync(file, "hardware: simulate\nbroker:\n  limits:\n    max_packet_size: lots\n");
  const r = await runBundle(["check", "--config", file]);
  t.equal(r.code, EX_CONFIG, "exit 78 (EX_CONFIG)");
  t.match(r.stderr, new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:4:22: broker\\.limits\\.max_packet_size: expected an integer`, "m"));
  t.notMatch(r.stderr, /^\s{4}at /m, "a message, not a stack trace");
});

t.test("run --simulate: a broker between two MQTT 5 clients, SIGHUP reloads, SIGTERM exits 0", async (t) => {
  const dir = t.testdir();
  const port = await freePort();
  const file = join(dir, "hub.yaml");
  // A rule, so that the reload has something to show: it answers on `out` with `payload`.
  const write = (payload: string) =>
    writeFileSync(
      file,
      [
        "hardware: simulate",
        `state_dir: ${JSON.stringify(join(dir, "state"))}`,
        `broker: { listeners: [{ host: 127.0.0.1, port: ${port} }] }`,
        "rules:",
        "  - id: echo",
        "    triggers: [{ trigger: mqtt, topic: hub/ping }]",
        `    actions: [{ action: publish, topic: out, payload: "${payload}" }]`,
        "",
      ].join("\n"),
    );
  write("v1");
  const hub = spawnProcess(process.execPath, [HUB_BUNDLE, "run", "--config", file, "--simulate"], { env: hubEnv() });
  killOnTeardown(t, hub);
  await hub.waitFor(/hub running/, { stream: "stdout", timeoutMs: 20_000 });

  const url = `mqtt://127.0.0.1:${port}`;
  const sub = await connect(url, { protocolVersion: 5, clientId: "bundle-sub" });
  const pub = await connect(url, { protocolVersion: 5, clientId: "bundle-pub" });
  t.teardown(() => end(sub, pub));
  const got: Array<{ topic: string; payload: string }> = [];
  const next = (topic: string) =>
    new Promise<string>((resolve) => {
      const seen = got.find((m) => m.topic === topic);
      if (seen) return resolve(seen.payload);
      const on = (tp: string, p: Buffer) => {
        if (tp !== topic) return;
        sub.off("message", on);
        resolve(p.toString());
      };
      sub.on("message", on);
    });
  sub.on("message", (topic, p) => got.push({ topic, payload: p.toString() }));
  await sub.subscribeAsync(["room/temp", "out"], { qos: 1 });

  const temp = next("room/temp");
  await pub.publishAsync("room/temp", "21.5", { qos: 1 });
  t.equal(await temp, "21.5", "a message from one client reaches the other through the hub");

  const ask = async () => {
    got.length = 0;
    const answer = next("out");
    await pub.publishAsync("hub/ping", "x", { qos: 1 });
    return answer;
  };
  t.equal(await ask(), "v1");

  write("v2");
  hub.kill("SIGHUP");
  await hub.waitFor(/reloading \(SIGHUP\)/, { stream: "stdout" });
  await hub.waitFor(/rules reloaded kept=0 new_or_changed=1 removed=0/, { timeoutMs: 20_000 });
  t.equal(await ask(), "v2", "the reloaded rule answers: the reload ran in the bundle's chunks");

  await end(sub, pub);
  hub.kill("SIGTERM");
  const exit = await hub.waitExit(20_000);
  t.equal(exit.code, 0, "SIGTERM: exit 0");
  t.match(hub.out.at(-1), /hub: stopped$/);
  t.notMatch([...hub.out, ...hub.err].join("\n"), /ERROR|internal error/, "no error logged");
  if (t.passing() === false) t.comment(hub.transcript());
});

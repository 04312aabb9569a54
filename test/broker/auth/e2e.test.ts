// The acceptance, with the built hub and Debian's mosquitto clients: a listener with
// allow_anonymous: false (what a network listener gets by default) refuses an anonymous
// mosquitto_sub, a user from a mosquitto_passwd-made file gets in, and a user without read rights
// on a topic receives nothing of it, retained or live. A broken password file at start is a config
// error (exit 78, file:line).
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { freePort, HUB_MAIN, killOnTeardown, runHub, runProcess, spawnHub, spawnProcess } from "../../support/spawn.js";

if (!existsSync(HUB_MAIN)) t.fail(`${HUB_MAIN} is missing: run \`npm run build\` (npm test does) before these tests`);

function have(cmd: string): boolean {
  try {
    execFileSync(cmd, ["--help"], { stdio: "ignore" });
    return true;
  } catch (err) {
    return (err as { status?: number }).status !== undefined;
  }
}
const missing = ["mosquitto_passwd", "mosquitto_sub", "mosquitto_pub"].filter((c) => !have(c));
const skip = missing.length > 0 ? `${missing.join(", ")} not installed (apt-get install mosquitto mosquitto-clients)` : false;

function tempDir(t: { teardown(fn: () => unknown): void }): string {
  const d = mkdtempSync(join(tmpdir(), "hub-auth-e2e-"));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

function config(d: string, port: number): string {
  const file = join(d, "hub.yaml");
  writeFileSync(
    file,
    `hardware: simulate
state_dir: ${JSON.stringify(join(d, "state"))}
broker:
  listeners:
    - { host: 127.0.0.1, port: ${port}, allow_anonymous: false }
  auth:
    passwd_file: ${JSON.stringify(join(d, "passwd"))}
    acl_file: ${JSON.stringify(join(d, "acl"))}
`,
  );
  return file;
}

t.test("anonymous refused, mosquitto_passwd user admitted, no read right → nothing retained or live", { skip }, async (t) => {
  const d = tempDir(t);
  const passwd = join(d, "passwd");
  execFileSync("mosquitto_passwd", ["-c", "-b", passwd, "writer", "w-secret"]);
  execFileSync("mosquitto_passwd", ["-H", "sha512", "-b", passwd, "guest", "g-secret"]);
  writeFileSync(join(d, "acl"), "user writer\ntopic readwrite home/#\ntopic readwrite public/#\n\nuser guest\ntopic read #\ntopic deny home/secret/#\n");
  const port = await freePort();
  const hub = spawnHub(["run", "--config", config(d, port)]);
  killOnTeardown(t, hub);
  await hub.waitFor("hub running", { stream: "both" });
  const common = ["-h", "127.0.0.1", "-p", String(port)];

  const anon = await runProcess("mosquitto_sub", [...common, "-t", "#", "-C", "1", "-W", "5"], { timeoutMs: 10_000 });
  t.not(anon.code, 0, "anonymous mosquitto_sub fails");
  t.match(anon.stdout + anon.stderr, /not authori[sz]ed/i, "refused: not authorised");
  const wrong = await runProcess("mosquitto_sub", [...common, "-u", "writer", "-P", "nope", "-t", "#", "-C", "1", "-W", "5"], { timeoutMs: 10_000 });
  t.not(wrong.code, 0, "wrong password fails");
  t.match(wrong.stdout + wrong.stderr, /bad user name or password/i);

  const pub = (topic: string, msg: string, retain: boolean) =>
    runProcess("mosquitto_pub", [...common, "-u", "writer", "-P", "w-secret", "-q", "1", "-t", topic, "-m", msg, ...(retain ? ["-r"] : [])], { timeoutMs: 10_000 });
  t.equal((await pub("home/secret/code", "1234", true)).code, 0, "writer ($7$ entry) publishes");
  t.equal((await pub("public/info", "hello", true)).code, 0);

  const writerSees = await runProcess("mosquitto_sub", [...common, "-u", "writer", "-P", "w-secret", "-t", "home/secret/#", "-v", "-C", "1", "-W", "5"], { timeoutMs: 10_000 });
  t.equal(writerSees.stdout.trim(), "home/secret/code 1234", "control: the retained message is there for the writer");

  // guest ($6$ entry) may read everything but home/secret/#: subscribed to #, it gets the retained
  // public/info, then a live home/secret message and a live public marker published after it.
  const guest = spawnProcess("mosquitto_sub", [...common, "-u", "guest", "-P", "g-secret", "-t", "#", "-v", "-q", "1"], { lineBuffered: true });
  killOnTeardown(t, guest);
  await guest.waitFor("public/info hello");
  t.equal((await pub("home/secret/code", "5678", false)).code, 0);
  t.equal((await pub("public/done", "marker", false)).code, 0);
  await guest.waitFor("public/done marker");
  t.same(guest.out.filter((l) => l.startsWith("home/secret")), [], "guest received nothing of home/secret/#, retained or live");
  const direct = await runProcess("mosquitto_sub", [...common, "-u", "guest", "-P", "g-secret", "-t", "home/secret/#", "-v", "-W", "3"], { timeoutMs: 10_000 });
  t.notMatch(direct.stdout, /home\/secret/, "subscribing to it directly gets nothing either");
  t.match(direct.stdout + direct.stderr, /denied/i, "the subscription is denied");

  // SIGHUP: a broken ACL keeps the rules in force (logged with file:line); a good one is taken.
  writeFileSync(join(d, "acl"), "user writer\ntopic readwrite home/#\nuser guest\ntopik read #\n");
  hub.kill("SIGHUP");
  await hub.waitFor(/acl:4:1: expected topic, pattern or user.*keeping the previous users and access rules/, { stream: "both" });
  const still = await runProcess("mosquitto_sub", [...common, "-u", "guest", "-P", "g-secret", "-t", "public/#", "-v", "-C", "1", "-W", "5"], { timeoutMs: 10_000 });
  t.equal(still.stdout.trim(), "public/info hello", "the previous rules still apply");
  writeFileSync(join(d, "acl"), "user writer\ntopic readwrite home/#\n");
  hub.kill("SIGHUP");
  await hub.waitFor("users and access rules reloaded", { stream: "both" });
  const now = await runProcess("mosquitto_sub", [...common, "-u", "guest", "-P", "g-secret", "-t", "public/#", "-v", "-W", "3"], { timeoutMs: 10_000 });
  t.match(now.stdout + now.stderr, /denied/i, "after a good reload guest may read nothing");
  hub.kill("SIGTERM");
  t.equal((await hub.waitExit()).code, 0);
});

t.test("a malformed password file is a config error: exit 78 with file:line", async (t) => {
  const d = tempDir(t);
  writeFileSync(join(d, "passwd"), "alice:$6$Ev1e1AAwaczfbjbL$GKvLbchjSE3T94r+cVXjeOGJGjEfk+zfmUeNuD9mMD5OlDjzGiba9RzFkNRHsEZtutI66y2OSxHkp6raCnjmlg==\n\n");
  writeFileSync(join(d, "acl"), "topic read public/#\n");
  const file = config(d, 0);
  for (const cmd of ["check", "run"]) {
    const r = await runHub([cmd, "--config", file]);
    t.equal(r.code, 78, `hub ${cmd}`);
    t.match(r.stderr, new RegExp(`${join(d, "passwd").replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}:2:1: expected user:hash, found a blank line`), `hub ${cmd}: file:line:col`);
  }
});

// `hub passwd` through the built CLI: adds a user (--stdin), changes a password keeping the other
// lines byte for byte, deletes with -D, writes mode 0600 atomically (keeping the owner, group and
// mode of a file it replaces, so `sudo hub passwd` leaves /etc/hub/passwd readable by the service),
// refuses bad input with the documented exit codes; and mosquitto accepts what it writes.
import { execFileSync } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { parsePasswordFile, verifyPassword } from "../../../hub/broker/auth/passwd.js";
import { HUB_MAIN, runHub } from "../../support/spawn.js";

if (!existsSync(HUB_MAIN)) t.fail(`${HUB_MAIN} is missing: run \`npm run build\` (npm test does) before these tests`);

const EX_USAGE = 64;

function dir(t: { teardown(fn: () => unknown): void }): string {
  const d = mkdtempSync(join(tmpdir(), "hub-passwd-cli-"));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

async function check(file: string, user: string, password: string): Promise<boolean> {
  const r = parsePasswordFile(readFileSync(file, "utf8"));
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  const e = r.users.get(user);
  return e !== undefined && verifyPassword(e, Buffer.from(password));
}

t.test("add, change, delete; other lines kept; 0600; no temporary file left", async (t) => {
  const d = dir(t);
  const file = join(d, "passwd");
  const add = await runHub(["passwd", file, "alice", "--stdin", "--iterations", "1000"], { stdin: "first pass\n" });
  t.equal(add.code, 0, add.stderr);
  t.match(add.stdout, /added user alice/);
  t.equal(statSync(file).mode & 0o777, 0o600, "mode 0600");
  t.match(readFileSync(file, "utf8"), /^alice:\$7\$1000\$/);
  t.ok(await check(file, "alice", "first pass"), "password verifies");

  // Someone else's line (a mosquitto $6$ entry and a comment) stays exactly as it was.
  const other = "# kept\nbob:$6$Ev1e1AAwaczfbjbL$GKvLbchjSE3T94r+cVXjeOGJGjEfk+zfmUeNuD9mMD5OlDjzGiba9RzFkNRHsEZtutI66y2OSxHkp6raCnjmlg==\n";
  writeFileSync(file, other + readFileSync(file, "utf8"));
  const change = await runHub(["passwd", file, "alice", "--stdin"], { stdin: "second\r\n" });
  t.equal(change.code, 0, change.stderr);
  t.match(change.stdout, /changed the password of user alice/);
  const text = readFileSync(file, "utf8");
  t.ok(text.startsWith(other), "other lines unchanged, in place");
  t.match(text, /\nalice:\$7\$210000\$/, "default iteration count 210000");
  t.equal(text.match(/^alice:/gm)?.length, 1, "one line for alice");
  t.ok(await check(file, "alice", "second"), "new password (CRLF stripped)");
  t.notOk(await check(file, "alice", "first pass"), "old password gone");

  const del = await runHub(["passwd", "-D", file, "alice"]);
  t.equal(del.code, 0, del.stderr);
  t.equal(readFileSync(file, "utf8"), other, "only alice removed");
  const again = await runHub(["passwd", "--delete", file, "alice"]);
  t.equal(again.code, 1, "deleting a missing user fails");
  t.match(again.stderr, /no user "alice"/);
  t.same(readdirSync(d), ["passwd"], "no temporary files left behind");
});

const notRoot = process.getuid?.() !== 0 ? "needs root (chown to another group)" : false;
t.test("sudo hub passwd in a root:hub 0750 directory: the file is root:hub 0640; a replaced file keeps owner, group and mode", { skip: notRoot }, async (t) => {
  const d = dir(t);
  const SERVICE_GID = 4242; // stands for the hub group
  chownSync(d, 0, SERVICE_GID);
  chmodSync(d, 0o750);
  const file = join(d, "passwd");
  t.equal((await runHub(["passwd", file, "alice", "--stdin", "--iterations", "1000"], { stdin: "pw\n" })).code, 0);
  let st = statSync(file);
  t.same([st.uid, st.gid, st.mode & 0o777], [0, SERVICE_GID, 0o640], "new file: the directory's group may read it, nobody else");
  chownSync(file, 1234, SERVICE_GID);
  chmodSync(file, 0o440);
  t.equal((await runHub(["passwd", file, "bob", "--stdin", "--iterations", "1000"], { stdin: "pw\n" })).code, 0);
  st = statSync(file);
  t.same([st.uid, st.gid, st.mode & 0o777], [1234, SERVICE_GID, 0o440], "replaced file: owner, group and mode kept");
  t.ok(await check(file, "bob", "pw"));
});

t.test("mosquitto_passwd reads and updates what hub passwd wrote", { skip: hasMosquittoPasswd() ? false : "mosquitto_passwd not installed (apt-get install mosquitto)" }, async (t) => {
  const file = join(dir(t), "passwd");
  t.equal((await runHub(["passwd", file, "carol", "--stdin", "--iterations", "1000"], { stdin: "pw\n" })).code, 0);
  // mosquitto_passwd parses the whole file when it adds a user; a line it could not read would fail it.
  execFileSync("mosquitto_passwd", ["-b", file, "dave", "pw2"]);
  t.ok(await check(file, "carol", "pw"));
  t.ok(await check(file, "dave", "pw2"));
});

t.test("bad input: exit codes and messages, file untouched", async (t) => {
  const file = join(dir(t), "passwd");
  const cases: Array<[string, string[], string | undefined, number, RegExp]> = [
    ["no user", ["passwd", file], undefined, EX_USAGE, /usage: hub passwd/],
    ["colon in name", ["passwd", file, "a:b", "--stdin"], "x\n", EX_USAGE, /cannot contain ':'/],
    ["no terminal, no --stdin", ["passwd", file, "alice"], undefined, EX_USAGE, /--stdin/],
    ["empty password", ["passwd", file, "alice", "--stdin"], "\n", 1, /password is empty/],
    ["weak iterations", ["passwd", file, "alice", "--stdin", "--iterations", "10"], "x\n", EX_USAGE, /--iterations/],
  ];
  for (const [what, args, stdin, code, re] of cases) {
    const r = await runHub(args, stdin === undefined ? {} : { stdin });
    t.equal(r.code, code, what);
    t.match(r.stderr, re, what);
    t.notOk(existsSync(file), `${what}: no file written`);
  }
});

t.test("--help lists the command", async (t) => {
  const r = await runHub(["--help"]);
  t.match(r.stdout, /hub passwd FILE USER/);
  t.match(r.stdout, /hub passwd -D FILE USER/);
});

function hasMosquittoPasswd(): boolean {
  try {
    execFileSync("mosquitto_passwd", ["--help"], { stdio: "ignore" });
    return true;
  } catch (err) {
    return (err as { status?: number }).status !== undefined;
  }
}

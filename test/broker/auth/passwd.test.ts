// mosquitto password files: the hashes mosquitto_passwd writes ($7$ PBKDF2-SHA512 by default, $6$
// salted SHA-512 with -H sha512) verify with the right password and not with a wrong one; files
// with blank or malformed lines fail with their line numbers (checklist G2); what we write,
// mosquitto_passwd-compatible $7$, verifies too.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { DEFAULT_ITERATIONS, hashPassword, parseHash, parsePasswordFile, verifyPassword } from "../../../hub/broker/auth/passwd.js";

function hasMosquittoPasswd(): boolean {
  try {
    execFileSync("mosquitto_passwd", ["--help"], { stdio: "ignore" });
    return true;
  } catch (err) {
    return (err as { status?: number }).status !== undefined; // exists but exits non-zero on --help
  }
}

const entry = (line: string) => {
  const r = parsePasswordFile(`${line}\n`);
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  return [...r.users.values()][0]!;
};

t.test("files made by the real mosquitto_passwd", { skip: hasMosquittoPasswd() ? false : "mosquitto_passwd not installed (apt-get install mosquitto)" }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "hub-passwd-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, "passwd");
  execFileSync("mosquitto_passwd", ["-c", "-b", file, "alice", "s3cret pass"]); // default: $7$
  execFileSync("mosquitto_passwd", ["-H", "sha512", "-b", file, "bob", "hunter2"]); // $6$
  execFileSync("mosquitto_passwd", ["-b", file, "émile", "pässwörd"]); // UTF-8 name and password
  const text = readFileSync(file, "utf8");
  t.match(text, /^alice:\$7\$/m, "default writes $7$");
  t.match(text, /^bob:\$6\$/m, "-H sha512 writes $6$");
  const r = parsePasswordFile(text);
  t.ok(r.ok, "parses");
  if (!r.ok) return;
  t.same([...r.users.keys()], ["alice", "bob", "émile"]);
  const alice = r.users.get("alice")!;
  t.equal(alice.kind, "pbkdf2");
  t.ok(await verifyPassword(alice, Buffer.from("s3cret pass")), "$7$ right password accepted");
  t.notOk(await verifyPassword(alice, Buffer.from("s3cret pas")), "$7$ wrong password refused");
  t.notOk(await verifyPassword(alice, Buffer.from("")), "$7$ empty password refused");
  const bob = r.users.get("bob")!;
  t.equal(bob.kind, "sha512");
  t.ok(await verifyPassword(bob, Buffer.from("hunter2")), "$6$ right password accepted");
  t.notOk(await verifyPassword(bob, Buffer.from("Hunter2")), "$6$ wrong password refused");
  t.ok(await verifyPassword(r.users.get("émile")!, Buffer.from("pässwörd")), "UTF-8 password accepted");
});

t.test("fixed vectors (made by mosquitto_passwd 2.0.11)", async (t) => {
  const seven = entry("alice:$7$101$mc161BF7JOmqjvtR$aknCX9XNZ8Hn7zRaRxu8bvxX1dTItCqtjKz5nRx5fKIRjoK6lJLtf+NqSFab1ZJv0FxdR0K9Dd7ukkmha25MVA==");
  t.ok(await verifyPassword(seven, Buffer.from("secret")));
  t.notOk(await verifyPassword(seven, Buffer.from("secreT")));
  const six = entry("bob:$6$Ev1e1AAwaczfbjbL$GKvLbchjSE3T94r+cVXjeOGJGjEfk+zfmUeNuD9mMD5OlDjzGiba9RzFkNRHsEZtutI66y2OSxHkp6raCnjmlg==");
  t.ok(await verifyPassword(six, Buffer.from("hunter2")));
  t.notOk(await verifyPassword(six, Buffer.from("hunter3")));
});

t.test("what hub passwd writes: $7$, strong iteration count, 12-byte salt, verifiable", async (t) => {
  const h = await hashPassword("pw", 1000);
  t.match(h, /^\$7\$1000\$[A-Za-z0-9+/]{16}\$[A-Za-z0-9+/]{86}==$/);
  const e = parseHash(h);
  t.not(typeof e, "string");
  if (typeof e === "string") return;
  t.ok(await verifyPassword(e, Buffer.from("pw")));
  t.notOk(await verifyPassword(e, Buffer.from("pw2")));
  t.equal(DEFAULT_ITERATIONS, 210_000, "OWASP's PBKDF2-HMAC-SHA512 figure");
  t.not(await hashPassword("pw", 1000), h, "a fresh salt each time");
});

t.test("blank and malformed lines fail with their line, column and what was expected (G2); comments are fine", async (t) => {
  const good = "alice:$7$101$mc161BF7JOmqjvtR$aknCX9XNZ8Hn7zRaRxu8bvxX1dTItCqtjKz5nRx5fKIRjoK6lJLtf+NqSFab1ZJv0FxdR0K9Dd7ukkmha25MVA==";
  t.ok(parsePasswordFile(`# users\n${good}\r\n`).ok, "comment and CRLF");
  t.ok(parsePasswordFile("").ok, "an empty file has no users");
  const cases: Array<[string, string, RegExp]> = [
    ["blank line", `${good}\n\n`, /^2:1: expected user:hash, found a blank line/],
    ["whitespace line", `  \n${good}\n`, /^1:1: expected user:hash, found a blank line/],
    ["no colon", "alice\n", /^1:1: expected user:hash, found no ":"/],
    ["empty user", `:${good.slice(6)}\n`, /^1:1: expected a user name before ":", found an empty user name/],
    ["plain text", "alice:secret\n", /^1:7: user "alice": expected a hashed password .*, found plain text$/],
    ["empty hash", "alice:\n", /^1:7: user "alice": expected a hashed password .*, found nothing$/],
    ["duplicate", `${good}\n${good}\n`, /^2:1: expected each user once, found user "alice" again \(also line 1\)/],
    ["unknown scheme", "alice:$5$abc$def\n", /expected \$6\$salt\$hash/],
    ["bad iterations", `alice:$7$0$${good.split("$").slice(3).join("$")}\n`, /expected a positive iteration count after \$7\$, found "0"/],
    ["huge iterations", `alice:$7$99999999999$${good.split("$").slice(3).join("$")}\n`, /iteration count/],
    ["short hash", "alice:$6$Ev1e1AAwaczfbjbL$GKvLbchjSE3T94r+cVXjeOGJ\n", /expected a hash of 64 bytes in base64, found 18 bytes/],
    ["bad base64 salt", "alice:$6$Ev1e1AAw!czfbjbL$GKvLbchjSE3T94r+cVXjeOGJGjEfk+zfmUeNuD9mMD5OlDjzGiba9RzFkNRHsEZtutI66y2OSxHkp6raCnjmlg==\n", /salt/],
    ["argon2id", "alice:$argon2id$v=19$m=47104,t=1,p=1$abc$def\n", /argon2id/],
  ];
  for (const [what, text, re] of cases) {
    const r = parsePasswordFile(text);
    t.notOk(r.ok, `${what}: refused`);
    if (!r.ok) t.match(`${r.problems[0]!.line}:${r.problems[0]!.col}: ${r.problems[0]!.message}`, re, what);
  }
  const many = parsePasswordFile("x\n\ny\n");
  t.same(!many.ok && many.problems.map((p) => p.line), [1, 2, 3], "every problem is reported");
});

t.test("a password is hashed as mosquitto does: bytes up to the first NUL", async (t) => {
  const e = parseHash(await hashPassword("abc", 1000));
  if (typeof e === "string") throw new Error(e);
  t.ok(await verifyPassword(e, Buffer.from("abc\u0000zzz")));
});

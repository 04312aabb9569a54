// Deciding CONNECTs: anonymous vs listener, certificate user names, reserved hub: names, the cache
// of verified credentials (and that a reload empties it), the cap on hashing at once, and the
// failed-login limiter on its own (bans per key, one log line, expiry on the fake clock). Then over
// TCP: packets pipelined behind a CONNECT wait for the password check and run after it.
import t from "tap";
import { createAuthenticator, type Policy } from "../../../hub/broker/auth/authenticate.js";
import { hashPassword, parsePasswordFile } from "../../../hub/broker/auth/passwd.js";
import { createRateLimiter } from "../../../hub/broker/auth/ratelimit.js";
import type { AuthRequest, AuthResult } from "../../../hub/broker/auth/types.js";
import { RC } from "../../../hub/broker/reason-codes.js";
import { memoryLogger } from "../../../hub/log.js";
import { startBroker } from "../../support/broker.js";
import { fakeClock } from "../../support/fake-clock.js";
import { connectFrame, publishFrame, rawClient, subscribe, connectClient } from "../../support/raw-client.js";

const listener = { name: "test", allowAnonymous: false, identityAsUsername: false };
const req = (o: Partial<AuthRequest>): AuthRequest => ({ clientId: "c", username: undefined, password: undefined, address: "10.0.0.1", listener, certName: undefined, ...o });

async function users(list: Record<string, string>): Promise<Policy["passwords"]> {
  const lines = await Promise.all(Object.entries(list).map(async ([u, p]) => `${u}:${await hashPassword(p, 1000)}`));
  const r = parsePasswordFile(`${lines.join("\n")}\n`);
  if (!r.ok) throw new Error("bad");
  return r.users;
}

function make(passwords: Policy["passwords"], o: { maxPending?: number } = {}) {
  const clock = fakeClock();
  const log = memoryLogger("debug");
  const a = createAuthenticator({ passwords, acl: undefined }, { clock, log, rateLimit: { maxFailures: 3, windowMs: 60_000, banMs: 300_000 }, ...o });
  return { a, clock, log };
}
const code = (r: AuthResult) => (r.ok ? `ok ${r.username}` : `0x${r.reason.toString(16)}`);

t.test("anonymous, certificate names, reserved names, no password file", async (t) => {
  const { a } = make(await users({ alice: "pw" }));
  t.equal(code(a.authenticate(req({})) as AuthResult), "0x87", "anonymous refused where not allowed");
  t.equal(code(a.authenticate(req({ listener: { ...listener, allowAnonymous: true } })) as AuthResult), "ok undefined");
  t.equal(code(a.authenticate(req({ password: Buffer.from("x") })) as AuthResult), "0x86", "password without user name");
  const cert = { ...listener, identityAsUsername: true };
  t.equal(code(a.authenticate(req({ listener: cert, certName: "sensor-7" })) as AuthResult), "ok sensor-7", "CN is the user name");
  t.equal(code(a.authenticate(req({ listener: cert })) as AuthResult), "0x87", "no certificate name: refused");
  t.equal(code(a.authenticate(req({ listener: cert, certName: "hub:rules" })) as AuthResult), "0x87", "hub: names are reserved");
  t.equal(code(await a.authenticate(req({ username: "hub:rules", password: Buffer.from("pw") }))), "0x86", "hub: names never log in");
  t.equal(code(await a.authenticate(req({ username: "", password: Buffer.from("") }))), "0x86", "empty user name refused");
  const none = make(undefined).a;
  t.equal(code(none.authenticate(req({ username: "alice", password: Buffer.from("pw") })) as AuthResult), "0x86", "no password file: user names cannot be verified");
  t.equal(
    code(none.authenticate(req({ username: "alice", password: Buffer.from("pw"), listener: { ...listener, allowAnonymous: true } })) as AuthResult),
    "ok undefined",
    "…and on an anonymous listener the client is anonymous (gets no user's rights)",
  );
});

t.test("verified credentials are cached (synchronous next time); a policy change empties the cache", async (t) => {
  const { a } = make(await users({ alice: "pw" }));
  const first = a.authenticate(req({ username: "alice", password: Buffer.from("pw") }));
  t.ok(first instanceof Promise, "first login hashes");
  t.equal(code(await first), "ok alice");
  const second = a.authenticate(req({ username: "alice", password: Buffer.from("pw") }));
  t.notOk(second instanceof Promise, "second login answered from the cache");
  t.equal(code(second as AuthResult), "ok alice");
  t.ok(a.authenticate(req({ username: "alice", password: Buffer.from("pw!") })) instanceof Promise, "another password is not a cache hit");
  a.setPolicy({ passwords: await users({ alice: "new" }), acl: undefined });
  t.equal(a.cached, 0, "emptied on reload");
  t.equal(code(await a.authenticate(req({ username: "alice", password: Buffer.from("pw") }))), "0x86", "the old password no longer works");
  t.equal(code(await a.authenticate(req({ username: "alice", password: Buffer.from("new") }))), "ok alice");
  t.equal(code(await a.authenticate(req({ username: "bob", password: Buffer.from("new") }))), "0x86", "unknown user: same answer");
});

t.test("at most maxPending hashes at once; more are told Server Busy", async (t) => {
  const { a } = make(await users({ alice: "pw" }), { maxPending: 2 });
  const p1 = a.authenticate(req({ clientId: "1", username: "alice", password: Buffer.from("a") }));
  const p2 = a.authenticate(req({ clientId: "2", username: "alice", password: Buffer.from("b") }));
  t.equal(code(a.authenticate(req({ clientId: "3", username: "alice", password: Buffer.from("c") })) as AuthResult), "0x89");
  await Promise.all([p1, p2]);
  t.ok(a.authenticate(req({ clientId: "4", username: "alice", password: Buffer.from("d") })) instanceof Promise, "room again");
});

t.test("rate limiter: per key, one log line per ban, expires; bounded", async (t) => {
  const clock = fakeClock();
  const log = memoryLogger("debug");
  const l = createRateLimiter({ maxFailures: 3, windowMs: 10_000, banMs: 60_000, maxKeys: 100 }, clock, log);
  l.failed(["a", "x"]);
  l.failed(["a", "y"]);
  clock.advance(11_000);
  l.failed(["a", "z"]);
  t.equal(l.bannedFor(["a"]), 0, "failures outside the window do not add up");
  l.failed(["a"]);
  l.failed(["a"]);
  t.equal(l.bannedFor(["a"]), 60_000, "third failure in the window bans");
  t.equal(l.bannedFor(["b", "a"]), 60_000, "any banned key counts");
  for (let i = 0; i < 10; i++) l.failed(["a"]);
  t.equal(log.lines.filter((x) => x.includes("too many failed logins")).length, 1, "one line per ban");
  clock.advance(60_001);
  t.equal(l.bannedFor(["a"]), 0, "ban over");
  for (let i = 0; i < 1000; i++) l.failed([`k${i}`]);
  t.ok(l.size <= 100, `at most maxKeys tracked (${l.size})`);
});

t.test("over TCP: a PUBLISH pipelined behind CONNECT waits for the password check, then runs", async (t) => {
  const clock = fakeClock();
  const b = await startBroker({ clock });
  t.teardown(b.stop);
  b.broker.core.auth = createAuthenticator(
    { passwords: await users({ alice: "pw" }), acl: undefined },
    { clock, log: memoryLogger(), rateLimit: { maxFailures: 5, windowMs: 60_000, banMs: 60_000 } },
  );
  const { c: sub } = await connectClient(b.port, 5, { clientId: "sub", username: "alice", password: Buffer.from("pw") });
  await subscribe(sub, "pipe/#", 0);
  for (const [password, expect] of [["wrong", []], ["pw", ["pipe/ok"]]] as const) {
    const c = await rawClient(b.port, { version: 5 });
    t.teardown(() => c.destroy());
    c.write(Buffer.concat([connectFrame({ v: 5, clientId: `p-${password}`, username: "alice", password }), publishFrame({ v: 5, topic: password === "pw" ? "pipe/ok" : "pipe/leak", payload: "x" })]));
    const ack = await c.expectPacket("connack");
    t.equal(ack.reasonCode, password === "pw" ? 0 : RC.BAD_USERNAME_OR_PASSWORD, `${password}: CONNACK`);
    if (expect.length > 0) t.equal((await sub.expectPacket("publish")).topic, "pipe/ok", "the pipelined PUBLISH ran after CONNACK");
  }
  t.same(sub.untaken().map((p) => p.cmd), [], "nothing from the refused connection");
});

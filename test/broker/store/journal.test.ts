// The broker's durable state (hub/broker/store): every kind of state survives a restart (clean close
// and a simulated crash: a second handle on the file while the first never commits again), expiry
// counts the time the hub was down (injected clocks), caps apply on restore, a corrupt file is moved
// aside, and acks wait for the group commit (refused with 0x97 when the commit fails).
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import t, { type Test } from "tap";
import type { Clock } from "../../../hub/contracts.js";
import type { BrokerLimits } from "../../../hub/broker/core.js";
import { STATUS_TOPIC } from "../../../hub/broker/store/journal.js";
import { fakeClock } from "../../support/fake-clock.js";
import { connectClient, publish, type RawClient, subscribe } from "../../support/raw-client.js";
import { type StoreBroker, startStoreBroker } from "../../support/store-broker.js";

function dir(t: Test): string {
  const d = mkdtempSync(join(tmpdir(), "hub-broker-store-"));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

async function hub(
  t: Test,
  path: string,
  o: { clock?: Clock; limits?: Partial<BrokerLimits>; commitIntervalMs?: number; maxPageCount?: number; stopAtEnd?: boolean } = {},
): Promise<StoreBroker> {
  const h = await startStoreBroker(path, { ...o, retryIntervalMs: 5_000 });
  if (o.stopAtEnd !== false) t.teardown(h.stop);
  return h;
}

async function client(t: Test, port: number, clientId: string, o: { v?: 4 | 5; clean?: boolean; expiry?: number; will?: object } = {}) {
  const v = o.v ?? 5;
  const props = v === 5 && o.expiry !== undefined ? { sessionExpiryInterval: o.expiry } : undefined;
  const { c, connack } = await connectClient(port, v, { clientId, clean: o.clean ?? true, properties: props, will: o.will as never });
  t.teardown(() => c.destroy());
  return { c, present: connack.sessionPresent };
}

/** A round trip to the broker: everything it sent before PINGRESP has arrived. */
async function ping(c: RawClient): Promise<void> {
  c.send({ cmd: "pingreq" });
  await c.expectPacket("pingresp");
}

const rows = (path: string, sql: string): unknown[] => {
  const db = new Database(path, { readonly: true });
  try {
    return db.prepare(sql).all();
  } finally {
    db.close();
  }
};

t.test("queued messages, subscriptions and retained messages survive a clean restart, in order", async (t) => {
  const path = join(dir(t), "broker.db");
  const a = await hub(t, path);
  const sub = await client(t, a.port, "sub1", { expiry: 3600 });
  await subscribe(sub.c, [["t/#", 1], ["q2/#", 2]]);
  await sub.c.destroy();
  const pub = await client(t, a.port, "pub");
  for (let i = 0; i < 20; i++) await publish(pub.c, `t/${i}`, `m${i}`, 1);
  await publish(pub.c, "q2/x", "exactly-once", 2);
  await publish(pub.c, "r/1", "kept", 1, { retain: true });
  await publish(pub.c, "r/2", "dropped", 0, { retain: true });
  await publish(pub.c, "r/2", "", 0, { retain: true }); // deletes it
  await ping(pub.c);
  await a.stop();

  const b = await hub(t, path);
  t.match(b.lines.join("\n"), /broker state restored.*sessions=1 subscriptions=2 queued=21/);
  const s2 = await client(t, b.port, "sub1", { expiry: 3600, clean: false });
  t.equal(s2.present, true, "session present after restart");
  const got: string[] = [];
  for (let i = 0; i < 21; i++) {
    const p = await s2.c.expectPacket("publish");
    got.push(String(p.payload));
    if (p.qos === 1) s2.c.send({ cmd: "puback", messageId: p.messageId! });
    else s2.c.send({ cmd: "pubrec", messageId: p.messageId! });
  }
  t.same(got, [...Array.from({ length: 20 }, (_, i) => `m${i}`), "exactly-once"], "every queued message, in order");
  const rel = await s2.c.expectPacket("pubrel");
  s2.c.send({ cmd: "pubcomp", messageId: rel.messageId! });
  const viewer = await client(t, b.port, "viewer");
  await subscribe(viewer.c, "r/#", 1);
  const r = await viewer.c.expectPacket("publish");
  t.equal(String(r.payload), "kept");
  t.equal(r.retain, true);
  await ping(viewer.c);
  t.equal(viewer.c.untaken().filter((p) => p.cmd === "publish").length, 0, "the deleted retained message stays deleted");
  await b.stop();
  t.same(rows(path, "SELECT count(*) AS n FROM outq"), [{ n: 0 }], "acknowledged deliveries are gone from the file");
  t.same(rows(path, "SELECT count(*) AS n FROM msgs"), [{ n: 0 }], "and so are their message bodies");
});

t.test("a crash keeps what was committed: in-flight ids, PUBREL state and inbound QoS 2 ids", async (t) => {
  const path = join(dir(t), "broker.db");
  const a = await hub(t, path, { stopAtEnd: false });
  t.teardown(() => a.stop());
  const sub = await client(t, a.port, "sub1", { expiry: 3600 });
  await subscribe(sub.c, [["a", 1], ["b", 2]]);
  const pub = await client(t, a.port, "pub", { expiry: 3600 });
  await publish(pub.c, "a", "one", 1);
  await publish(pub.c, "b", "two", 2);
  const p1 = await sub.c.expectPacket("publish");
  const p2 = await sub.c.expectPacket("publish");
  sub.c.send({ cmd: "pubrec", messageId: p2.messageId! }); // QoS 2 to the subscriber: PUBREL state
  await sub.c.expectPacket("pubrel");
  // The publisher's QoS 2 flow stops after PUBREC (id 77 stays "received, not released").
  pub.c.send({ cmd: "publish", topic: "b", payload: "three", qos: 2, messageId: 77, dup: false, retain: false });
  await pub.c.expectPacket("pubrec");
  await sub.c.expectPacket("publish"); // "three", left unacknowledged
  a.store.flush();
  // Crash: the first handle never writes again; a new broker opens the same file.
  const b = await hub(t, path);
  const s2 = await client(t, b.port, "sub1", { expiry: 3600, clean: false });
  const again = await s2.c.expectPacket("publish");
  t.equal(again.messageId, p1.messageId, "in-flight QoS 1 resent with its packet id");
  t.equal(again.dup, true, "and DUP");
  const rel = await s2.c.expectPacket("pubrel");
  t.equal(rel.messageId, p2.messageId, "PUBREL resent, not the QoS 2 PUBLISH");
  const three = await s2.c.expectPacket("publish");
  t.equal(String(three.payload), "three");
  const p2again = await client(t, b.port, "pub", { expiry: 3600, clean: false });
  // The publisher resends id 77 (it never saw... it did see PUBREC, but a DUP resend must not deliver twice).
  p2again.c.send({ cmd: "publish", topic: "b", payload: "three", qos: 2, messageId: 77, dup: true, retain: false });
  const rec = await p2again.c.expectPacket("pubrec");
  t.equal(rec.messageId, 77);
  p2again.c.send({ cmd: "pubrel", messageId: 77 });
  t.equal((await p2again.c.expectPacket("pubcomp")).reasonCode ?? 0, 0, "id 77 was known: released normally");
  await ping(s2.c);
  t.equal(s2.c.untaken().filter((p) => p.cmd === "publish").length, 0, "no second copy of the QoS 2 message");
});

t.test("acks wait for the group commit; a failed commit refuses with 0x97 (v5) or closes (v3), QoS 0 flows, writes resume", async (t) => {
  const clock = fakeClock();
  const path = join(dir(t), "broker.db");
  // ~40 pages of 4 KiB: a 300 KiB message cannot be written.
  const h = await hub(t, path, { clock, commitIntervalMs: 5, maxPageCount: 40 });
  const sub = await client(t, h.port, "sub1", { expiry: 3600 });
  const subscribed = subscribe(sub.c, "t/#", 1);
  await ping(sub.c); // the SUBSCRIBE is handled; its SUBACK waits for the subscription's commit
  t.equal(sub.c.untaken().filter((p) => p.cmd === "suback").length, 0, "no SUBACK before the commit");
  clock.advance(5);
  await subscribed;
  await sub.c.destroy(); // offline: messages for it must be stored
  const pub = await client(t, h.port, "pub");
  pub.c.send({ cmd: "publish", topic: "t/small", payload: "x", qos: 1, messageId: 1, dup: false, retain: false });
  await ping(pub.c);
  t.equal(pub.c.untaken().filter((p) => p.cmd === "puback").length, 0, "no PUBACK before the commit");
  clock.advance(5);
  t.equal((await pub.c.expectPacket("puback")).messageId, 1, "PUBACK after the commit");

  pub.c.send({ cmd: "publish", topic: "t/big", payload: Buffer.alloc(300_000, 1), qos: 1, messageId: 2, dup: false, retain: false });
  pub.c.send({ cmd: "publish", topic: "t/after", payload: "y", qos: 1, messageId: 3, dup: false, retain: false });
  await ping(pub.c);
  clock.advance(5);
  const refused = await pub.c.expectPacket("puback");
  t.same([refused.messageId, refused.reasonCode], [2, 0x97], "the message that could not be stored: Quota exceeded");
  const refused2 = await pub.c.expectPacket("puback");
  t.same([refused2.messageId, refused2.reasonCode], [3, 0x97], "so is every message of that commit, in order");
  t.equal(h.store.status, "failing");
  t.match(h.lines.join("\n"), /cannot write the broker state file/);
  t.equal(h.lines.filter((l) => l.includes("cannot write the broker state file")).length, 1, "logged once");

  // While failing: QoS 1 refused at once, QoS 0 still routed to an online subscriber.
  const live = await client(t, h.port, "live");
  await subscribe(live.c, [["live/#", 0], [STATUS_TOPIC, 0]]);
  const status = await live.c.expectPacket("publish");
  t.match(String(status.payload), /^failing: SQLITE_FULL/, "the fault is reported on $SYS/broker/store/status");
  t.equal((await publish(pub.c, "t/more", "z", 1)) ?? 0, 0x97, "refused without waiting");
  await publish(pub.c, "live/x", "qos0", 0);
  t.equal(String((await live.c.expectPacket("publish")).payload), "qos0", "QoS 0 keeps flowing");
  const v3 = await client(t, h.port, "v3pub", { v: 4 });
  v3.c.send({ cmd: "publish", topic: "t/v3", payload: "v3", qos: 1, messageId: 9, dup: false, retain: false });
  const left = await v3.c.expectClose();
  t.equal(left.filter((p) => p.cmd === "puback").length, 0, "v3.1.1: closed without PUBACK");

  // The subscriber takes its messages (the big one included): nothing is left that does not fit.
  const back = await client(t, h.port, "sub1", { expiry: 3600, clean: false });
  for (let i = 0; i < 3; i++) {
    const p = await back.c.expectPacket("publish");
    back.c.send({ cmd: "puback", messageId: p.messageId! });
  }
  await ping(back.c);
  clock.advance(5_000);
  t.equal(h.store.status, "durable", "the retry committed: durable again without a restart");
  t.match(h.lines.join("\n"), /durable operation resumed/);
  t.equal(String((await live.c.expectPacket("publish")).payload), "durable");
  t.equal(await publish(pub.c, "t/ok", "ok", 0), 0);
  pub.c.send({ cmd: "publish", topic: "t/ok", payload: "ok", qos: 1, messageId: 20, dup: false, retain: false });
  await ping(pub.c);
  clock.advance(5);
  t.equal((await pub.c.expectPacket("puback")).reasonCode ?? 0, 0, "QoS 1 acknowledged again");
});

t.test("a QoS 2 PUBLISH to a persistent session leaves only once its packet id is committed, and what follows waits behind it", async (t) => {
  // Sent before the commit, a crash would bring the message back under a new packet id: a duplicate.
  const clock = fakeClock();
  const h = await hub(t, join(dir(t), "broker.db"), { clock, commitIntervalMs: 5 });
  const sub = await client(t, h.port, "durable-sub", { expiry: 3600 });
  const subscribed = subscribe(sub.c, [["q/#", 2]]);
  await ping(sub.c);
  clock.advance(5);
  await subscribed;
  const quick = await client(t, h.port, "clean-sub"); // not persistent: nothing to commit, no wait
  await subscribe(quick.c, [["q/#", 2]]);
  const pub = await client(t, h.port, "pub");
  pub.c.send({ cmd: "publish", topic: "q/two", payload: "exactly once", qos: 2, messageId: 1, dup: false, retain: false });
  await publish(pub.c, "q/zero", "after it", 0);
  await ping(sub.c);
  t.equal(sub.c.untaken().filter((p) => p.cmd === "publish").length, 0, "nothing reaches the persistent session before the commit");
  t.same(
    [String((await quick.c.expectPacket("publish")).payload), String((await quick.c.expectPacket("publish")).payload)],
    ["exactly once", "after it"],
    "the clean session gets both at once",
  );
  clock.advance(5);
  const first = await sub.c.expectPacket("publish");
  const second = await sub.c.expectPacket("publish");
  t.same([String(first.payload), first.qos, first.dup], ["exactly once", 2, false], "after the commit: the QoS 2 message, not marked DUP");
  t.same([String(second.payload), second.qos], ["after it", 0], "then the QoS 0 message published after it: order kept");
  t.same(
    rows(h.store.path, "SELECT packet_id FROM outq WHERE client_id = 'durable-sub'"),
    [{ packet_id: first.messageId }],
    "the packet id the client saw was on disk before it was sent (a reader sees only committed rows)",
  );
});

t.test("a held QoS 2 PUBLISH whose client leaves before the commit is resent once on resume; a failed commit sends it anyway", async (t) => {
  const clock = fakeClock();
  const h = await hub(t, join(dir(t), "broker.db"), { clock, commitIntervalMs: 5, maxPageCount: 40 });
  const sub = await client(t, h.port, "durable-sub", { expiry: 3600 });
  const subscribed = subscribe(sub.c, [["q/#", 2]]);
  await ping(sub.c);
  clock.advance(5);
  await subscribed;
  const pub = await client(t, h.port, "pub");

  // Held, then the client says goodbye (its session stays) before the commit.
  pub.c.send({ cmd: "publish", topic: "q/left", payload: "while away", qos: 2, messageId: 1, dup: false, retain: false });
  await ping(pub.c);
  sub.c.send({ cmd: "disconnect", reasonCode: 0 });
  const seen = await sub.c.expectClose();
  t.equal(seen.filter((p) => p.cmd === "publish").length, 0, "nothing was sent before the commit");
  clock.advance(5);
  t.same((await pub.c.expectPacket("pubrec")).reasonCode ?? 0, 0, "stored: PUBREC Success");
  const back = await client(t, h.port, "durable-sub", { expiry: 3600, clean: false });
  t.equal(back.present, true);
  const again = await back.c.expectPacket("publish");
  t.same([String(again.payload), again.qos, again.dup], ["while away", 2, true], "resent from the in-flight state, DUP as a resend");
  back.c.send({ cmd: "pubrec", messageId: again.messageId! });
  await ping(back.c);
  clock.advance(5); // PUBREL waits for the commit of the new state
  await back.c.expectPacket("pubrel");
  back.c.send({ cmd: "pubcomp", messageId: again.messageId! });
  await ping(back.c);
  t.equal(back.c.untaken().filter((p) => p.cmd === "publish").length, 0, "one copy only");

  // A commit that fails (the file is full) releases the hold: the message goes, the publisher gets 0x97.
  pub.c.send({ cmd: "publish", topic: "q/big", payload: Buffer.alloc(300_000, 2), qos: 2, messageId: 2, dup: false, retain: false });
  await ping(pub.c);
  await ping(back.c);
  t.equal(back.c.untaken().filter((p) => p.cmd === "publish").length, 0, "held while the commit is pending");
  clock.advance(5);
  const big = await back.c.expectPacket("publish");
  t.same([big.payload.length, big.qos], [300_000, 2], "sent once the commit has failed");
  const rec = await pub.c.expectPacket("pubrec");
  t.same([rec.messageId, rec.reasonCode], [2, 0x97], "and the publisher is told it was not stored");
  t.equal(h.store.status, "failing");
});

t.test("expiry and will delay count the time the hub was down", async (t) => {
  const path = join(dir(t), "broker.db");
  const start = 1_800_000_000_000;
  const c1 = fakeClock(start);
  const a = await hub(t, path, { clock: c1 });
  const will = { topic: "wills/dev", payload: Buffer.from("gone"), qos: 1, retain: true, properties: { willDelayInterval: 30 } };
  const dev = await client(t, a.port, "dev", { expiry: 60, will });
  const other = await client(t, a.port, "short", { expiry: 10 });
  await dev.c.destroy(); // abnormal: will due in 30 s, session ends in 60 s
  await other.c.destroy();
  c1.advance(1); // flush the commit timer
  await a.stop();

  // Restarted 45 s later: the will is overdue (published at once), "short" expired while down.
  const c2 = fakeClock(start + 45_000);
  const b = await hub(t, path, { clock: c2 });
  t.match(b.lines.join("\n"), /broker state restored.*sessions=1/);
  const viewer = await client(t, b.port, "viewer");
  await subscribe(viewer.c, "wills/#", 1);
  t.equal(String((await viewer.c.expectPacket("publish")).payload), "gone", "the will was published at restore");
  t.equal(b.broker.core.sessions.has("short"), false, "expired while the hub was down");
  t.equal(b.broker.core.sessions.has("dev"), true);
  c2.advance(14_999);
  t.equal(b.broker.core.sessions.has("dev"), true, "15 s left of its 60 s");
  c2.advance(2);
  t.equal(b.broker.core.sessions.has("dev"), false, "ended 60 s after it went offline");
  await b.stop();
  t.same(rows(path, "SELECT client_id FROM sessions"), [], "no session rows left (the viewer's is clean: never written)");
});

t.test("caps are enforced and counted on restore", async (t) => {
  const path = join(dir(t), "broker.db");
  const a = await hub(t, path);
  const sub = await client(t, a.port, "sub1", { expiry: 3600 });
  await subscribe(sub.c, "t/#", 1);
  await sub.c.destroy();
  const pub = await client(t, a.port, "pub");
  for (let i = 0; i < 10; i++) await publish(pub.c, `t/${i}`, `m${i}`, 1);
  for (let i = 0; i < 6; i++) await publish(pub.c, `r/${i}`, `r${i}`, 0, { retain: true });
  await ping(pub.c); // QoS 0 has no ack: make sure the broker has handled them
  await a.stop();

  const b = await hub(t, path, { limits: { maxQueuedMessages: 4, maxRetainedMessages: 3 } });
  t.match(b.lines.join("\n"), /broker state restored.*queued=4 .*retained=3 dropped=9/);
  t.equal(b.broker.core.retained.count, 3);
  t.equal(b.broker.core.stats.publishDropped, 6, "queue drops counted like live ones");
  const s2 = await client(t, b.port, "sub1", { expiry: 3600, clean: false });
  const got: string[] = [];
  for (let i = 0; i < 4; i++) {
    const p = await s2.c.expectPacket("publish");
    got.push(String(p.payload));
    s2.c.send({ cmd: "puback", messageId: p.messageId! });
  }
  t.same(got, ["m0", "m1", "m2", "m3"], "the oldest are kept, as when the queue fills live");
  await b.stop();
  t.same(rows(path, "SELECT count(*) AS n FROM retained"), [{ n: 3 }], "retained over the cap deleted from the file");
});

t.test("a corrupt file is moved aside and the broker starts clean", async (t) => {
  const d = dir(t);
  const path = join(d, "broker.db");
  writeFileSync(path, Buffer.concat([Buffer.from("this is not an SQLite file\n"), Buffer.alloc(8192, 0x5a)]));
  const h = await hub(t, path);
  t.match(h.lines.join("\n"), /WARN.*broker state file is corrupt or unreadable; moved it aside/);
  t.equal(h.store.status, "durable");
  t.ok(readdirSync(d).some((f) => f.startsWith("broker.db.corrupt-")), "moved to broker.db.corrupt-<time>");
  const pub = await client(t, h.port, "pub");
  await publish(pub.c, "r", "works", 1, { retain: true });
  await h.stop();
  t.same(rows(path, "SELECT topic FROM retained"), [{ topic: "r" }], "the fresh file works");
  t.ok(existsSync(path));
});

t.test("a subscriber that keeps up costs no message writes (stored once, never copied)", async (t) => {
  const path = join(dir(t), "broker.db");
  const h = await hub(t, path);
  const subs = [];
  for (let i = 0; i < 3; i++) {
    const s = await client(t, h.port, `s${i}`, { expiry: 3600 });
    await subscribe(s.c, "t", 1);
    subs.push(s);
  }
  await subs[2]!.c.destroy(); // one offline subscriber: the message is stored once for it
  const pub = await client(t, h.port, "pub");
  pub.c.send({ cmd: "publish", topic: "t", payload: "m", qos: 1, messageId: 1, dup: false, retain: false });
  for (const s of subs.slice(0, 2)) {
    const p = await s.c.expectPacket("publish");
    s.c.send({ cmd: "puback", messageId: p.messageId! });
    await ping(s.c);
  }
  await pub.c.expectPacket("puback");
  h.store.flush();
  t.same(rows(path, "SELECT count(*) AS n FROM msgs"), [{ n: 1 }], "one message row");
  t.same(rows(path, "SELECT client_id FROM outq"), [{ client_id: "s2" }], "one delivery row, for the offline session only");
});

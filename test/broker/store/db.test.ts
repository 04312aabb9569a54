// The broker's SQLite file format (hub/broker/store/db.ts) and the retained message's publisher
// (checklist G3: a retained message whose publisher lost write access is not replayed): the
// publisher survives a restart, including one filled in after the message was stored (a retained
// will), and a file written before the publisher column existed is migrated, not moved aside. A
// persistent session's owner (checklist C10) survives a restart too, and old files get that column.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import t, { type Test } from "tap";
import type { AccessControl, BrokerAuth, Identity } from "../../../hub/broker/auth/types.js";
import type { RetainedMessage } from "../../../hub/broker/retained.js";
import { connectClient, publish, type RawClient, subscribe } from "../../support/raw-client.js";
import { type StoreBroker, startStoreBroker } from "../../support/store-broker.js";

function dir(t: Test): string {
  const d = mkdtempSync(join(tmpdir(), "hub-broker-db-"));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

/** Everyone may read; a user may write g3/# while `writers` has them. */
function aclFor(writers: Set<string>): AccessControl {
  return {
    canPublish: (id: Identity, topic: string) => id.internal === true || (topic.startsWith("g3/") && writers.has(id.username ?? "")),
    canSubscribe: () => true,
    canReceive: () => true,
  };
}

async function hub(t: Test, path: string, writers?: Set<string>): Promise<StoreBroker> {
  const auth: BrokerAuth | undefined = writers === undefined ? undefined : { authenticate: (r) => ({ ok: true, username: r.username }), acl: aclFor(writers) };
  const h = await startStoreBroker(path, { auth });
  t.teardown(h.stop);
  return h;
}

async function client(t: Test, port: number, clientId: string, username?: string, expiry?: number): Promise<RawClient> {
  const properties = expiry === undefined ? undefined : { sessionExpiryInterval: expiry };
  const { c } = await connectClient(port, 5, { clientId, username, clean: expiry === undefined, properties });
  t.teardown(() => c.destroy());
  return c;
}

/** The CONNACK reason code for `username` on client id `clientId` resuming its session. */
async function connackFor(t: Test, port: number, clientId: string, username?: string): Promise<{ rc: number; present: boolean }> {
  try {
    const { c, connack } = await connectClient(port, 5, { clientId, username, clean: false, properties: { sessionExpiryInterval: 600 } });
    t.teardown(() => c.destroy());
    return { rc: 0, present: connack.sessionPresent };
  } catch (err) {
    const m = /0x([0-9a-f]+)/.exec(String(err));
    if (!m) throw err;
    return { rc: Number.parseInt(m[1]!, 16), present: false };
  }
}

/** Retained messages a new subscription to `filter` receives (a PINGRESP marks the end). */
async function replayed(t: Test, port: number, filter: string): Promise<string[]> {
  const c = await client(t, port, `viewer-${Math.random().toString(36).slice(2)}`);
  await subscribe(c, filter, 1);
  c.send({ cmd: "pingreq" });
  const got: string[] = [];
  for (;;) {
    const p = await c.next();
    if (p.cmd === "pingresp") return got;
    if (p.cmd !== "publish") continue;
    if (p.qos > 0) c.send({ cmd: "puback", messageId: p.messageId! });
    got.push(`${p.topic} ${String(p.payload)}`);
  }
}

t.test("a retained message's publisher survives a restart, and G3 still applies to it", async (t) => {
  const path = join(dir(t), "broker.db");
  const writers = new Set(["writer"]);
  const a = await hub(t, path, writers);
  const w = await client(t, a.port, "w1", "writer");
  t.equal(await publish(w, "g3/state", "on", 1, { retain: true }), 0);
  await a.stop();

  const b = await hub(t, path, writers);
  t.same(b.broker.core.retained.get("g3/state")?.publisher, { clientId: "w1", username: "writer" }, "publisher restored");
  t.same(await replayed(t, b.port, "g3/#"), ["g3/state on"], "replayed while the writer may write");
  await b.stop();

  const c = await hub(t, path, new Set());
  t.same(await replayed(t, c.port, "g3/#"), [], "not replayed after a restart once the writer lost write access");
});

t.test("a publisher set after the message was stored (a retained will) is written too", async (t) => {
  const path = join(dir(t), "broker.db");
  const a = await hub(t, path);
  const m: RetainedMessage = { topic: "w/x", payload: Buffer.from("gone"), qos: 1, storedAt: 0 };
  a.broker.core.retained.set(m);
  a.store.retained(m.topic, m);
  m.publisher = { clientId: "dev1", username: "hub:rules", internal: true };
  await a.stop();
  const b = await hub(t, path);
  t.same(b.broker.core.retained.get("w/x")?.publisher, { clientId: "dev1", username: "hub:rules", internal: true });
  const r = new Database(path, { readonly: true });
  t.teardown(() => r.close());
  t.same(r.prepare("SELECT publisher FROM retained WHERE topic = 'w/x'").get(), { publisher: '{"clientId":"dev1","username":"hub:rules","internal":true}' });
});

t.test("a file from before the publisher column is migrated: rows kept, the column added and used", async (t) => {
  const path = join(dir(t), "broker.db");
  const old = new Database(path);
  old.pragma("journal_mode = WAL");
  old.exec("CREATE TABLE retained (topic TEXT PRIMARY KEY, payload BLOB NOT NULL, qos INTEGER NOT NULL, props TEXT, expires_at INTEGER)");
  old.prepare("INSERT INTO retained (topic, payload, qos, props, expires_at) VALUES (?, ?, ?, ?, ?)").run("old/t", Buffer.from("kept"), 1, null, null);
  old.close();

  const a = await hub(t, path, new Set(["writer"]));
  t.notMatch(a.lines.join("\n"), /moved it aside/, "not treated as corrupt");
  t.match(a.lines.join("\n"), /broker state restored.*retained=1/);
  const kept = a.broker.core.retained.get("old/t");
  t.equal(String(kept?.payload), "kept");
  t.equal(kept?.publisher, undefined, "no publisher known for an old row");
  const w = await client(t, a.port, "w2", "writer");
  t.equal(await publish(w, "g3/new", "x", 1, { retain: true }), 0);
  await a.stop();

  const b = await hub(t, path, new Set(["writer"]));
  t.same(b.broker.core.retained.get("g3/new")?.publisher, { clientId: "w2", username: "writer" });
  t.equal(String(b.broker.core.retained.get("old/t")?.payload), "kept");
});

t.test("a persistent session's owner survives a restart: another user cannot take over its client id (C10)", async (t) => {
  const path = join(dir(t), "broker.db");
  const a = await hub(t, path, new Set());
  const alice = await client(t, a.port, "dev-1", "alice", 600);
  t.same(await subscribe(alice, "g3/#", 1), [1]);
  alice.send({ cmd: "disconnect" });
  await alice.expectClose();
  await a.stop();
  const r = new Database(path, { readonly: true });
  t.same(r.prepare("SELECT username FROM sessions WHERE client_id = 'dev-1'").get(), { username: "alice" }, "owner written");
  r.close();

  const b = await hub(t, path, new Set());
  t.equal(b.broker.core.sessions.get("dev-1")?.username, "alice", "owner restored");
  t.same(await connackFor(t, b.port, "dev-1", "bob"), { rc: 0x87, present: false }, "another user is refused (0x87)");
  t.same(await connackFor(t, b.port, "dev-1", undefined), { rc: 0x87, present: false }, "so is an anonymous client");
  t.equal([...b.broker.core.tree.subscriptionsOf(b.broker.core.sessions.get("dev-1")!)].length, 1, "the session is untouched");
  t.same(await connackFor(t, b.port, "dev-1", "alice"), { rc: 0, present: true }, "the owner resumes it");
});

t.test("an anonymous persistent session has no owner after a restart (NULL), as before it", async (t) => {
  const path = join(dir(t), "broker.db");
  const a = await hub(t, path, new Set());
  const anon = await client(t, a.port, "dev-2", undefined, 600);
  anon.send({ cmd: "disconnect" });
  await anon.expectClose();
  await a.stop();
  const b = await hub(t, path, new Set());
  t.equal(b.broker.core.sessions.get("dev-2")?.username, undefined);
  t.same(await connackFor(t, b.port, "dev-2", "carol"), { rc: 0, present: true }, "a user may take an anonymous session, as in memory");
  await b.stop();
  const c = await hub(t, path, new Set());
  t.equal(c.broker.core.sessions.get("dev-2")?.username, "carol", "the new owner is written");
});

t.test("a file from before the sessions.username column is migrated: sessions kept, without an owner", async (t) => {
  const path = join(dir(t), "broker.db");
  const old = new Database(path);
  old.pragma("journal_mode = WAL");
  old.exec("CREATE TABLE sessions (client_id TEXT PRIMARY KEY, expiry_ms INTEGER, offline_at INTEGER, will TEXT) WITHOUT ROWID");
  old.prepare("INSERT INTO sessions (client_id, expiry_ms, offline_at, will) VALUES (?, ?, ?, ?)").run("old-1", 600_000, Date.now(), null);
  old.close();
  const a = await hub(t, path, new Set());
  t.notMatch(a.lines.join("\n"), /moved it aside/, "not treated as corrupt");
  t.equal(a.broker.core.sessions.get("old-1")?.username, undefined, "kept, no owner known");
  t.same(await connackFor(t, a.port, "old-1", "dave"), { rc: 0, present: true });
  await a.stop();
  const b = await hub(t, path, new Set());
  t.equal(b.broker.core.sessions.get("old-1")?.username, "dave", "the column is used from now on");
});

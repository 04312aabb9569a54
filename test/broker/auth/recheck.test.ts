// Re-checking a stored session against the current ACL when it resumes (hub/broker/auth/recheck.ts,
// checklist G4, CVE-2021-34434) with the durable store on: messages queued for an offline session
// before its read right was revoked are not delivered, and their rows are deleted so a restart does
// not bring them back; a message already in flight (sent before the revocation) is resent as usual.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t, { type Test } from "tap";
import type { BrokerAuth, Identity } from "../../../hub/broker/auth/types.js";
import { connectClient, publish, type RawClient, subscribe } from "../../support/raw-client.js";
import { type StoreBroker, startStoreBroker } from "../../support/store-broker.js";

/** Everyone may write everything; g4/# may be read (and subscribed) only by the users in `readers`. */
function authFor(readers: Set<string>): BrokerAuth {
  const mayRead = (id: Identity, topic: string) => !topic.startsWith("g4/") || readers.has(id.username ?? "");
  return {
    authenticate: (r) => ({ ok: true, username: r.username }),
    acl: { canPublish: () => true, canSubscribe: mayRead, canReceive: mayRead },
  };
}

async function hub(t: Test, path: string, readers: Set<string>): Promise<StoreBroker> {
  const h = await startStoreBroker(path, { auth: authFor(readers) });
  t.teardown(h.stop);
  return h;
}

async function client(t: Test, port: number, clientId: string, username: string, clean: boolean): Promise<RawClient> {
  const { c } = await connectClient(port, 5, { clientId, username, clean, properties: { sessionExpiryInterval: 600 } });
  t.teardown(() => c.destroy());
  return c;
}

t.test("G4 with the store: queued before the revocation → dropped at resume and from the file; in flight → resent", async (t) => {
  const d0 = mkdtempSync(join(tmpdir(), "hub-recheck-"));
  t.teardown(() => rmSync(d0, { recursive: true, force: true }));
  const path = join(d0, "broker.db");
  const readers = new Set(["d"]);
  const a = await hub(t, path, readers);
  const p = await client(t, a.port, "pub", "p", true);

  const d = await client(t, a.port, "durable", "d", false);
  t.same(await subscribe(d, "g4/#", 1), [1]);
  t.equal(await publish(p, "g4/first", "1", 1), 0);
  const first = await d.expectPacket("publish");
  t.equal(first.topic, "g4/first", "sent while allowed; never acknowledged");
  // A DISCONNECT: the broker closes the socket once it handled it, so the session is offline now.
  d.send({ cmd: "disconnect" });
  await d.expectClose();
  t.equal(await publish(p, "g4/second", "2", 1), 0, "queued for the offline session while allowed");
  const s = a.broker.core.sessions.get("durable")!;
  t.equal(s.queue.length - s.queueHead, 1);

  readers.delete("d"); // the ACL changes while the session is offline (as after a restart)
  const back = await client(t, a.port, "durable", "d", false);
  const resent = await back.expectPacket("publish");
  t.match(resent, { topic: "g4/first", dup: true, messageId: first.messageId }, "the in-flight message is resent (DUP)");
  back.send({ cmd: "puback", messageId: resent.messageId! });
  back.send({ cmd: "pingreq" });
  const next = await back.next();
  t.equal(next.cmd, "pingresp", "nothing else: the queued message is not delivered");
  t.equal(s.queue.length - s.queueHead, 0, "and gone from the queue");
  t.match(a.lines.join("\n"), /queued messages dropped: no longer allowed by the ACL.*client=durable.*count=1/);
  back.send({ cmd: "disconnect" });
  await back.expectClose();
  await a.stop();

  // Read access back: a restart must not revive the dropped message from the file.
  readers.add("d");
  const b = await hub(t, path, readers);
  const restored = b.broker.core.sessions.get("durable");
  t.ok(restored, "the session itself is kept");
  t.equal(restored!.queue.length - restored!.queueHead, 0, "no queued message restored");
  t.equal(restored!.inflight.size, 0, "nothing in flight either (acknowledged)");
});

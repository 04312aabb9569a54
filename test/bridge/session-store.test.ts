// QoS 2 exactly-once across a hub crash (hub/bridge/session-store.ts): the store's own rules on a
// real queue file, then the whole story against Debian's mosquitto — a bridge "killed" with QoS 2
// messages in every state (PUBREL sent but PUBCOMP lost; PUBLISH lost) and a new one started on the
// same state_dir: the upstream subscriber gets every message exactly once.
import type { IPublishPacket, Packet } from "mqtt";
import t from "tap";
import { openSessionStore, sessionWriter } from "../../hub/bridge/session-store.js";
import { memoryLogger } from "../../hub/log.js";
import { collect, connect, end } from "../support/mqtt.js";
import { type Cloud, missingTools, startMosquitto } from "./fixtures/cloud.js";
import { harness, tempDir, testQueue, until } from "./fixtures/harness.js";
import { PUBCOMP, PUBLISH, packetFilter } from "./fixtures/mqtt-frames.js";

const publish = (messageId: number, topic: string): IPublishPacket => ({ cmd: "publish", topic, payload: Buffer.from("p"), qos: 2, retain: false, dup: false, messageId });

async function read(s: ReturnType<typeof openSessionStore>): Promise<Packet[]> {
  const out: Packet[] = [];
  for await (const p of s.createStream()) out.push(p as Packet);
  return out;
}

t.test("the store: PUBLISH recorded before sending, PUBREC removes the row in the same commit, restart resumes", async (t) => {
  const path = `${tempDir(t)}/q.db`;
  const q = testQueue(path);
  for (const topic of ["a", "b", "c"]) q.append({ topic, payload: Buffer.from("p"), qos: 2, retain: false });
  q.flush();
  const [ra, rb, rc] = q.peek(0, 3);
  const s = openSessionStore(q, { v5: true, log: memoryLogger(), keep: true });
  t.same(s.restored, [], "a new file has nothing in flight");
  for (const [id, r] of [[7, ra!], [8, rb!], [9, rc!]] as const) {
    s.sending(r.id);
    s.put(publish(id, r.topic), () => {});
    s.sending(undefined);
  }
  s.put({ cmd: "publish", topic: "q1", payload: Buffer.from("x"), qos: 1, retain: false, dup: false, messageId: 10 }, () => {});
  s.put({ cmd: "pubrel", messageId: 7 } as Packet, () => {}); // PUBREC for 7 came back
  t.equal(q.depth(), 2, "the row of a PUBREC'd message is gone at once");
  s.del({ messageId: 8 }, () => {}); // PUBCOMP... (8 went straight through in this story)
  t.same(
    (await read(s)).map((p) => `${p.cmd}:${(p as { messageId: number }).messageId}`),
    ["pubrel:7", "publish:9", "publish:10"],
    "resend order is first-sent first, a PUBREL keeping its PUBLISH's place",
  );
  q.close(); // the "crash": nothing else is written

  const q2 = testQueue(path);
  const s2 = openSessionStore(q2, { v5: true, log: memoryLogger(), keep: true });
  t.same(s2.restored, [
    { messageId: 7, rowId: ra!.id, cmd: "pubrel" },
    { messageId: 9, rowId: rc!.id, cmd: "publish" },
  ]);
  const again = await read(s2);
  t.match(again[1], { cmd: "publish", topic: "c", qos: 2, dup: true, messageId: 9 }, "the PUBLISH is rebuilt from its row, with DUP");
  t.equal(again.length, 2, "QoS 1 is not kept across a restart (its row is simply sent again)");
  q2.close();

  const q3 = testQueue(path);
  t.same(openSessionStore(q3, { v5: true, log: memoryLogger(), keep: false }).restored, [], "clean_start: nothing is resumed");
  q3.close();
  const q4 = testQueue(path);
  t.same(openSessionStore(q4, { v5: true, log: memoryLogger(), keep: true }).restored, [], "and the table was emptied");
  q4.close();
});

t.test("a failing session write is logged once until a write works again, never thrown", async (t) => {
  const q = testQueue(`${tempDir(t)}/q.db`);
  const log = memoryLogger();
  const write = sessionWriter(q, log, "the bridge session", "QoS 2 in flight");
  const full = () => {
    throw new Error("SQLITE_FULL: database or disk is full");
  };
  write("publish", full);
  write("pubrec", full);
  t.equal(log.lines.filter((l) => /ERROR/.test(l)).length, 1, "logged once while it keeps failing");
  t.match(log.lines.join("\n"), /cannot write the bridge session \(publish\); QoS 2 in flight is not crash-safe until it can/);
  let ran = 0;
  write("pubcomp", () => ran++);
  write("publish", full);
  t.equal(log.lines.filter((l) => /ERROR/.test(l)).length, 2, "logged again after a write worked");
  q.close();
  write("publish", () => ran++);
  t.equal(ran, 1, "nothing is written once the file is closed");
});

const missing = missingTools();
if (missing) {
  t.test("QoS 2 across a hub crash", { skip: missing }, async () => {});
} else {
  let cloud: Cloud;
  t.before(async () => {
    cloud = await startMosquitto(tempDir(t));
  });
  t.teardown(() => cloud?.stop());

  for (const v of [5, 4] as const) {
    t.test(`QoS 2 across a hub crash: each message exactly once upstream (MQTT ${v === 5 ? "5" : "3.1.1"})`, async (t) => {
      const watcher = await connect(cloud.url, { protocolVersion: 5, clientId: `watch-x2-${v}` });
      t.teardown(() => end(watcher));
      const rx = collect(watcher);
      await watcher.subscribeAsync(`c8/${v}/#`, { qos: 2 });
      const payloads = () => rx.got.map((m) => m.payload);
      const stateDir = tempDir(t);
      const cfg = { client_id: `hub-x2-${v}`, protocol_version: v, max_inflight: 32, topics: [{ pattern: "#", qos: 2, local_prefix: "x/", remote_prefix: `c8/${v}/` }] };

      const a = await harness(t, cloud.port, cfg, { stateDir, start: false });
      const up = packetFilter();
      const down = packetFilter();
      a.proxy.intercept("up", up.fn);
      a.proxy.intercept("down", down.fn);
      await a.bridge.start();
      await a.status("online");
      // 1. Five go through completely (so the packet ids the next hub picks differ from these).
      for (let i = 0; i < 5; i++) await a.pub("x/r", String(i), 2);
      await until("5 upstream and complete", () => payloads().length === 5 && a.bridge.stats().sent === 5);
      // 2. The remote gets PUBLISH and PUBREL (and delivers) but its PUBCOMPs never reach the hub.
      down.drop.add(PUBCOMP);
      for (let i = 5; i < 15; i++) await a.pub("x/r", String(i), 2);
      await until("15 delivered upstream and their PUBCOMPs lost", () => payloads().length === 15 && down.dropped.get(PUBCOMP) === 10);
      // 3. These PUBLISHes are lost on the way up.
      up.drop.add(PUBLISH);
      for (let i = 15; i < 20; i++) await a.pub("x/r", String(i), 2);
      const db = a.bridge.queue()!.db;
      const flights = () => db.prepare<[], { pubrec: number; n: number }>("SELECT pubrec, count(*) AS n FROM qos2_out GROUP BY pubrec ORDER BY pubrec").all();
      await until("5 PUBLISH in flight on disk", () => flights()[0]?.n === 5);
      t.same(flights(), [{ pubrec: 0, n: 5 }, { pubrec: 1, n: 10 }], "on disk at the crash: 5 waiting for PUBREC, 10 for PUBCOMP");
      // The rows are committed before MQTT.js writes the packets: the proxy sees them a moment later.
      await until("5 PUBLISH dropped on the way up", () => up.dropped.get(PUBLISH) === 5);
      a.bridge.queue()!.flush();
      t.equal(a.bridge.queue()!.depth(), 5, "rows whose PUBREC came back are no longer queued");

      // "kill -9": the link dies with the process, and the bridge object is abandoned without stop()
      // (its fake clock never moves again, so it never reconnects). A new hub on the same state_dir:
      a.proxy.cut();
      const b = await harness(t, cloud.port, cfg, { stateDir });
      t.match(b.log.lines.join("\n"), /resuming QoS 2 messages in flight before the restart publish=5 pubrel=10/);
      await b.pub("x/r", "end", 2);
      await until("the sentinel", () => payloads().at(-1) === "end");
      t.same(payloads(), [...Array.from({ length: 20 }, (_, i) => String(i)), "end"], "every message exactly once, in order");
      await until("all complete", () => b.bridge.stats().sent === 16);
      b.bridge.queue()!.flush();
      t.equal(b.bridge.queue()!.depth(), 0, "the queue is empty");
      t.same(flights(), [], "nothing left in flight on disk");
      t.equal(b.bridge.stats().dropped, 0, "nothing counted as dropped (a PUBCOMP for a forgotten id still means delivered)");
    });
  }
}

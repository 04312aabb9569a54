// QoS 2 from upstream across a hub crash (hub/bridge/incoming-store.ts): the store's own rules on a
// real queue file, then against Debian's mosquitto — a hub "killed" after PUBREC but before PUBREL
// (the PUBRELs are dropped on the way down), and a new hub on the same state_dir publishes each
// command locally exactly once when the remote resends its PUBREL; if the remote lost our session
// instead, the new hub publishes them anyway (the remote had already handed them over).
import type { IPublishPacket } from "mqtt";
import t, { type Test } from "tap";
import { openIncomingStore } from "../../hub/bridge/incoming-store.js";
import { memoryLogger } from "../../hub/log.js";
import { connect, end } from "../support/mqtt.js";
import { type Cloud, missingTools, startMosquitto } from "./fixtures/cloud.js";
import { harness, tempDir, testQueue, until } from "./fixtures/harness.js";
import { packetFilter } from "./fixtures/mqtt-frames.js";

const PUBREL = 6;

const publish = (messageId: number, topic: string, props?: IPublishPacket["properties"]): IPublishPacket => {
  const p: IPublishPacket = { cmd: "publish", topic, payload: Buffer.from(`p${messageId}`), qos: 2, retain: false, dup: false, messageId };
  if (props !== undefined) p.properties = props;
  return p;
};

const get = (s: ReturnType<typeof openIncomingStore>, messageId: number) =>
  new Promise<IPublishPacket | undefined>((resolve) => s.get({ cmd: "pubrel", messageId } as never, (err, p) => resolve(err ? undefined : (p as IPublishPacket))));

t.test("the store: a PUBLISH is on disk before PUBREC, found again after a restart, gone after del", async (t) => {
  const path = `${tempDir(t)}/q.db`;
  const q = testQueue(path);
  const s = openIncomingStore(q, { log: memoryLogger(), keep: true });
  t.equal(s.size(), 0);
  let acked = 0;
  s.put(publish(3, "c/a/set", { correlationData: Buffer.from([1, 2]), userProperties: { k: "v" } }), () => acked++);
  s.put(publish(4, "c/b/set"), () => acked++);
  t.equal(acked, 2, "PUBREC may go out once put() called back");
  s.del({ cmd: "pubrel", messageId: 4 } as never, () => {});
  q.close(); // the "crash"

  const q2 = testQueue(path);
  const s2 = openIncomingStore(q2, { log: memoryLogger(), keep: true });
  t.equal(s2.size(), 1);
  t.match(await get(s2, 3), { topic: "c/a/set", qos: 2, messageId: 3, properties: { userProperties: { k: "v" } } }, "rebuilt from disk");
  t.same((await get(s2, 3))?.payload, Buffer.from("p3"));
  t.same((await get(s2, 3))?.properties?.correlationData, Buffer.from([1, 2]), "binary properties survive");
  t.equal(await get(s2, 4), undefined, "a released message is not kept");
  t.same(
    s2.orphans().map((p) => p.messageId),
    [3],
  );
  q2.close();

  const q3 = testQueue(path);
  t.equal(openIncomingStore(q3, { log: memoryLogger(), keep: false }).size(), 0, "clean_start: nothing is kept");
  q3.close();
});

const missing = missingTools();
if (missing) {
  t.test("QoS 2 from upstream across a hub crash", { skip: missing }, async () => {});
} else {
  let cloud: Cloud;
  t.before(async () => {
    cloud = await startMosquitto(tempDir(t));
  });
  t.teardown(() => cloud?.stop());

  const cfg = (id: string) => ({ client_id: id, topics: [{ pattern: "+/set", direction: "in", qos: 2, local_prefix: "in/", remote_prefix: `c9/${id}/` }] });
  const want = Array.from({ length: 10 }, (_, i) => `cmd${i}`);

  /** A hub that got 10 QoS 2 commands (PUBREC sent) whose PUBRELs never arrived, then "died". */
  async function crashedHub(t: Test, id: string, stateDir: string) {
    const a = await harness(t, cloud.port, cfg(id), { stateDir, start: false });
    const down = packetFilter();
    a.proxy.intercept("down", down.fn);
    const local = await a.watch("in/#");
    await a.bridge.start();
    await a.status("online");
    await until("subscribed upstream", () => a.log.lines.some((l) => /subscribed upstream/.test(l)));
    down.drop.add(PUBREL);
    const sender = await connect(cloud.url, { protocolVersion: 5, clientId: `send-${id}` });
    t.teardown(() => end(sender));
    for (const p of want) await sender.publishAsync(`c9/${id}/lamp/set`, p, { qos: 2 });
    const held = () => a.bridge.queue()!.db.prepare<[], { n: number }>("SELECT count(*) AS n FROM qos2_in").get()!.n;
    await until("10 PUBRELs dropped", () => down.dropped.get(PUBREL) === 10);
    t.equal(held(), 10, "all 10 are on disk, waiting for PUBREL");
    t.equal(local.length, 0, "nothing published locally before PUBREL");
    // "kill -9": the link dies with the process; the bridge object is abandoned without stop().
    a.proxy.cut();
    return held;
  }

  t.test("QoS 2 from upstream: PUBREC sent, hub killed before PUBREL; the new hub publishes each once", async (t) => {
    const stateDir = tempDir(t);
    await crashedHub(t, "hub-in", stateDir);
    const b = await harness(t, cloud.port, cfg("hub-in"), { stateDir, start: false });
    const local = await b.watch("in/#");
    await b.bridge.start();
    t.match(b.log.lines.join("\n"), /QoS 2 messages from upstream received before the restart wait for their PUBREL count=10/);
    await until("10 published locally", () => local.length >= 10);
    await until("every PUBREL answered", () => b.bridge.queue()!.db.prepare<[], { n: number }>("SELECT count(*) AS n FROM qos2_in").get()!.n === 0);
    t.same(
      local.map((m) => `${m.topic} ${m.payload}`),
      want.map((p) => `in/lamp/set ${p}`),
      "each command once, in order, on the mapped topic",
    );
    t.equal(b.bridge.stats().received, 10);
  });

  t.test("QoS 2 from upstream: the remote lost our session meanwhile; the held commands are still published", async (t) => {
    const stateDir = tempDir(t);
    await crashedHub(t, "hub-in-lost", stateDir);
    // A fresh broker knows no session: CONNACK says session present = 0, so no PUBREL will come.
    const other = await startMosquitto(tempDir(t), [], "other");
    t.teardown(() => other.stop());
    const b = await harness(t, other.port, cfg("hub-in-lost"), { stateDir, start: false });
    const local = await b.watch("in/#");
    await b.bridge.start();
    await until("10 published locally", () => local.length >= 10);
    t.same(
      local.map((m) => `${m.payload}`),
      want,
    );
    t.match(b.log.lines.join("\n"), /the remote lost our session; publishing the QoS 2 messages it had already handed over count=10/);
    t.equal(b.bridge.queue()!.db.prepare<[], { n: number }>("SELECT count(*) AS n FROM qos2_in").get()!.n, 0, "and forgotten");
  });
}

// Live traffic beside a backlog (hub/bridge/live-lane.ts): which rows the lane may send, and end to
// end against mosquitto, that a reading taken after the reconnect goes up while the backlog is still
// stuck in flight, with order kept per topic.
import t, { type Test } from "tap";
import { liveLane } from "../../hub/bridge/live-lane.js";
import type { Queue } from "../../hub/bridge/queue.js";
import { collect, connect, end } from "../support/mqtt.js";
import { type Cloud, missingTools, startMosquitto } from "./fixtures/cloud.js";
import { harness, tempDir, testQueue, until } from "./fixtures/harness.js";
import { packetFilter } from "./fixtures/mqtt-frames.js";

const open = (t: Test): Queue => {
  const q = testQueue(`${tempDir(t)}/q.db`);
  t.teardown(() => q.close());
  return q;
};
let serial = 0;
/** Appends n messages on `topic`, payloads <topic><serial>. */
const add = (q: Queue, topic: string, n = 1) => {
  for (let i = 0; i < n; i++) q.append({ topic, payload: Buffer.from(`${topic}${serial++}`), qos: 1, retain: false });
  q.flush();
};

t.test("the lane takes only rows queued after it opened, on topics with nothing in the backlog", async (t) => {
  const q = open(t);
  add(q, "a", 10);
  add(q, "b", 5);
  const backlogEnd = q.lastId();
  const lane = liveLane();
  lane.open(q, 8);
  t.equal(lane.share(), 2, "a quarter of the window is reserved");
  add(q, "c"); // c15
  add(q, "a"); // a16: a backlogged topic, must wait for its older messages
  add(q, "d"); // d17
  add(q, "c"); // c18
  const payloads = (rows: { payload: Buffer }[]) => rows.map((r) => r.payload.toString());
  t.same(payloads(lane.take(q, 0, 2)), ["c15", "d17"], "in queue order, skipping 'a', at most `room`");
  t.same(payloads(lane.take(q, 0, 5)), ["c18"], "then the rest");
  t.same(lane.take(q, 0, 5), [], "nothing more for now");
  add(q, "e");
  t.same(payloads(lane.take(q, backlogEnd - 1, 5)), ["e19"], "open while the backlog cursor is before the lane's start");
  add(q, "f");
  t.same(lane.take(q, backlogEnd, 5), [], "once the backlog cursor reached it, the lane takes nothing");
  t.equal(lane.share(), 0, "it is closed: one FIFO again");
});

t.test("no lane without a backlog, or with a window under 4", async (t) => {
  const q = open(t);
  add(q, "a", 8);
  const lane = liveLane();
  lane.open(q, 8);
  t.equal(lane.share(), 0, "8 queued for a window of 8 is no backlog");
  lane.open(q, 3);
  t.equal(lane.share(), 0, "a window of 3 keeps all its slots for the backlog");
});

const missing = missingTools();
if (missing) {
  t.test("live traffic beside a backlog", { skip: missing }, async () => {});
} else {
  let cloud: Cloud;
  t.before(async () => {
    cloud = await startMosquitto(tempDir(t));
  });
  t.teardown(() => cloud?.stop());

  t.test("a reading taken after the reconnect goes up while the backlog is stuck; order holds per topic", async (t) => {
    const watcher = await connect(cloud.url, { protocolVersion: 5, clientId: "watch-live" });
    t.teardown(() => end(watcher));
    const rx = collect(watcher);
    await watcher.subscribeAsync("cl/#", { qos: 1 });
    const h = await harness(t, cloud.port, {
      client_id: "hub-live",
      // No status message upstream: its PUBACK, lost below, would hold up MQTT.js's resend at reconnect.
      status_topic: false,
      max_inflight: 8,
      topics: [{ pattern: "#", local_prefix: "l/", remote_prefix: "cl/" }],
    });
    h.proxy.cut();
    await h.status("offline");
    for (let i = 0; i < 100; i++) await h.pub("l/old", String(i));
    // From the next connection on, the remote's PUBACKs are lost: the backlog fills its 6 slots and stays.
    const down = packetFilter();
    down.drop.add(4);
    h.proxy.intercept("down", down.fn);
    h.proxy.restore();
    await h.reconnect();
    const on = (topic: string) => rx.got.filter((m) => m.topic === topic).map((m) => m.payload);
    await rx.count(6);
    await h.pub("l/now", "live");
    await h.pub("l/old", "late"); // same topic as the backlog: waits its turn
    // (With a strict FIFO this never comes: the backlog's unacknowledged messages fill the window.)
    await until("the live reading upstream", () => rx.got.length >= 7);
    t.same(on("cl/now"), ["live"], "the live reading went up at once");
    t.equal(on("cl/old").length, 6, "while the backlog still had only its 6 slots in flight");
    // Let the acknowledgements through again; the next connection resends what was in flight.
    down.drop.clear();
    h.proxy.cut();
    await h.status("offline");
    h.proxy.restore();
    await h.reconnect();
    await until("all of the backlog and the late one", () => new Set(on("cl/old")).size === 101);
    const firsts = on("cl/old").filter((p, i, all) => all.indexOf(p) === i);
    t.same(firsts, [...Array.from({ length: 100 }, (_, i) => String(i)), "late"], "the backlogged topic kept its order, the late one last");
  });
}

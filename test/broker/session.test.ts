// Session state: the packet-id tables (outbound in flight, inbound QoS 2) are made on first use
// (an idle QoS 0 session never needs them: memory per idle connection, issue 3) and behave as
// the Map and Set they are; clearSession empties them and they work again afterwards.
import t from "tap";
import { clearSession, createSession, type InflightEntry } from "../../hub/broker/session.js";

const entry = (id: number): InflightEntry => ({
  msg: { topic: "a", payload: Buffer.from("x"), qos: 1, retain: false } as InflightEntry["msg"],
  qos: 1,
  retain: false,
  id,
  state: "publish",
});

t.test("packet-id tables are the same Map and Set on every read", async (t) => {
  const s = createSession("c");
  t.equal(s.inflight.size, 0);
  t.equal(s.inboundQos2.size, 0);
  s.inflight.set(1, entry(1));
  s.inboundQos2.add(7);
  t.equal(s.inflight, s.inflight, "one Map");
  t.equal(s.inflight.get(1)?.id, 1);
  t.ok(s.inboundQos2.has(7));
});

t.test("clearSession empties them; they are usable afterwards", async (t) => {
  const s = createSession("c");
  s.inflight.set(1, entry(1));
  s.inboundQos2.add(7);
  s.queue.push(entry(2));
  clearSession(s);
  t.equal(s.inflight.size, 0);
  t.equal(s.inboundQos2.size, 0);
  t.equal(s.queue.length, 0);
  s.inflight.set(3, entry(3));
  t.same([...s.inflight.keys()], [3]);
  clearSession(createSession("never-used")); // nothing to clear: no throw
});

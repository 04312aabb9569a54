// The retained store: set/replace/delete (MQTT-3.3.1-10/11), expiry, caps (H4), wildcard lookup
// equal to the reference matcher, `$` topics (MQTT-4.7.2-1), prototype-named topics (C7).
import fc from "fast-check";
import t from "tap";
import { createRetainedStore, type RetainedMessage } from "../../hub/broker/retained.js";
import { matches } from "../../hub/broker/topics.js";

const big = { maxMessages: 1_000_000, maxBytes: 1 << 30 };
const msg = (topic: string, payload: string | Buffer = "v", extra: Partial<RetainedMessage> = {}): RetainedMessage => ({
  topic,
  payload: typeof payload === "string" ? Buffer.from(payload) : payload,
  qos: 0,
  storedAt: 0,
  ...extra,
});

function topicsMatching(store: ReturnType<typeof createRetainedStore>, filter: string, now = 0): string[] {
  const out: string[] = [];
  store.forEachMatch(filter, (m) => out.push(m.topic), now);
  return out;
}

t.test("set, replace, get, delete with an empty payload", async (t) => {
  const store = createRetainedStore(big);
  t.equal(store.set(msg("hub/lamp", "ON")), "stored");
  t.equal(store.get("hub/lamp")?.payload.toString(), "ON");
  t.equal(store.count, 1);
  t.equal(store.bytes, "hub/lamp".length + 2, "topic + payload bytes");
  t.equal(store.set(msg("hub/lamp", "OFF")), "stored", "replace");
  t.equal(store.get("hub/lamp")?.payload.toString(), "OFF");
  t.equal(store.count, 1);
  t.equal(store.bytes, "hub/lamp".length + 3);
  t.equal(store.set(msg("hub/lamp", "")), "deleted", "empty payload deletes (MQTT-3.3.1-10)");
  t.equal(store.get("hub/lamp"), undefined);
  t.equal(store.count, 0);
  t.equal(store.bytes, 0);
  t.equal(store.set(msg("hub/none", "")), "deleted", "deleting an absent topic is fine");
  t.equal(store.count, 0, "an empty payload is never stored (MQTT-3.3.1-11)");
  t.same(topicsMatching(store, "#"), []);
  t.same([...store.entries()], []);

  store.set(msg("a/b", "1", { properties: { contentType: "text/plain", userProperties: { k: ["v1", "v2"] } } }));
  t.ok(store.bytes > "a/b".length + 1, "properties are accounted too");
  t.ok(store.delete("a/b"));
  t.notOk(store.delete("a/b"));
  t.equal(store.bytes, 0);
});

t.test("wildcard lookup, parent level, empty levels", async (t) => {
  const store = createRetainedStore(big);
  for (const topic of ["hub/living_room/temp", "hub/living_room/hum", "hub/kitchen/temp", "hub", "hub/", "/x", "other/temp"]) {
    store.set(msg(topic));
  }
  t.same(topicsMatching(store, "hub/living_room/+"), ["hub/living_room/temp", "hub/living_room/hum"]);
  t.same(topicsMatching(store, "hub/+/temp"), ["hub/living_room/temp", "hub/kitchen/temp"]);
  t.same(topicsMatching(store, "hub/#"), ["hub", "hub/living_room/temp", "hub/living_room/hum", "hub/kitchen/temp", "hub/"], "# includes the parent");
  t.same(topicsMatching(store, "hub/+"), ["hub/"], "+ matches the empty level");
  t.same(topicsMatching(store, "+/x"), ["/x"]);
  t.same(topicsMatching(store, "hub/kitchen"), [], "intermediate level without a message");
  t.same(topicsMatching(store, "nothing/#"), []);
});

t.test("$ topics are not returned for leading wildcards (MQTT-4.7.2-1)", async (t) => {
  const store = createRetainedStore(big);
  for (const topic of ["$SYS/broker/uptime", "$foo/bar", "a/$x", "x"]) store.set(msg(topic));
  t.same(topicsMatching(store, "#"), ["a/$x", "x"]);
  t.same(topicsMatching(store, "+/bar"), []);
  t.same(topicsMatching(store, "+/+"), ["a/$x"]);
  t.same(topicsMatching(store, "$SYS/#"), ["$SYS/broker/uptime"]);
  t.same(topicsMatching(store, "$foo/+"), ["$foo/bar"]);
});

t.test("prototype-named topics are plain strings (C7)", async (t) => {
  const store = createRetainedStore(big);
  for (const topic of ["__proto__", "constructor/toString", "hasOwnProperty/valueOf/__proto__"]) store.set(msg(topic, topic));
  t.equal(store.get("__proto__")?.payload.toString(), "__proto__");
  t.equal(store.get("toString"), undefined);
  t.same(topicsMatching(store, "constructor/+"), ["constructor/toString"]);
  t.same(topicsMatching(store, "+/+/__proto__"), ["hasOwnProperty/valueOf/__proto__"]);
  t.same(topicsMatching(store, "__proto__/#"), ["__proto__"]);
  t.equal(store.count, 3);
});

t.test("message expiry: skipped and deleted once expired", async (t) => {
  const store = createRetainedStore(big);
  store.set(msg("s/a", "1", { storedAt: 0, expiresAt: 1000 }));
  store.set(msg("s/b", "2", { storedAt: 0 }));
  t.same(topicsMatching(store, "s/+", 999), ["s/a", "s/b"], "not yet expired");
  t.same(topicsMatching(store, "s/+", 1000), ["s/b"], "expired at expiresAt");
  t.equal(store.count, 1, "expired message deleted");
  t.equal(store.bytes, "s/b".length + 1);

  store.set(msg("s/c", "3", { expiresAt: 50 }));
  t.ok(store.get("s/c"), "get without now does not check expiry");
  t.equal(store.get("s/c", 49)?.topic, "s/c");
  t.equal(store.get("s/c", 50), undefined);
  t.equal(store.count, 1);

  store.set(msg("s/d", "4", { expiresAt: 10 }));
  t.same(topicsMatching(store, "s/d", 20), []);
  t.same(topicsMatching(store, "#", 20), ["s/b"]);
});

t.test("caps (H4)", async (t) => {
  const store = createRetainedStore({ maxMessages: 2, maxBytes: 100 });
  t.equal(store.set(msg("a", "x")), "stored");
  t.equal(store.set(msg("b", "x")), "stored");
  t.equal(store.set(msg("c", "x")), "rejected-cap", "message count cap");
  t.equal(store.get("c"), undefined);
  t.equal(store.set(msg("a", "y")), "stored", "replacing an existing topic at the count cap");
  t.equal(store.set(msg("a", "")), "deleted");
  t.equal(store.set(msg("c", "x")), "stored", "room again after a delete");

  const bytes = createRetainedStore({ maxMessages: 100, maxBytes: 20 });
  t.equal(bytes.set(msg("t1", Buffer.alloc(8))), "stored"); // 10 bytes
  t.equal(bytes.set(msg("t2", Buffer.alloc(8))), "stored"); // 20 bytes: at the cap
  t.equal(bytes.set(msg("t3", Buffer.alloc(1))), "rejected-cap", "byte cap for a new topic");
  t.equal(bytes.set(msg("t1", Buffer.alloc(8, 1))), "stored", "same-size replacement at the cap");
  t.equal(bytes.set(msg("t1", Buffer.alloc(4))), "stored", "smaller replacement");
  t.equal(bytes.bytes, 16);
  t.equal(bytes.set(msg("t1", Buffer.alloc(12))), "rejected-cap", "larger replacement over the cap");
  t.equal(bytes.get("t1")?.payload.length, 4, "the previous message is kept");
  t.equal(bytes.set(msg("t1", Buffer.alloc(8))), "stored", "larger replacement within the cap");
  t.equal(bytes.bytes, 20);
  t.equal(createRetainedStore({ maxMessages: 10, maxBytes: 1000 }).set(msg("x", Buffer.alloc(5 << 20))), "rejected-cap", "5 MB payload");
});

t.test("# replay of 10,000 messages, in insertion order", async (t) => {
  const store = createRetainedStore(big);
  const topics: string[] = [];
  for (let i = 0; i < 10_000; i++) topics.push(`hub/dev${i}/temp`);
  for (const topic of topics) store.set(msg(topic, "21.5"));
  t.same(topicsMatching(store, "#"), topics);
  t.same(topicsMatching(store, "hub/+/temp").length, 10_000);
  t.same(topicsMatching(store, "hub/dev4242/+"), ["hub/dev4242/temp"]);
  t.equal([...store.entries()].length, 10_000);
  for (const topic of topics) store.set(msg(topic, ""));
  t.equal(store.count, 0);
  t.equal(store.bytes, 0);
});

t.test("fn may change the store during a walk", async (t) => {
  const store = createRetainedStore(big);
  for (const topic of ["a/1", "a/2", "a/3"]) store.set(msg(topic, "v", { expiresAt: 100 }));
  const seen: string[] = [];
  store.forEachMatch(
    "a/+",
    (m) => {
      seen.push(m.topic);
      store.set(msg(m.topic, "")); // delete what we are visiting
      store.set(msg("a/2", "fresh")); // re-create a sibling
    },
    0,
  );
  t.same(seen.slice(0, 3), ["a/1", "a/2", "a/3"], "every original entry visited (re-added ones may be too)");
  t.equal(store.get("a/2")?.payload.toString(), "fresh", "the last write wins");
  t.equal(store.count, [...store.entries()].length, "count consistent");
  t.equal(store.bytes, "a/2".length + "fresh".length, "bytes consistent");
  store.set(msg("b/1", "old", { expiresAt: 10 }));
  store.forEachMatch("b/#", () => t.fail("expired"), 20);
  store.set(msg("b/1", "new"));
  t.equal(store.get("b/1")?.payload.toString(), "new", "a later set is unaffected by the earlier expiry");
});

t.test("wildcard lookup equals the reference matcher (property)", async (t) => {
  const level = fc.constantFrom("a", "b", "$s", "");
  const topic = fc
    .array(level, { minLength: 1, maxLength: 4 })
    .map((l) => l.join("/"))
    .filter((x) => x.length > 0);
  const filter = fc
    .tuple(fc.array(fc.constantFrom("a", "b", "$s", "", "+"), { maxLength: 4 }), fc.boolean())
    .map(([l, hash]) => (hash ? [...l, "#"] : l).join("/"))
    .filter((x) => x.length > 0);
  fc.assert(
    fc.property(fc.uniqueArray(topic, { maxLength: 20 }), fc.array(topic, { maxLength: 5 }), filter, (stored, deleted, f) => {
      const store = createRetainedStore(big);
      for (const tp of stored) store.set(msg(tp, tp));
      for (const tp of deleted) store.set(msg(tp, ""));
      const live = stored.filter((tp) => !deleted.includes(tp));
      const want = live.filter((tp) => matches(f, tp)).sort();
      const got = topicsMatching(store, f).sort();
      return got.join("|") === want.join("|") && store.count === live.length;
    }),
    { seed: 424242, numRuns: 2000 },
  );
  t.pass("2000 runs");
});

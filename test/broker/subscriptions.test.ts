// The subscription tree: routing equals the reference matcher, share groups, replace (E7), removal
// without leaks, prototype-named topics (C7/E6), `$` topics (D8/D9), per-subscriber aggregation (F9).
import fc from "fast-check";
import t from "tap";
import { collectPerSubscriber, createSubscriptionTree, type SubOptions, type Subscription } from "../../hub/broker/subscriptions.js";
import { matches } from "../../hub/broker/topics.js";

interface Session {
  id: string;
}
const s = (id: string): Session => ({ id });
const opts = (o: Partial<SubOptions> = {}): SubOptions => ({ qos: 0, noLocal: false, retainAsPublished: false, retainHandling: 0, ...o });

/** Matched (subscriber id, filter) pairs, sorted, for comparison. */
function matched(tree: ReturnType<typeof createSubscriptionTree<Session>>, topic: string): string[] {
  const out: string[] = [];
  tree.forEachMatch(topic, (sub) => out.push(`${sub.subscriber.id} ${sub.filter}`));
  return out.sort();
}

t.test("routing equals the reference matcher, shared groups get one copy (property)", async (t) => {
  const level = fc.constantFrom("a", "b", "$s", "", "+");
  const filter = fc
    .tuple(fc.array(level, { maxLength: 4 }), fc.boolean(), fc.constantFrom("", "$share/g1/", "$share/g2/"))
    .map(([l, hash, share]) => share + (hash ? [...l, "#"] : l).join("/"))
    .filter((f) => f.length > 0 && !/^\$share\/g\d\/$/.test(f)); // non-empty filter and inner filter
  const topic = fc
    .array(fc.constantFrom("a", "b", "$s", ""), { minLength: 1, maxLength: 5 })
    .map((l) => l.join("/"))
    .filter((x) => x.length > 0);
  const op = fc.tuple(fc.constantFrom("add", "add", "add", "remove", "removeAll"), fc.integer({ min: 0, max: 3 }), filter);

  fc.assert(
    fc.property(fc.array(op, { maxLength: 30 }), fc.array(topic, { minLength: 1, maxLength: 5 }), (ops, topics) => {
      const sessions = [s("s0"), s("s1"), s("s2"), s("s3")];
      const tree = createSubscriptionTree<Session>();
      const model = new Map<Session, Set<string>>(sessions.map((x) => [x, new Set<string>()]));
      for (const [kind, i, f] of ops) {
        const who = sessions[i]!;
        if (kind === "add") {
          tree.add(who, f, opts());
          model.get(who)!.add(f);
        } else if (kind === "remove") {
          if (tree.remove(who, f) !== model.get(who)!.delete(f)) return false;
        } else {
          if (tree.removeAll(who) !== model.get(who)!.size) return false;
          model.get(who)!.clear();
        }
      }
      let total = 0;
      for (const set of model.values()) total += set.size;
      if (tree.size !== total) return false;

      for (const tp of topics) {
        const want: string[] = [];
        const groups = new Map<string, Set<string>>(); // "group topicFilter" -> member ids
        for (const [who, set] of model) {
          for (const f of set) {
            const m = /^\$share\/([^/]+)\/(.*)$/.exec(f);
            if (m === null) {
              if (matches(f, tp)) want.push(`${who.id} ${f}`);
            } else if (matches(m[2]!, tp)) {
              const key = `${m[1]} ${m[2]}`;
              if (!groups.has(key)) groups.set(key, new Set());
              groups.get(key)!.add(who.id);
            }
          }
        }
        const got: Subscription<Session>[] = [];
        tree.forEachMatch(tp, (sub) => got.push(sub));
        const direct = got.filter((x) => x.group === undefined).map((x) => `${x.subscriber.id} ${x.filter}`);
        if (direct.sort().join("|") !== want.sort().join("|")) return false;
        const perGroup = new Map<string, number>();
        for (const x of got) {
          if (x.group === undefined) continue;
          const key = `${x.group} ${x.topicFilter}`;
          if (!groups.get(key)?.has(x.subscriber.id)) return false; // a member of a matching group
          perGroup.set(key, (perGroup.get(key) ?? 0) + 1);
        }
        if (perGroup.size !== groups.size) return false;
        for (const n of perGroup.values()) if (n !== 1) return false; // exactly one member per group
      }
      for (const x of sessions) tree.removeAll(x);
      return tree.size === 0 && tree.nodeCount() === 1;
    }),
    { seed: 20240611, numRuns: 2000 },
  );
  t.pass("2000 runs");
});

t.test("round-robin within a share group (MQTT 5 §4.8.2)", async (t) => {
  const tree = createSubscriptionTree<Session>();
  const [a, b, c, other] = [s("a"), s("b"), s("c"), s("other")];
  tree.add(a, "$share/g/sensors/+", opts());
  tree.add(b, "$share/g/sensors/+", opts());
  tree.add(c, "$share/g/sensors/+", opts());
  tree.add(other, "$share/h/sensors/+", opts());
  const seq: string[] = [];
  for (let i = 0; i < 6; i++) tree.forEachMatch(`sensors/${i}`, (sub) => seq.push(`${sub.group}:${sub.subscriber.id}`));
  t.same(seq.filter((x) => x.startsWith("g:")), ["g:a", "g:b", "g:c", "g:a", "g:b", "g:c"], "each member in turn");
  t.equal(seq.filter((x) => x === "h:other").length, 6, "the other group gets every message");

  tree.remove(b, "$share/g/sensors/+");
  const after: string[] = [];
  for (let i = 0; i < 4; i++) tree.forEachMatch("sensors/x", (sub) => sub.group === "g" && after.push(sub.subscriber.id));
  t.same(after, ["a", "c", "a", "c"], "removal keeps the rotation going");
  t.same(matched(tree, "other/x"), [], "the group filter still decides what matches");
});

t.test("re-subscribing replaces options (E7, MQTT-3.8.4-3)", async (t) => {
  const tree = createSubscriptionTree<Session>();
  const a = s("a");
  t.same(tree.add(a, "a/+", opts({ qos: 0, subscriptionId: 7 })), { replaced: false });
  t.same(tree.add(a, "a/+", opts({ qos: 2 })), { replaced: true });
  t.equal(tree.size, 1);
  t.equal(tree.countFor(a), 1);
  const got: Subscription<Session>[] = [];
  tree.forEachMatch("a/b", (sub) => got.push(sub));
  t.equal(got.length, 1, "one delivery, not two");
  t.equal(got[0]!.qos, 2, "the new QoS");
  t.equal(got[0]!.subscriptionId, undefined, "subscription id dropped when not given again");
  t.equal(tree.get(a, "a/+")?.qos, 2);
  t.same(tree.add(a, "$share/g/a/+", opts()), { replaced: false }, "the shared filter is a different subscription");
  t.equal(tree.countFor(a), 2);
});

t.test("remove, removeAll and no leaks", async (t) => {
  const tree = createSubscriptionTree<Session>();
  const a = s("a");
  const b = s("b");
  for (const f of ["x/y", "x/+", "x/#", "#", "+/+/z", "$share/g/x/y", "$share/g2/x/y", "//"]) tree.add(a, f, opts());
  tree.add(b, "x/y", opts());
  t.equal(tree.size, 9);
  t.equal([...tree.subscriptionsOf(a)].length, 8);
  t.notOk(tree.remove(a, "never/subscribed"), "unknown filter");
  t.notOk(tree.remove(b, "x/+"), "another subscriber's filter");
  t.equal(tree.removeAll(a), 8);
  t.equal(tree.removeAll(a), 0, "second removeAll is a no-op");
  t.same(matched(tree, "x/y"), ["b x/y"], "only b is left");
  t.same([...tree.subscriptionsOf(a)], []);
  t.ok(tree.remove(b, "x/y"));
  t.equal(tree.size, 0);
  t.equal(tree.nodeCount(), 1, "only the root is left");

  // 10^5 subscribe/unsubscribe cycles over varied filters leave nothing behind.
  const filters = ["hub/+/temp", "hub/#", "$share/w/hub/a/set", "a/b/c/d/e", "+", "#", "deep/a/b/c/d/e/f/g"];
  const sessions = [s("p"), s("q"), s("r")];
  for (let i = 0; i < 100_000; i++) {
    const who = sessions[i % 3]!;
    const f = `${filters[i % filters.length]!}${i % 5 === 0 ? "" : `/${i % 97}`}`.replace("#/", "+/");
    tree.add(who, f, opts());
    if (i % 2 === 1) tree.removeAll(who);
    else tree.remove(who, f);
  }
  for (const who of sessions) tree.removeAll(who);
  t.equal(tree.size, 0);
  t.equal(tree.nodeCount(), 1, "no nodes leak after 10^5 cycles");
});

t.test("prototype-named topics, filters and groups route like any string (C7/E6)", async (t) => {
  const tree = createSubscriptionTree<Session>();
  const a = s("a");
  const names = ["__proto__", "constructor", "toString", "hasOwnProperty", "valueOf"];
  for (const n of names) tree.add(a, n, opts());
  tree.add(a, "__proto__/+", opts());
  tree.add(a, "$share/__proto__/constructor/#", opts());
  for (const n of names) {
    // `constructor/#` also matches its parent level `constructor`.
    const want = n === "constructor" ? ["a $share/__proto__/constructor/#", "a constructor"] : [`a ${n}`];
    t.same(matched(tree, n), want, `topic ${n}`);
  }
  t.same(matched(tree, "__proto__/x"), ["a __proto__/+"]);
  t.same(matched(tree, "constructor/prototype"), ["a $share/__proto__/constructor/#"]);
  t.same(matched(tree, "prototype"), []);
  t.notOk(tree.remove(a, "isPrototypeOf"), "never-subscribed prototype name");
  t.notOk(tree.remove(a, "$share/constructor/x"), "never-subscribed prototype group");
  t.equal(tree.removeAll(a), names.length + 2);
  t.equal(tree.nodeCount(), 1);
});

t.test("$ topics are not matched by leading wildcards (MQTT-4.7.2-1, D8/D9)", async (t) => {
  const tree = createSubscriptionTree<Session>();
  const a = s("a");
  for (const f of ["#", "+/x", "+", "$SYS/#", "$foo/+", "$share/g/#", "$share/g/$SYS/x"]) tree.add(a, f, opts());
  t.same(matched(tree, "$SYS/x"), ["a $SYS/#", "a $share/g/$SYS/x"]);
  t.same(matched(tree, "$foo/bar"), ["a $foo/+"]);
  t.same(matched(tree, "$foo"), [], "$foo/+ does not match $foo");
  t.same(matched(tree, "foo/x"), ["a #", "a $share/g/#", "a +/x"]);
});

t.test("add rejects filters that would corrupt the tree (E2, E4)", async (t) => {
  const tree = createSubscriptionTree<Session>();
  const a = s("a");
  for (const f of ["a/#/b", "a#", "a+", "+a", "", "$share/ab", "$share//x", "$share/a+b/x", "$share/g/"]) {
    t.throws(() => tree.add(a, f, opts()), RangeError, `rejects ${JSON.stringify(f)}`);
  }
  t.throws(() => tree.add(a, "$share/g/x", opts({ noLocal: true })), RangeError, "No Local on shared (MQTT-3.8.3-4)");
  t.equal(tree.size, 0);
  t.equal(tree.nodeCount(), 1);
  t.same(matched(tree, "a/b"), [], "publishing afterwards is harmless");
});

t.test("forEachMatch survives re-entrant changes and huge topics", async (t) => {
  const tree = createSubscriptionTree<Session>();
  const a = s("a");
  const b = s("b");
  tree.add(a, "x/#", opts());
  tree.add(b, "x/y", opts());
  const seen: string[] = [];
  tree.forEachMatch("x/y", (sub) => {
    seen.push(sub.subscriber.id);
    tree.removeAll(a);
    tree.removeAll(b);
    tree.forEachMatch("x/y", () => seen.push("inner"));
  });
  t.ok(seen.length >= 1, "no throw while the tree empties under the walk");
  t.equal(tree.nodeCount(), 1);
  tree.add(a, "+/+", opts());
  t.same(matched(tree, Array.from({ length: 10_000 }, () => "a").join("/")), [], "10,000-level topic: no match, no crash");
});

t.test("collectPerSubscriber: one copy per subscriber, No Local, shared picks separate", async (t) => {
  const tree = createSubscriptionTree<Session>();
  const a = s("a");
  const b = s("b");
  tree.add(a, "home/+", opts({ qos: 0, subscriptionId: 1 }));
  tree.add(a, "home/#", opts({ qos: 2, subscriptionId: 2, retainAsPublished: true }));
  tree.add(a, "home/kitchen", opts({ qos: 1 }));
  tree.add(a, "$share/g/home/kitchen", opts({ qos: 1, subscriptionId: 9 }));
  tree.add(b, "home/kitchen", opts({ qos: 1, noLocal: true }));

  const all = collectPerSubscriber(tree, "home/kitchen");
  const da = all.get(a)!;
  t.equal(da.direct, true);
  t.equal(da.qos, 2, "highest granted QoS (MQTT-3.3.4-2)");
  t.same([...da.subscriptionIds].sort(), [1, 2], "every matching identifier (MQTT-3.3.4-4)");
  t.equal(da.retainAsPublished, true, "any subscription with Retain As Published");
  t.same(
    da.shared?.map((x) => x.subscriptionId),
    [9],
    "the share-group pick is a separate copy",
  );
  t.equal(all.get(b)?.direct, true, "No Local does not apply to other publishers");

  const fromB = collectPerSubscriber(tree, "home/kitchen", b);
  t.notOk(fromB.has(b), "No Local: the publisher does not get its own message (MQTT-3.8.3-3)");
  t.ok(fromB.has(a));

  tree.add(b, "home/+", opts({ qos: 0, subscriptionId: 5 }));
  const again = collectPerSubscriber(tree, "home/kitchen", b).get(b)!;
  t.equal(again.direct, true, "a matching subscription without No Local still delivers");
  t.equal(again.noLocalSkipped, true);
  t.equal(again.qos, 0, "QoS of the skipped subscription does not count");
  t.same(again.subscriptionIds, [5]);

  t.equal(collectPerSubscriber(tree, "garden/x").size, 0, "nothing matches");
});

t.test("one subscriber or many at a filter, one filter or many per subscriber: same routing and order", async (t) => {
  // A node keeps a single subscription without a Map, and so does a subscriber with one filter
  // (memory per idle connection, issue 3); the second one switches to a Map. Nothing observable changes.
  const tree = createSubscriptionTree<Session>();
  const [a, b, c] = [s("a"), s("b"), s("c")];
  const order = (topic: string) => {
    const out: string[] = [];
    tree.forEachMatch(topic, (sub) => out.push(sub.subscriber.id));
    return out;
  };
  tree.add(a, "k/x", opts({ qos: 1 }));
  t.same(order("k/x"), ["a"]);
  t.equal(tree.get(a, "k/x")?.qos, 1);
  t.equal(tree.get(a, "k/y"), undefined, "another filter of the same subscriber");
  t.equal(tree.countFor(a), 1);
  t.same([...tree.subscriptionsOf(a)].map((x) => x.filter), ["k/x"]);
  t.same(tree.add(a, "k/x", opts({ qos: 2 })), { replaced: true }, "re-subscribing the only filter replaces it");
  t.equal(tree.get(a, "k/x")?.qos, 2);

  tree.add(b, "k/x", opts());
  tree.add(c, "k/x", opts());
  t.same(order("k/x"), ["a", "b", "c"], "subscription order kept when the node gets a second subscriber");
  t.ok(tree.remove(a, "k/x"));
  t.same(order("k/x"), ["b", "c"]);
  t.equal(tree.countFor(a), 0);
  t.same([...tree.subscriptionsOf(a)], []);

  tree.add(a, "k/y", opts());
  tree.add(a, "k/+", opts());
  t.equal(tree.countFor(a), 2, "a second filter for the subscriber");
  t.same([...tree.subscriptionsOf(a)].map((x) => x.filter), ["k/y", "k/+"]);
  t.same(order("k/y").sort(), ["a", "a"], "both of a's subscriptions match k/y");
  t.ok(tree.remove(a, "k/y"));
  t.equal(tree.countFor(a), 1);
  t.equal(tree.get(a, "k/+")?.filter, "k/+");

  // Removing while iterating subscriptionsOf (as the ACL recheck does) sees every subscription once.
  const seen: string[] = [];
  for (const sub of tree.subscriptionsOf(a)) {
    seen.push(sub.filter);
    tree.remove(a, sub.filter);
  }
  t.same(seen, ["k/+"]);
  t.equal(tree.removeAll(b), 1);
  t.equal(tree.removeAll(c), 1);
  t.equal(tree.size, 0);
  t.equal(tree.nodeCount(), 1, "nothing left behind");
});

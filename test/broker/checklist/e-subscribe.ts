// Checklist section E (SUBSCRIBE / UNSUBSCRIBE) as table rows.
import { RC, V3_SUBACK_FAILURE } from "../../../hub/broker/reason-codes.js";
import { hex, publishFrame, subscribe, subscribeFrame, summary, unsubscribeFrame } from "../../support/raw-client.js";
import { gone, type Row, VERSIONS } from "./ctx.js";
import { connectAs } from "./g-security.js";

/** Prototype names never subscribed as exact filters in E6. */
const NEVER = ["hasOwnProperty", "valueOf", "constructor", "toString", "isPrototypeOf"];

export const rowsE: Row[] = [
  {
    id: "E1",
    title: "SUBSCRIBE / UNSUBSCRIBE with no filters → close (v5: 0x82)",
    run: async (ctx) => {
      const subs = ctx.b.broker.core.tree.size;
      for (const [what, v3, v5] of [
        ["SUBSCRIBE", hex("82 02 00 01"), hex("82 03 00 01 00")],
        ["UNSUBSCRIBE", hex("a2 02 00 01"), hex("a2 03 00 01 00")],
      ] as const) {
        for (const v of VERSIONS) {
          const c = await ctx.connect(v);
          c.write(v === 5 ? v5 : v3);
          await gone(ctx.t, c, { v5: RC.PROTOCOL_ERROR, what });
        }
      }
      ctx.t.equal(ctx.b.broker.core.tree.size, subs, "nothing stored");
    },
  },
  {
    id: "E2",
    title: "filters a/#/b, a#, a+, +a → v3 close; v5 SUBACK 0x8F; never stored",
    run: async (ctx) => {
      const { t, b } = ctx;
      const tree = b.broker.core.tree;
      const subs = tree.size;
      const bad = ["a/#/b", "a#", "a+", "+a", "#/a", "a/b#"];
      for (const f of bad) {
        const c = await ctx.connect(4);
        c.write(subscribeFrame({ filters: [[f, 1]] }));
        await gone(t, c, { what: `v3 ${f}` });
      }
      const c = await ctx.connect(5);
      c.write(subscribeFrame({ v: 5, id: 7, filters: [...bad.map((f) => [f, 1] as [string, number]), ["e2/ok", 1]] }));
      const ack = await c.expectPacket("suback");
      t.same([ack.messageId, ack.granted], [7, [...bad.map(() => RC.TOPIC_FILTER_INVALID), 1]], "v5: each bad filter 0x8F, the good one granted");
      t.equal(tree.size, subs + 1, "only the valid filter is stored");
      // Publishing to topics those filters would have touched is harmless.
      for (const topic of ["a", "a/x/b", "ab", "e2/ok"]) c.write(publishFrame({ v: 5, topic, payload: "x" }));
      t.same([(await c.expectPacket("publish")).topic], ["e2/ok"], "only e2/ok delivered");
    },
  },
  {
    id: "E3",
    title: "subscription options: reserved bits, QoS 3, Retain Handling 3 → close (v5: 0x81 / 0x82)",
    run: async (ctx) => {
      const cases = [
        [4, "reserved bit 2", 0x04, undefined],
        [4, "reserved bits 7..6", 0xc0, undefined],
        [4, "QoS 3", 0x03, undefined],
        [5, "reserved bits 7..6", 0xc0, RC.MALFORMED_PACKET],
        [5, "QoS 3", 0x03, RC.MALFORMED_PACKET],
        [5, "Retain Handling 3", 0x30, RC.PROTOCOL_ERROR],
      ] as const;
      for (const [v, what, opts, v5] of cases) {
        const c = await ctx.connect(v);
        c.write(subscribeFrame({ v, filters: [["e3", opts]] }));
        await gone(ctx.t, c, { v5, what });
      }
    },
  },
  {
    id: "E4",
    title: "bad shared subscriptions → SUBACK 0x8F (v3: close); No Local on $share → 0x82; no later crash on publish",
    run: async (ctx) => {
      const { t } = ctx;
      const bad = ["$share/ab", "$share//x", "$share/a+b/x", "$share/a#/x", "$share/g/", "$share/g/a#"];
      const c = await ctx.connect(5);
      c.write(subscribeFrame({ v: 5, id: 3, filters: [...bad.map((f) => [f, 1] as [string, number]), ["$share/g/e4", 1]] }));
      t.same((await c.expectPacket("suback")).granted, [...bad.map(() => RC.TOPIC_FILTER_INVALID), 1], "v5: 0x8F each; the valid group granted");
      for (const f of bad.slice(0, 3)) {
        const v3 = await ctx.connect(4);
        v3.write(subscribeFrame({ filters: [[f, 1]] }));
        await gone(t, v3, { what: `v3 ${f}` });
      }
      const nl = await ctx.connect(5);
      nl.write(subscribeFrame({ v: 5, filters: [["$share/g/e4", 0x05]] }));
      await gone(t, nl, { v5: RC.PROTOCOL_ERROR, what: "No Local on $share/g/e4" });
      const pub = await ctx.connect(5);
      for (const topic of ["ab", "x", "a", "e4"]) pub.write(publishFrame({ v: 5, topic, payload: topic }));
      t.equal(String((await c.expectPacket("publish")).payload), "e4", "the shared subscription receives; nothing crashed");
    },
  },
  {
    id: "E5",
    title: "10,000 filters from one client, 1,000 in one SUBSCRIBE → beyond the cap 0x97 (v3: 0x80); state bounded",
    limits: { maxSubscriptionsPerClient: 100 },
    run: async (ctx) => {
      const { t, b } = ctx;
      const tree = b.broker.core.tree;
      const subs = tree.size;
      const nodes = tree.nodeCount();
      for (const v of VERSIONS) {
        const id = ctx.id("e5");
        const c = await ctx.connect(v, { clientId: id });
        const granted: number[] = [];
        for (let k = 0; k < 10; k++) {
          const filters = Array.from({ length: 1_000 }, (_, i) => [`e5/${k}/${i}`, 1] as [string, number]);
          granted.push(...(await subscribe(c, filters)));
        }
        const fail = v === 5 ? RC.QUOTA_EXCEEDED : V3_SUBACK_FAILURE;
        t.same([granted.filter((g) => g === 1).length, granted.filter((g) => g === fail).length], [100, 9_900], `v${v}: 100 granted, 9,900 refused`);
        t.same(granted.slice(98, 102), [1, 1, fail, fail], `v${v}: the cap falls at the 101st`);
        t.equal(tree.countFor(ctx.session(id)!), 100, `v${v}: 100 stored for the client`);
        // At the cap, re-subscribing an existing filter is a replacement, not a new one (E7).
        t.same(await subscribe(c, [["e5/0/0", 2]]), [2], `v${v}: re-subscribe at the cap granted`);
        c.send({ cmd: "disconnect" });
        await c.expectClose();
      }
      t.equal(tree.size, subs, "all released when the sessions end");
      t.equal(tree.nodeCount(), nodes, "no trie nodes left behind");
    },
  },
  {
    id: "E6",
    title: "prototype-named filters deliver; UNSUBSCRIBE of a never-subscribed prototype name → UNSUBACK with the right id",
    run: async (ctx) => {
      const { t } = ctx;
      for (const v of VERSIONS) {
        const c = await ctx.connect(v);
        const filters = ["__proto__", "constructor/+", "toString/#", "__proto__/__proto__"];
        t.same(await subscribe(c, filters.map((f) => [f, 1])), [1, 1, 1, 1], `v${v}: granted`);
        const pub = await ctx.connect(4);
        for (const topic of ["__proto__", "constructor/x", "toString/a/b", "__proto__/__proto__", "valueOf"]) {
          pub.write(publishFrame({ topic, payload: topic }));
        }
        const got = await c.expectMany("publish", 4);
        t.same(got.map((p) => p.topic), ["__proto__", "constructor/x", "toString/a/b", "__proto__/__proto__"], `v${v}: delivered`);
        for (const [i, name] of NEVER.entries()) {
          c.write(unsubscribeFrame({ v, id: 300 + i, filters: [name] }));
          const ack = await c.expectPacket("unsuback");
          t.equal(ack.messageId, 300 + i, `v${v}: UNSUBACK id for ${name}`);
          if (v === 5) t.same(ack.granted, [RC.NO_SUBSCRIPTION_EXISTED], `v${v}: 0x11 for ${name}`);
        }
        c.write(unsubscribeFrame({ v, id: 400, filters: ["__proto__"] }));
        t.equal((await c.expectPacket("unsuback")).messageId, 400, `v${v}: real unsubscribe acknowledged`);
        pub.write(publishFrame({ topic: "__proto__", payload: "after" }));
        pub.write(publishFrame({ topic: "constructor/y", payload: "after" }));
        t.equal((await c.expectPacket("publish")).topic, "constructor/y", `v${v}: __proto__ no longer delivered`);
      }
    },
  },
  {
    id: "E7",
    title: "identical filter subscribed again with another QoS → replaced; retained re-sent; no loss or duplicate",
    run: async (ctx) => {
      const { t, b } = ctx;
      const tree = b.broker.core.tree;
      for (const v of VERSIONS) {
        const pub = await ctx.connect(v);
        pub.write(publishFrame({ v, topic: `e7/v${v}/r`, qos: 1, id: 1, retain: true, payload: "kept" }));
        await pub.expectPacket("puback");
        const c = await ctx.connect(v);
        const subs = tree.size;
        await subscribe(c, `e7/v${v}/#`, 0);
        const r0 = await c.expectPacket("publish");
        t.same([r0.topic, r0.qos, r0.retain], [`e7/v${v}/r`, 0, true], `v${v}: retained at QoS 0`);
        t.same(await subscribe(c, `e7/v${v}/#`, 1), [1], `v${v}: re-subscribe at QoS 1 granted`);
        t.equal(tree.size, subs + 1, `v${v}: replaced, not added`);
        const r1 = await c.expectPacket("publish");
        t.same([r1.topic, r1.qos, r1.retain], [`e7/v${v}/r`, 1, true], `v${v}: retained re-sent at QoS 1 (Retain Handling 0)`);
        c.send({ cmd: "puback", messageId: r1.messageId! });
        pub.write(publishFrame({ v, topic: `e7/v${v}/live`, qos: 1, id: 2, payload: "live" }));
        pub.write(publishFrame({ v, topic: `e7/v${v}/end`, qos: 0, payload: "end" }));
        const live = await c.expectMany("publish", 2);
        t.same(live.map((p) => [p.topic, p.qos]), [[`e7/v${v}/live`, 1], [`e7/v${v}/end`, 0]], `v${v}: one copy at the new QoS`);
        t.same(c.untaken().filter((p) => p.cmd === "publish").map(summary), [], `v${v}: no duplicate`);
      }
    },
  },
  {
    id: "E8",
    title: "subscribe # as a low-privilege user → ACL denies (v5: SUBACK 0x87, v3 0x80)",
    auth: { users: { low: "low-pw" }, acl: "user low\ntopic read home/low/#\n" },
    run: async (ctx) => {
      for (const v of VERSIONS) {
        const c = await connectAs(ctx, v, "low");
        const no = v === 5 ? RC.NOT_AUTHORIZED : V3_SUBACK_FAILURE;
        ctx.t.same(await subscribe(c, [["#", 1], ["home/+/temp", 1], ["home/low/#", 1]]), [no, no, 1], `v${v}: # and home/+/temp denied, home/low/# granted`);
      }
    },
  },
];

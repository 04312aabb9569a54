// Checklist section D (PUBLISH and topics) as table rows.
import { RC } from "../../../hub/broker/reason-codes.js";
import { connectFrame, hex, type Level, prop, publishFrame, subscribeFrame, summary, unsubscribeFrame } from "../../support/raw-client.js";
import { type Ctx, gone, type Row, VERSIONS } from "./ctx.js";

/** Each PUBLISH (built per version) closes its connection (v5: DISCONNECT `v5`) and reaches no one. */
function publishRefused(cases: Array<[string, (v: Level) => Buffer]>, v5: number, versions: readonly Level[] = VERSIONS) {
  return async (ctx: Ctx) => {
    const w = await ctx.watch(["#"]);
    for (const v of versions) {
      for (const [what, build] of cases) {
        const c = await ctx.connect(v);
        c.write(build(v));
        await gone(ctx.t, c, { v5, what });
      }
    }
    ctx.t.same((await w.before()).map(summary), [], "nothing reached a subscriber, no PUBACK/PUBREC was sent");
  };
}

const levels = (n: number) => Array.from({ length: n }, (_, i) => `l${i}`).join("/");

export const rowsD: Row[] = [
  {
    id: "D1",
    title: "PUBLISH topic containing + or # → close (v5: 0x90)",
    run: publishRefused(
      ["d1/+", "d1/#", "+", "#", "d1/a+", "d1/#/x"].map((topic) => [topic, (v: Level) => publishFrame({ v, topic, qos: 1, id: 1, payload: "x" })]),
      RC.TOPIC_NAME_INVALID,
    ),
  },
  {
    id: "D2",
    title: "zero-length topic without alias → close (v5: 0x82)",
    run: publishRefused(
      [
        ["QoS 0", (v) => publishFrame({ v, topic: "", payload: "x" })],
        ["QoS 1", (v) => publishFrame({ v, topic: "", qos: 1, id: 1, payload: "x" })],
      ],
      RC.PROTOCOL_ERROR,
    ),
  },
  {
    id: "D3",
    title: "v5 Topic Alias 0 or above the maximum sent in CONNACK → DISCONNECT 0x94",
    run: async (ctx) => {
      const { t } = ctx;
      const w = await ctx.watch(["d3/#"]);
      const max = ctx.limits.topicAliasMaximum;
      for (const alias of [0, max + 1, 65535]) {
        const c = await ctx.connect(5);
        c.write(publishFrame({ v: 5, topic: "d3/x", properties: [prop.u16(35, alias)], payload: "bad" }));
        await gone(t, c, { v5: RC.TOPIC_ALIAS_INVALID, what: `alias ${alias}` });
      }
      // The maximum itself works: define, then use with an empty topic.
      const c = await ctx.connect(5);
      c.write(publishFrame({ v: 5, topic: "d3/max", properties: [prop.u16(35, max)], payload: "define" }));
      c.write(publishFrame({ v: 5, topic: "", properties: [prop.u16(35, max)], payload: "use" }));
      t.same((await w.before()).map((p) => [p.topic, String(p.payload)]), [["d3/max", "define"], ["d3/max", "use"]], `alias ${max} (the maximum) works`);
    },
  },
  {
    id: "D4",
    title: "v5 alias without a mapping and an empty topic → DISCONNECT 0x82",
    run: publishRefused([["alias 5 unmapped", () => publishFrame({ v: 5, topic: "", properties: [prop.u16(35, 5)], payload: "x" })]], RC.PROTOCOL_ERROR, [5]),
  },
  {
    id: "D5",
    title: "QoS > 0 with packet id 0 → close (v5: 0x82)",
    run: publishRefused(
      [
        ["QoS 1 id 0", (v) => publishFrame({ v, topic: "d5", qos: 1, id: 0, payload: "x" })],
        ["QoS 2 id 0", (v) => publishFrame({ v, topic: "d5", qos: 2, id: 0, payload: "x" })],
      ],
      RC.PROTOCOL_ERROR,
    ),
  },
  {
    id: "D6",
    title: "topic of 33 levels (cap+1) and 10,000 levels: PUBLISH, SUBSCRIBE, UNSUBSCRIBE, will → rejected before any ack or storage",
    run: async (ctx) => {
      const { t, b } = ctx;
      const core = b.broker.core;
      const w = await ctx.watch(["#"]);
      const subs = core.tree.size;
      const retained = core.retained.count;
      for (const [what, topic] of [["33 levels", levels(33)], ["10,000 levels", levels(10_000)]] as const) {
        for (const v of VERSIONS) {
          for (const qos of [1, 2]) {
            const c = await ctx.connect(v);
            c.write(publishFrame({ v, topic, qos, id: 1, retain: true, payload: "x" }));
            await gone(t, c, { v5: RC.TOPIC_NAME_INVALID, what: `${what} PUBLISH QoS ${qos}` });
          }
          const s = await ctx.connect(v);
          s.write(subscribeFrame({ v, id: 9, filters: [[topic, 1]] }));
          const u = await ctx.connect(v);
          u.write(unsubscribeFrame({ v, id: 9, filters: [topic] }));
          if (v === 5) {
            // v5 policy: the filter fails in SUBACK/UNSUBACK 0x8F and the connection goes on.
            t.same((await s.expectPacket("suback")).granted, [RC.TOPIC_FILTER_INVALID], `${what}: SUBACK 0x8F`);
            t.same((await u.expectPacket("unsuback")).granted, [RC.TOPIC_FILTER_INVALID], `${what}: UNSUBACK 0x8F`);
          } else {
            await gone(t, s, { what: `${what} SUBSCRIBE` });
            await gone(t, u, { what: `${what} UNSUBSCRIBE` });
          }
          const will = await ctx.open(v);
          will.write(connectFrame({ v, clientId: ctx.id("d6"), will: { topic, payload: "w" } }));
          await gone(t, will, { v5: RC.TOPIC_NAME_INVALID, atConnect: true, what: `${what} will topic` });
        }
      }
      t.equal(core.tree.size, subs, "no subscription stored");
      t.equal(core.retained.count, retained, "nothing retained");
      // The cap itself (32 levels) is fine.
      const c = await ctx.connect(5);
      c.write(subscribeFrame({ v: 5, id: 3, filters: [[levels(32), 0]] }));
      t.same((await c.expectPacket("suback")).granted, [0], "32-level filter granted");
      c.write(publishFrame({ v: 5, topic: levels(32), payload: "ok" }));
      t.same((await w.before()).map((p) => p.topic), [levels(32)], "only the 32-level PUBLISH was routed");
    },
  },
  {
    id: "D7",
    title: "PUBLISH to $SYS/... or $CONTROL/... from a client → denied (v3 silently; v5 0x87), never forwarded; same for the will",
    run: async (ctx) => {
      const { t } = ctx;
      const w = await ctx.watch(["$SYS/#", "$CONTROL/#"]);
      for (const v of VERSIONS) {
        const c = await ctx.connect(v);
        const rc = v === 5 ? RC.NOT_AUTHORIZED : 0;
        for (const topic of ["$SYS/broker/uptime", "$CONTROL/dynamic-security/v1"]) {
          c.write(publishFrame({ v, topic, qos: 0, payload: "x" }));
          c.write(publishFrame({ v, topic, qos: 1, id: 1, payload: "x" }));
          t.equal((await c.expectPacket("puback")).reasonCode ?? 0, rc, `v${v} ${topic}: PUBACK 0x${rc.toString(16)}`);
          c.write(publishFrame({ v, topic, qos: 2, id: 2, payload: "x" }));
          t.equal((await c.expectPacket("pubrec")).reasonCode ?? 0, rc, `v${v} ${topic}: PUBREC 0x${rc.toString(16)}`);
          if (v === 4) {
            c.write(hex("62 02 00 02"));
            await c.expectPacket("pubcomp");
          }
        }
        const will = await ctx.open(v);
        will.write(connectFrame({ v, clientId: ctx.id("d7"), will: { topic: "$SYS/will", payload: "w" } }));
        await gone(t, will, { v3Connack: 0x05, v5: RC.NOT_AUTHORIZED, atConnect: true, what: "will on $SYS" });
      }
      t.same((await w.before()).map(summary), [], "nothing forwarded to $SYS/# or $CONTROL/#");
    },
  },
  {
    id: "D8",
    title: "PUBLISH $foo/bar (not $SYS) → no crash; matched only by filters starting $foo",
    run: async (ctx) => {
      const dollar = await ctx.watch(["$foo/#", "$foo/+"]);
      const wild = await ctx.watch(["#", "+/bar"]);
      const c = await ctx.connect(5);
      c.write(publishFrame({ v: 5, topic: "$foo/bar", qos: 1, id: 1, payload: "x" }));
      ctx.t.equal((await c.expectPacket("puback")).reasonCode, 0, "PUBACK success");
      ctx.t.same((await dollar.before()).map((p) => p.topic), ["$foo/bar"], "$foo/# receives it once");
      ctx.t.same((await wild.before()).map((p) => p.topic), [], "# and +/bar do not (MQTT-4.7.2-1)");
    },
  },
  {
    id: "D9",
    title: "# and +/x do not match $SYS/x; $SYS/# does",
    run: async (ctx) => {
      const wild = await ctx.watch(["#", "+/x"]);
      const sys = await ctx.watch(["$SYS/#"]);
      await ctx.b.broker.bus("test").publish({ topic: "$SYS/x", payload: Buffer.from("sys"), qos: 1, retain: false });
      ctx.t.same((await sys.before()).map((p) => p.topic), ["$SYS/x"], "$SYS/# receives it");
      ctx.t.same((await wild.before()).map((p) => p.topic), [], "# and +/x do not");
    },
  },
  {
    id: "D10",
    title: "unauthorized v3 PUBLISH QoS 1/2 → positive ack, never forwarded",
    run: async (ctx) => {
      const w = await ctx.watch(["$SYS/#"]);
      const c = await ctx.connect(4);
      c.write(publishFrame({ topic: "$SYS/d10", qos: 1, id: 1, payload: "x" }));
      ctx.t.equal((await c.expectPacket("puback")).messageId, 1, "PUBACK");
      c.write(publishFrame({ topic: "$SYS/d10", qos: 2, id: 2, payload: "x" }));
      ctx.t.equal((await c.expectPacket("pubrec")).messageId, 2, "PUBREC");
      c.write(hex("62 02 00 02"));
      ctx.t.equal((await c.expectPacket("pubcomp")).messageId, 2, "PUBCOMP");
      ctx.t.same((await w.before()).map(summary), [], "never forwarded");
    },
  },
  {
    id: "D11",
    title: "v5 PUBLISH carrying a Subscription Identifier → DISCONNECT 0x82",
    run: publishRefused([["subscription id 1", () => publishFrame({ v: 5, topic: "d11", properties: [prop.vbi(11, 1)], payload: "x" })]], RC.PROTOCOL_ERROR, [5]),
  },
  {
    id: "D12",
    title: "user properties: the count is capped (PUBLISH with 100k → 0x97); CONNECT floods refused",
    run: async (ctx) => {
      const { t } = ctx;
      const max = ctx.limits.maxUserProperties;
      const pairs = (n: number) => Array.from({ length: n }, () => prop.pair("k", "v"));
      // Exactly the cap is accepted on CONNECT and PUBLISH.
      const ok = await ctx.open(5);
      ok.write(connectFrame({ v: 5, clientId: ctx.id("d12"), properties: pairs(max) }));
      t.equal((await ok.expectPacket("connack")).reasonCode, 0, `CONNECT with ${max} user properties accepted`);
      ok.write(publishFrame({ v: 5, topic: "d12", qos: 1, id: 1, properties: pairs(max), payload: "x" }));
      t.equal((await ok.expectPacket("puback")).reasonCode, 0, `PUBLISH with ${max} accepted`);
      // 100,000 in a PUBLISH (700 kB, within the 1 MiB packet cap): refused by count, not parsed.
      const flood = publishFrame({ v: 5, topic: "d12", qos: 1, id: 2, properties: pairs(100_000), payload: "x" });
      t.ok(flood.length < ctx.limits.maxPacketSize, `the flood fits the packet cap (${flood.length} bytes)`);
      ok.write(flood);
      await gone(t, ok, { v5: RC.QUOTA_EXCEEDED, what: "100k user properties" });
      // CONNECT with 100k (700 kB): over the 64 KiB CONNECT cap, refused on the header alone.
      const c = await ctx.open(5);
      c.write(connectFrame({ v: 5, clientId: ctx.id("d12"), properties: pairs(100_000) }));
      await gone(t, c, { what: "CONNECT with 100k user properties" });
    },
  },
  {
    id: "D12",
    title: "v5 CONNECT with user properties over the cap (65; 9,000 filling 64 KiB) → CONNACK 0x97",
    // Today the v5 client gets a 3.1.1-format CONNACK (20 02 00 03), which a v5 parser reads as
    // reason 0x03: below 0x80, i.e. not a failure.
    run: async (ctx) => {
      for (const n of [ctx.limits.maxUserProperties + 1, 9_000]) {
        const c = await ctx.open(5);
        c.write(connectFrame({ v: 5, clientId: ctx.id("d12"), properties: Array.from({ length: n }, () => prop.pair("k", "v")) }));
        await gone(ctx.t, c, { v5: RC.QUOTA_EXCEEDED, atConnect: true, what: `${n} user properties` });
      }
    },
  },
  {
    id: "D13",
    title: "Response Topic containing a wildcard → protocol error (PUBLISH: DISCONNECT 0x82; will: CONNACK 0x82)",
    run: async (ctx) => {
      await publishRefused(
        ["d13/#", "d13/+", "#"].map((rt) => [`response topic ${rt}`, () => publishFrame({ v: 5, topic: "d13", properties: [prop.string(8, rt)], payload: "x" })]),
        RC.PROTOCOL_ERROR,
        [5],
      )(ctx);
      const c = await ctx.open(5);
      c.write(connectFrame({ v: 5, clientId: ctx.id("d13"), will: { topic: "d13/will", properties: [prop.string(8, "r/+")] } }));
      await gone(ctx.t, c, { v5: RC.PROTOCOL_ERROR, atConnect: true, what: "will response topic r/+" });
      // A valid one is forwarded.
      const w = await ctx.watch(["d13"], 5);
      const ok = await ctx.connect(5);
      ok.write(publishFrame({ v: 5, topic: "d13", properties: [prop.string(8, "d13/reply")], payload: "x" }));
      const [p] = await w.before();
      ctx.t.equal(p?.properties?.responseTopic, "d13/reply", "a valid Response Topic is forwarded");
    },
  },
];

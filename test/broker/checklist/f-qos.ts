// Checklist section F (QoS state machines and exhaustion) as table rows. Memory rows assert that the
// broker's state stays bounded (in-flight tables, queues) rather than measuring the heap.
import type { IConnackPacket } from "mqtt-packet";
import { RC } from "../../../hub/broker/reason-codes.js";
import { queueLength } from "../../../hub/broker/session.js";
import { type Level, publish, publishFrame, subscribe, summary } from "../../support/raw-client.js";
import { type Ctx, gone, type Row, VERSIONS } from "./ctx.js";

/** Connect options for a session that outlives its connection, per version. */
const durable = (v: Level, clean: boolean) => (v === 5 ? { clean, properties: { sessionExpiryInterval: 300 } } : { clean: false });

/** Repeats `packet` n times in one buffer (one TCP write). */
const times = (n: number, packet: Buffer) => Buffer.concat(Array.from({ length: n }, () => packet));

/** The v3 PUBREL/PUBCOMP bytes for an id (valid for v5 too: reason code omitted, §3.6.2.1). */
const pubrel = (id: number) => Buffer.from([0x62, 0x02, id >> 8, id & 0xff]);

async function reconnect(ctx: Ctx, v: Level, clientId: string) {
  const c = await ctx.connect(v, { clientId, ...durable(v, false) });
  ctx.t.equal((c.received[0] as IConnackPacket).sessionPresent, true, `v${v}: session present`);
  return c;
}

export const rowsF: Row[] = [
  {
    id: "F1",
    title: "QoS 2 PUBLISHes with fresh ids, never PUBREL → dropped at receive_maximum (v5: DISCONNECT 0x93)",
    limits: { receiveMaximum: 10 },
    run: async (ctx) => {
      const { t, b } = ctx;
      for (const v of VERSIONS) {
        const id = ctx.id("f1");
        const c = await ctx.connect(v, { clientId: id });
        if (v === 5) t.equal((c.received[0] as IConnackPacket).properties?.receiveMaximum, 10, "CONNACK announces Receive Maximum 10");
        c.write(Buffer.concat(Array.from({ length: 10 }, (_, i) => publishFrame({ v, topic: "f1", qos: 2, id: i + 1, payload: "x" }))));
        await c.expectMany("pubrec", 10);
        t.equal(ctx.session(id)?.inboundQos2.size, 10, `v${v}: 10 awaiting PUBREL`);
        // A resend of an id already held is not a new message: answered, not counted.
        c.write(publishFrame({ v, topic: "f1", qos: 2, id: 5, dup: true, payload: "x" }));
        t.equal((await c.expectPacket("pubrec")).messageId, 5, `v${v}: duplicate at the cap answered`);
        c.write(publishFrame({ v, topic: "f1", qos: 2, id: 11, payload: "x" }));
        await gone(t, c, { v5: RC.RECEIVE_MAXIMUM_EXCEEDED, what: "11th" });
        t.equal(b.broker.core.sessions.has(id), false, `v${v}: its state is released`);
      }
    },
  },
  {
    id: "F2",
    title: "10,000 QoS 2 duplicates (same id, no PUBREL), and 10,000 flows to a subscriber that never answers → state bounded",
    limits: { maxQueuedMessages: 100 },
    run: async (ctx) => {
      const { t, limits } = ctx;
      const w = await ctx.watch(["f2/dup"]);
      for (const v of VERSIONS) {
        const id = ctx.id("f2");
        const c = await ctx.connect(v, { clientId: id });
        c.write(times(10_000, publishFrame({ v, topic: "f2/dup", qos: 2, id: 1, payload: `v${v}` })));
        await c.expectMany("pubrec", 10_000, 10_000);
        t.equal(ctx.session(id)?.inboundQos2.size, 1, `v${v}: one id held after 10,000 duplicates`);
        c.write(pubrel(1));
        await c.expectPacket("pubcomp");
        t.equal(ctx.session(id)?.inboundQos2.size, 0, `v${v}: released by PUBREL`);
      }
      t.same((await w.before()).map((p) => String(p.payload)), ["v4", "v5"], "each delivered once");
      // The broker as sender: a QoS 2 subscriber that never sends PUBREC.
      const sid = ctx.id("f2-mute");
      const mute = await ctx.connect(5, { clientId: sid });
      await subscribe(mute, "f2/flow", 2);
      const pub = await ctx.connect(4);
      const flow = Buffer.concat([publishFrame({ topic: "f2/flow", qos: 2, id: 1, payload: "m" }), pubrel(1)]);
      pub.write(times(10_000, flow));
      // Flow control: once the mute subscriber's queue is at half its cap, the publisher is no
      // longer read; nothing acknowledged is dropped.
      const s = ctx.session(sid)!;
      await until(() => s.congestedSince >= 0);
      const inflight = limits.maxInflightOutbound;
      t.equal(s.inflight.size, inflight, "in flight at the window");
      t.ok(queueLength(s) >= 50 && queueLength(s) <= 100, `queue bounded by its cap (${queueLength(s)})`);
      t.equal(s.dropped, 0, "nothing dropped while the publisher is held back");
      t.equal((await mute.expectMany("publish", inflight)).length, inflight, "the subscriber got exactly the in-flight window");
      // Past drain_timeout the stuck consumer is disconnected; the publisher is read again.
      ctx.clock.advance(limits.drainTimeoutMs + 2_000);
      await mute.expectClose();
      await pub.expectMany("pubcomp", 10_000, 10_000);
      t.notOk(ctx.session(sid), "the mute client's session ended with its connection");
    },
  },
  {
    id: "F3",
    title: "duplicate QoS 2 PUBLISH before PUBREL → PUBREC again; delivered once",
    run: async (ctx) => {
      const w = await ctx.watch(["f3/#"]);
      for (const v of VERSIONS) {
        const c = await ctx.connect(v);
        c.write(publishFrame({ v, topic: `f3/v${v}`, qos: 2, id: 5, payload: "one" }));
        await c.expectPacket("pubrec");
        c.write(publishFrame({ v, topic: `f3/v${v}`, qos: 2, id: 5, dup: true, payload: "one" }));
        ctx.t.equal((await c.expectPacket("pubrec")).messageId, 5, `v${v}: PUBREC again`);
        c.write(pubrel(5));
        await c.expectPacket("pubcomp");
      }
      ctx.t.same((await w.before()).map((p) => p.topic), ["f3/v4", "f3/v5"], "each delivered once");
    },
  },
  {
    id: "F4",
    title: "PUBREL for an unknown id, duplicate PUBREL → PUBCOMP (v5: 0x92 when unknown); alive",
    run: async (ctx) => {
      const { t } = ctx;
      for (const v of VERSIONS) {
        const c = await ctx.connect(v);
        const unknown = v === 5 ? RC.PACKET_ID_NOT_FOUND : 0;
        c.write(pubrel(77));
        const p = await c.expectPacket("pubcomp");
        t.same([p.messageId, p.reasonCode ?? 0], [77, unknown], `v${v}: unknown id → PUBCOMP 0x${unknown.toString(16)}`);
        c.write(Buffer.concat([publishFrame({ v, topic: "f4", qos: 2, id: 8, payload: "x" }), pubrel(8), pubrel(8)]));
        await c.expectPacket("pubrec");
        const [a, b] = await c.expectMany("pubcomp", 2);
        t.same([a!.reasonCode ?? 0, b!.reasonCode ?? 0], [0, unknown], `v${v}: first PUBREL completes, the racing one is answered`);
        c.send({ cmd: "pingreq" });
        await c.expectPacket("pingresp");
      }
    },
  },
  {
    id: "F5",
    title: "clean reconnect with an id still in the old QoS 2 table → new message, delivered (a resumed session still dedups)",
    run: async (ctx) => {
      const w = await ctx.watch(["f5/#"]);
      for (const v of VERSIONS) {
        const id = ctx.id("f5");
        const a = await ctx.connect(v, { clientId: id, ...durable(v, true) });
        a.write(publishFrame({ v, topic: "f5/x", qos: 2, id: 7, payload: `first-v${v}` }));
        await a.expectPacket("pubrec");
        await a.destroy();
        const b = await ctx.connect(v, { clientId: id, clean: true });
        b.write(publishFrame({ v, topic: "f5/x", qos: 2, id: 7, payload: `second-v${v}` }));
        await b.expectPacket("pubrec");
        b.write(pubrel(7));
        await b.expectPacket("pubcomp");
        // Control: a resumed session keeps the id, so the DUP resend is not delivered again.
        const d = ctx.id("f5-durable");
        const c = await ctx.connect(v, { clientId: d, ...durable(v, true) });
        c.write(publishFrame({ v, topic: "f5/x", qos: 2, id: 9, payload: `once-v${v}` }));
        await c.expectPacket("pubrec");
        await c.destroy();
        const c2 = await reconnect(ctx, v, d);
        c2.write(publishFrame({ v, topic: "f5/x", qos: 2, id: 9, dup: true, payload: `once-v${v}` }));
        await c2.expectPacket("pubrec");
        c2.write(pubrel(9));
        await c2.expectPacket("pubcomp");
      }
      ctx.t.same((await w.before()).map((p) => String(p.payload)), ["first-v4", "second-v4", "once-v4", "first-v5", "second-v5", "once-v5"]);
    },
  },
  {
    id: "F6",
    title: "resume with clean=0 while QoS 1/2 PUBLISH and PUBREL are outstanding → resent with original ids, DUP=1, in order",
    run: async (ctx) => {
      const { t } = ctx;
      const wills = await ctx.watch(["f6will/#"]);
      for (const v of VERSIONS) {
        const id = ctx.id("f6");
        const topic = `f6/v${v}`;
        const will = { topic: `f6will/v${v}`, payload: Buffer.from("x"), qos: 0 as const, retain: false };
        const s = await ctx.connect(v, { clientId: id, will, ...durable(v, true) });
        await subscribe(s, topic, 2);
        const pub = await ctx.connect(v);
        for (const [i, qos] of ([1, 2, 2, 1] as const).entries()) await publish(pub, topic, `m${i + 1}`, qos);
        const [m1, m2, m3, m4] = await s.expectMany("publish", 4);
        t.same([m1, m2, m3, m4].map((p) => String(p!.payload)), ["m1", "m2", "m3", "m4"], `v${v}: first delivery in order`);
        s.send({ cmd: "pubrec", messageId: m2!.messageId! });
        await s.expectPacket("pubrel");
        await s.destroy();
        // The will tells us the broker has seen the connection go (so m5 is queued, not sent).
        t.equal((await wills.c.expectPacket("publish")).topic, will.topic, `v${v}: old connection closed`);
        await publish(pub, topic, "m5", 1);
        const s2 = await reconnect(ctx, v, id);
        const resent = [];
        for (let i = 0; i < 5; i++) resent.push(summary(await s2.next()));
        const reason = v === 5 ? " reason=0x0" : "";
        t.same(
          resent,
          [
            `publish id=${m1!.messageId} "${topic}" q1 dup "m1"`,
            `pubrel id=${m2!.messageId}${reason}`,
            `publish id=${m3!.messageId} "${topic}" q2 dup "m3"`,
            `publish id=${m4!.messageId} "${topic}" q1 dup "m4"`,
            `publish id=${m4!.messageId! + 1} "${topic}" q1 "m5"`,
          ],
          `v${v}: resent in order, then the queued message`,
        );
      }
    },
  },
  {
    id: "F7",
    title: "v5 client with Receive Maximum 5 → never more than 5 outstanding QoS > 0 messages to it",
    run: async (ctx) => {
      const { t } = ctx;
      const id = ctx.id("f7");
      const s = await ctx.connect(5, { clientId: id, properties: { receiveMaximum: 5 } });
      await subscribe(s, "f7", 1);
      const pub = await ctx.connect(4);
      pub.write(Buffer.concat(Array.from({ length: 20 }, (_, i) => publishFrame({ topic: "f7", qos: 1, id: i + 1, payload: `${i}` }))));
      await pub.expectMany("puback", 20); // all 20 routed
      const first = await s.expectMany("publish", 5);
      const session = ctx.session(id)!;
      t.same([session.inflight.size, queueLength(session)], [5, 15], "5 in flight, 15 queued");
      const got = first.map((p) => String(p.payload));
      const outstanding = first.map((p) => p.messageId!);
      while (got.length < 20) {
        s.send({ cmd: "puback", messageId: outstanding.shift()! });
        const p = await s.expectPacket("publish");
        got.push(String(p.payload));
        outstanding.push(p.messageId!);
        t.ok(session.inflight.size <= 5, `≤ 5 in flight after message ${got.length}`);
      }
      t.same(got, Array.from({ length: 20 }, (_, i) => `${i}`), "all 20, in order");
      t.equal(new Set(outstanding).size, 5, "ids unique among the outstanding ones");
    },
  },
  {
    id: "F8",
    title: "v5 Maximum Packet Size smaller than a (queued) message → dropped as if sent; the session keeps flowing",
    run: async (ctx) => {
      const { t } = ctx;
      const id = ctx.id("f8");
      const opts = { clientId: id, properties: { sessionExpiryInterval: 300, maximumPacketSize: 64 } };
      let s = await ctx.connect(5, opts);
      await subscribe(s, "f8/#", 1);
      const pub = await ctx.connect(4);
      const big = "x".repeat(100);
      for (let round = 0; round < 2; round++) {
        const queued = round === 1;
        if (queued) {
          s.send({ cmd: "disconnect" });
          await s.expectClose();
        }
        for (const [qos, payload] of [[1, big], [0, big], [1, "small"]] as const) await publish(pub, "f8/x", payload, qos);
        if (queued) s = await ctx.connect(5, { ...opts, clean: false });
        const p = await s.expectPacket("publish");
        t.equal(String(p.payload), "small", `${queued ? "queued" : "live"}: only the small message arrives`);
        s.send({ cmd: "puback", messageId: p.messageId! });
        s.send({ cmd: "pingreq" });
        await s.expectPacket("pingresp");
        const session = ctx.session(id)!;
        t.same([session.inflight.size, queueLength(session), s.untaken().filter((x) => x.cmd === "publish").length], [0, 0, 0], "nothing stuck");
      }
    },
  },
  {
    id: "F9",
    title: "overlapping subscriptions of mixed QoS → one copy at the max granted QoS, downgraded to it",
    run: async (ctx) => {
      for (const v of VERSIONS) {
        const w = await ctx.watch([], v);
        const root = `f9v${v}`;
        await subscribe(w.c, [[`${root}/#`, 0], [`${root}/a`, 2], [`+/b`, 1]]);
        const pub = await ctx.connect(v);
        for (const [sub, qos] of [["a", 2], ["a", 1], ["b", 2], ["c", 2], ["b", 0]] as const) await publish(pub, `${root}/${sub}`, `${sub}${qos}`, qos);
        ctx.t.same(
          (await w.before()).map((p) => [String(p.payload), p.qos]),
          [["a2", 2], ["a1", 1], ["b2", 1], ["c2", 0], ["b0", 0]],
          `v${v}: one copy each, at min(publish QoS, max granted)`,
        );
      }
    },
  },
];

/** Resolves once `cond()` holds, checking after each turn of the event loop (bounded). */
async function until(cond: () => boolean, turns = 100_000): Promise<void> {
  for (let i = 0; i < turns; i++) {
    if (cond()) return;
    await new Promise((r) => setImmediate(r));
  }
  throw new Error("condition not reached");
}

// Checklist section A (framing and size) as table rows: what the framing gate does on the wire.
import { RC } from "../../../hub/broker/reason-codes.js";
import {
  connectFrame,
  frame,
  hex,
  type Level,
  publishFrame,
  type RawClient,
  subscribeFrame,
  summary,
  vbi,
} from "../../support/raw-client.js";
import { type Ctx, gone, type Row, VERSIONS } from "./ctx.js";

/** After a valid CONNECT at each version, `bytes` closes the connection (v5: DISCONNECT `v5`). */
function closesAfterConnect(bytes: Buffer, v5: number, versions: readonly Level[] = VERSIONS) {
  return async (ctx: Ctx) => {
    const w = await ctx.watch(["#"]);
    for (const v of versions) {
      const c = await ctx.connect(v);
      c.write(bytes);
      await gone(ctx.t, c, { v5, what: bytes.toString("hex").slice(0, 32) });
    }
    ctx.t.same((await w.before()).map(summary), [], "nothing was routed");
  };
}

/** A packet whose whole size (fixed header included) is `total`. */
function sizedPublishHeader(total: number): Buffer {
  for (let hl = 1; hl <= 4; hl++) {
    const rl = total - 1 - hl;
    if (vbi(rl).length === hl) return Buffer.concat([Buffer.from([0x30]), vbi(rl)]);
  }
  throw new Error(`no header for ${total}`);
}

export const rowsA: Row[] = [
  {
    id: "A1",
    title: "5-byte remaining length → close (v5: 0x81)",
    run: async (ctx) => {
      await closesAfterConnect(hex("30 80 80 80 80 01"), RC.MALFORMED_PACKET)(ctx);
      // Before CONNECT too: no CONNACK.
      const c = await ctx.open();
      c.write(hex("10 80 80 80 80 01"));
      await gone(ctx.t, c, { what: "as the first packet" });
    },
  },
  {
    id: "A2",
    title: "non-minimal VBI (80 00 for 0) → close 0x81",
    run: closesAfterConnect(hex("c0 80 00"), RC.MALFORMED_PACKET),
  },
  {
    id: "A3",
    title: "VBI boundary values in well-formed packets are parsed correctly",
    // 268,435,455 + header is one byte over this cap: the 4-byte maximum must decode exactly (MQTT-275).
    limits: { maxPacketSize: 268_435_459 },
    run: async (ctx) => {
      const { t } = ctx;
      const sub = await ctx.connect(4);
      await subscribeOk(sub, "a3");
      const pub = await ctx.connect(4);
      for (const rl of [127, 128, 16_383, 16_384, 2_097_151, 2_097_152]) {
        const payload = Buffer.alloc(rl - 4); // topic "a3": 2 + 2 bytes, QoS 0
        for (let i = 0; i < payload.length; i++) payload[i] = (i * 7) & 0xff;
        const bytes = publishFrame({ topic: "a3", payload });
        t.same(bytes.subarray(1, 1 + vbi(rl).length), vbi(rl), `remaining length ${rl} is encoded in ${vbi(rl).length} bytes`);
        pub.write(bytes);
        const got = await sub.expectPacket("publish", 10_000);
        t.ok(got.length === rl && (got.payload as Buffer).equals(payload), `remaining length ${rl}: delivered intact`);
      }
      // The largest value (ff ff ff 7f): decoded as 268,435,455, which is over the cap by exactly one.
      const v5 = await ctx.connect(5);
      v5.write(hex("30 ff ff ff 7f"));
      await gone(t, v5, { v5: RC.PACKET_TOO_LARGE, what: "remaining length 268,435,455" });
    },
  },
  {
    id: "A4",
    title: "header declaring maxPacketSize+1 → closed before the body is buffered (v5: 0x95)",
    limits: { maxPacketSize: 1024 },
    run: async (ctx) => {
      const { t, b } = ctx;
      const sessions = b.broker.core.sessions.size;
      const w = await ctx.watch(["a4"]);
      for (const v of VERSIONS) {
        // Only the header is sent: the close proves the broker did not wait for 1,022 body bytes.
        for (const header of [sizedPublishHeader(1025), Buffer.concat([Buffer.from([0x82]), vbi(1022)])]) {
          const c = await ctx.connect(v);
          c.write(header);
          await gone(t, c, { v5: RC.PACKET_TOO_LARGE, what: `type ${header[0]! >> 4}` });
        }
      }
      // Any auth state: a CONNECT of maxPacketSize+1 before anything is known about the client.
      const pre = await ctx.open();
      pre.write(Buffer.concat([Buffer.from([0x10]), vbi(1022)]));
      await gone(t, pre, { what: "CONNECT header" });
      // The boundary itself is accepted: a PUBLISH of exactly maxPacketSize bytes is delivered.
      const pub = await ctx.connect(4);
      const header = sizedPublishHeader(1024);
      const body = Buffer.alloc(1024 - header.length);
      body.writeUInt16BE(2, 0);
      body.write("a4", 2);
      pub.write(Buffer.concat([header, body]));
      const got = await w.before();
      t.same(got.map((p) => [p.topic, (p.payload as Buffer).length]), [["a4", 1024 - header.length - 4]], "maxPacketSize itself is accepted");
      t.equal(b.broker.core.sessions.size, sessions + 2, "no state left by the refused clients");
    },
  },
  {
    id: "A5",
    title: "first packet not CONNECT, or CONNECT > 64 KiB → close, no CONNACK",
    run: async (ctx) => {
      const { t } = ctx;
      const w = await ctx.watch(["#"]);
      const cases: Array<[string, Buffer]> = [
        ["PUBLISH first", publishFrame({ topic: "a5", payload: "x" })],
        ["PINGREQ first", hex("c0 00")],
        ["SUBSCRIBE first", subscribeFrame({ filters: [["#", 0]] })],
        // Header only: a 256 MB claim is refused before any body byte is read (CVE-2023-0809).
        ["CONNECT claiming 256 MB", hex("10 ff ff ff 7f")],
        ["CONNECT of 65,537 bytes", Buffer.concat([Buffer.from([0x10]), vbi(65_533)])],
      ];
      for (const [what, bytes] of cases) {
        const c = await ctx.open();
        c.write(bytes);
        await gone(t, c, { what });
      }
      t.same((await w.before()).map(summary), [], "nothing was routed");
      // A CONNECT of exactly 64 KiB (a large password) is accepted.
      const build = (n: number) => connectFrame({ clientId: "a5-big", username: "u", password: Buffer.alloc(n) });
      let n = 65_536 - build(0).length;
      while (build(n).length > 65_536) n--;
      const big = build(n);
      t.equal(big.length, 65_536, "the boundary CONNECT is 64 KiB");
      const ok = await ctx.open();
      ok.write(big);
      t.equal((await ok.expectPacket("connack")).returnCode, 0, "a 64 KiB CONNECT is accepted");
    },
  },
  {
    id: "A6",
    title: "reserved packet type 0 → close (v5: 0x81)",
    run: closesAfterConnect(hex("00 00"), RC.MALFORMED_PACKET),
  },
  {
    id: "A6",
    title: "packet type 15 (AUTH) on 3.1.1 → close",
    run: closesAfterConnect(hex("f0 00"), RC.MALFORMED_PACKET, [4]),
  },
  ...(
    [
      ["SUBSCRIBE with flags 0x0", frame(0x80, hex("00 01"), hex("00 01 61 00"))],
      ["UNSUBSCRIBE with flags 0x0", frame(0xa0, hex("00 01"), hex("00 01 61"))],
      ["PUBREL with flags 0x0", hex("60 02 00 01")],
      ["PUBLISH with QoS 3", hex("36 05 00 01 61 00 01")],
    ] as const
  ).map(
    ([what, bytes]): Row => ({
      id: "A7",
      title: `${what} → close (v5: 0x81)`,
      // v5 PUBLISH/SUBSCRIBE bodies differ, but the flags are refused on the first byte.
      run: closesAfterConnect(bytes, RC.MALFORMED_PACKET),
    }),
  ),
  {
    id: "A8",
    title: "PINGREQ with remaining length 1 → close (v5: 0x81), no PINGRESP",
    run: closesAfterConnect(hex("c0 01 00"), RC.MALFORMED_PACKET),
  },
  {
    id: "A8",
    title: "v3 PUBACK with remaining length 3 → close",
    run: closesAfterConnect(hex("40 03 00 01 00"), RC.MALFORMED_PACKET, [4]),
  },
  {
    id: "A8",
    title: "v3 DISCONNECT with remaining length 1 → close as malformed (the will is published)",
    run: async (ctx) => {
      const w = await ctx.watch(["a8/#"]);
      const c = await ctx.connect(4, { will: { topic: "a8/will", payload: Buffer.from("gone"), qos: 0, retain: false } });
      c.write(hex("e0 01 00"));
      await gone(ctx.t, c);
      // A well-formed DISCONNECT would discard the will; a malformed one is an abnormal close.
      ctx.t.same((await w.before()).map((p) => p.topic), ["a8/will"], "will published");
    },
  },
  {
    id: "A9",
    title: "silent socket and 1 byte per 5 s (slowloris) → closed after connectTimeout",
    limits: { connectTimeoutMs: 10_000 },
    run: async (ctx) => {
      const { t, clock } = ctx;
      const silent = await ctx.open();
      const slow = await ctx.open();
      const late = await ctx.open();
      await ctx.sync(); // the broker has accepted the three sockets at fake time 0
      const connect = connectFrame({ clientId: "a9-late" });
      slow.write(connect.subarray(0, 1));
      clock.advance(5_000);
      slow.write(connect.subarray(1, 2));
      clock.advance(4_000);
      // At 9 s a CONNECT is still in time.
      late.write(connect);
      t.equal((await late.expectPacket("connack")).returnCode, 0, "CONNECT at 9 s accepted");
      slow.write(connect.subarray(2, 3));
      clock.advance(2_000);
      await gone(t, silent, { what: "silent socket at 11 s" });
      await gone(t, slow, { what: "slowloris at 11 s" });
      late.send({ cmd: "pingreq" });
      await late.expectPacket("pingresp");
      t.pass("the client that connected in time is unaffected");
    },
  },
  {
    id: "A10",
    title: "pipelined packets in one write and one packet per byte → identical semantics",
    run: async (ctx) => {
      for (const v of VERSIONS) {
        const script = Buffer.concat([
          connectFrame({ v, clientId: `a10-v${v}` }),
          subscribeFrame({ v, id: 1, filters: [["a10/#", 2]] }),
          publishFrame({ v, topic: "a10/q0", payload: "zero" }),
          publishFrame({ v, topic: "a10/q1", qos: 1, id: 2, payload: "one" }),
          publishFrame({ v, topic: "a10/q2", qos: 2, id: 3, payload: "two" }),
          hex("62 02 00 03"), // PUBREL 3 (v5 may omit the reason code: §3.6.2.1)
          hex("c0 00"),
        ]);
        const transcripts: string[][] = [];
        for (const bytewise of [false, true]) {
          const c = await ctx.open(v);
          if (bytewise) await c.writeBytewise(script);
          else c.write(script);
          await c.expectPacket("pingresp");
          transcripts.push(c.received.map(summary));
          c.write(hex("e0 00"));
          await c.expectClose();
        }
        ctx.t.same(transcripts[1], transcripts[0], `v${v}: same replies (${transcripts[0]!.length} packets)`);
        ctx.t.equal(transcripts[0]!.length, 9, `v${v}: CONNACK, SUBACK, 3 deliveries, PUBACK, PUBREC, PUBCOMP, PINGRESP`);
      }
    },
  },
  {
    id: "A11",
    title: "v5 property length overrunning the packet, next packet pipelined → 0x81; the next packet is not consumed",
    run: async (ctx) => {
      const w = await ctx.watch(["a11"]);
      const c = await ctx.connect(5);
      // PUBLISH "a11", property length 10 but only 2 property bytes left; then PINGREQ.
      c.write(Buffer.concat([frame(0x30, hex("00 03"), "a11", hex("0a 01 01")), hex("c0 00")]));
      await gone(ctx.t, c, { v5: RC.MALFORMED_PACKET });
      ctx.t.same((await w.before()).map(summary), [], "nothing was routed");
    },
  },
];

async function subscribeOk(c: RawClient, filter: string) {
  c.send({ cmd: "subscribe", messageId: c.nextId(), subscriptions: [{ topic: filter, qos: 0 }] });
  await c.expectPacket("suback");
}

// Framer tests: checklist section A (A1-A8, A10) plus the CONNECT state machine (A5, C3), built from
// raw bytes. Each row feeds bytes and checks what next() yields.
import t from "tap";
import {
  createFramer,
  type Framer,
  type FrameError,
  fixedHeaderLength,
  isFrameError,
  MAX_CONNECT_SIZE,
  MAX_REMAINING_LENGTH,
  type ProtocolLevel,
} from "../../hub/broker/framing.js";
import { RC } from "../../hub/broker/reason-codes.js";

import { vbi, bytes, str, pkt } from "../support/bytes.js";
const connect = (level: ProtocolLevel = 4): Buffer =>
  level === 3
    ? pkt(0x10, str("MQIsdp"), 3, 0x02, [0, 60], str("c"))
    : pkt(0x10, str("MQTT"), level, 0x02, [0, 60], level === 5 ? [0] : [], str("c"));

// --- helpers -----------------------------------------------------------------------------------
type Out = string; // hex of a packet, or "E<reason>"
function drain(f: Framer, out: Out[]): void {
  for (let r = f.next(); r !== undefined; r = f.next()) {
    if (isFrameError(r)) {
      out.push(`E${r.reason.toString(16)}`);
      return;
    }
    out.push(r.toString("hex"));
    if (f.phase === "connect-pending") {
      f.setProtocol((r[r.readUInt16BE(2) + 4]! & 0x7f) as ProtocolLevel);
      f.setConnected();
    }
  }
}
/** Feeds `data` in chunks of `size` (0 = one chunk); the CONNECT at the start is accepted as it comes. */
function feed(data: Buffer, size = 0, maxPacketSize = 1024 * 1024): Out[] {
  const f = createFramer({ maxPacketSize });
  const out: Out[] = [];
  const step = size || data.length;
  for (let i = 0; i < data.length; i += step) {
    f.push(data.subarray(i, i + step));
    drain(f, out);
    if (f.phase === "failed") break;
  }
  return out;
}
/** A framer already past CONNECT at `level`. */
function connected(level: ProtocolLevel, maxPacketSize = 1024): Framer {
  const f = createFramer({ maxPacketSize });
  f.push(connect(level));
  const c = f.next();
  if (c === undefined || isFrameError(c)) throw new Error("CONNECT not framed");
  f.setProtocol(level);
  f.setConnected();
  return f;
}
function errorOf(f: Framer, data: Buffer): FrameError | "packet" | "more" {
  f.push(data);
  const r = f.next();
  if (r === undefined) return "more";
  return isFrameError(r) ? r : "packet";
}

// --- A1, A2: the remaining length VBI ----------------------------------------------------------
t.test("A1: a 5-byte remaining length is malformed, detected at its 4th byte", async (t) => {
  for (const level of [4, 5] as const) {
    const f = connected(level);
    t.match(errorOf(f, bytes("3080808080")), { reason: RC.MALFORMED_PACKET }, `v${level}`);
    t.equal(f.buffered, 0, "nothing held after the error");
  }
  const pre = createFramer({ maxPacketSize: 1024 });
  t.match(errorOf(pre, bytes("108080808001")), { reason: RC.MALFORMED_PACKET }, "also before CONNECT");
});

t.test("A2: a non-minimal VBI is malformed (policy: under every version)", async (t) => {
  for (const level of [4, 5] as const) {
    t.match(errorOf(connected(level), bytes("c08000")), { reason: RC.MALFORMED_PACKET }, `PINGREQ 80 00, v${level}`);
    t.match(errorOf(connected(level), bytes("30808000")), { reason: RC.MALFORMED_PACKET }, `PUBLISH 80 80 00, v${level}`);
  }
  t.equal(errorOf(connected(5), bytes("c000")), "packet", "minimal 00 is fine");
});

t.test("A3: boundary remaining lengths frame correctly", async (t) => {
  for (const rl of [2, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152]) {
    const body = Buffer.alloc(rl, 0x61);
    body.writeUInt16BE(1, 0); // topic length 1, topic "a", rest payload
    const p = bytes(0x30, vbi(rl), body);
    const f = connected(4, 3 * 1024 * 1024);
    f.push(p.subarray(0, 1000));
    f.push(p.subarray(1000));
    const r = f.next();
    t.ok(r instanceof Buffer && r.equals(p), `rl ${rl} (${vbi(rl).length}-byte VBI)`);
    t.equal(f.next(), undefined);
    t.equal(f.buffered, 0);
  }
  // The largest VBI: header accepted under a large enough cap, then it waits for the body.
  const f = connected(4, MAX_REMAINING_LENGTH + 5);
  t.equal(errorOf(f, bytes(0x30, vbi(MAX_REMAINING_LENGTH))), "more", "268,435,455 decodes and waits");
  t.same(vbi(MAX_REMAINING_LENGTH), [0xff, 0xff, 0xff, 0x7f]);
  t.equal(f.buffered, 5);
});

// --- A4: size cap before buffering ---------------------------------------------------------------
t.test("A4: a header declaring maxPacketSize+1 fails before any body byte is held", async (t) => {
  const cap = 1000;
  for (const b0 of [0x30, 0x32, 0x82, 0xa2, 0x62, 0x40, 0xe0]) {
    const f = connected(5, cap);
    const rl = cap + 1 - 3; // 1 type byte + 2 VBI bytes + rl = cap + 1
    t.match(errorOf(f, bytes(b0, vbi(rl))), { reason: RC.PACKET_TOO_LARGE }, `type ${b0 >> 4}`);
    t.equal(f.buffered, 0);
    const ok = connected(5, cap);
    t.equal(errorOf(ok, bytes(0x30, vbi(rl - 1), [0, 1, 0x61, 0])), "more", `exactly the cap is accepted (type 3)`);
  }
  const huge = createFramer({ maxPacketSize: MAX_REMAINING_LENGTH + 5 });
  t.match(errorOf(huge, bytes(0x10, vbi(MAX_REMAINING_LENGTH))), { reason: RC.PACKET_TOO_LARGE }, "256 MB CONNECT claim");
  t.equal(huge.buffered, 0);
  t.equal(huge.phase, "failed");
  huge.push(Buffer.alloc(100));
  t.equal(huge.buffered, 0, "a failed framer drops whatever follows");
  t.match(huge.next(), { reason: RC.PACKET_TOO_LARGE }, "the error is sticky");
});

// --- A5: before CONNECT ------------------------------------------------------------------------
t.test("A5: the first packet must be a CONNECT of at most 64 KiB", async (t) => {
  const fresh = () => createFramer({ maxPacketSize: 1024 * 1024 });
  t.match(errorOf(fresh(), pkt(0x30, str("a/b"), "hi")), { reason: RC.PROTOCOL_ERROR }, "PUBLISH first");
  t.match(errorOf(fresh(), bytes("c000")), { reason: RC.PROTOCOL_ERROR }, "PINGREQ first");
  t.match(errorOf(fresh(), bytes("00")), { reason: RC.PROTOCOL_ERROR }, "type 0 first");
  t.match(errorOf(fresh(), bytes(0x30)), { reason: RC.PROTOCOL_ERROR }, "rejected on the first byte");
  t.match(errorOf(fresh(), bytes(0x10, vbi(MAX_CONNECT_SIZE - 4 + 1))), { reason: RC.PACKET_TOO_LARGE }, "CONNECT 64 KiB + 1");
  t.equal(errorOf(fresh(), bytes(0x10, vbi(MAX_CONNECT_SIZE - 4))), "more", "CONNECT of exactly 64 KiB waits for its body");
  const small = createFramer({ maxPacketSize: 100 });
  t.match(errorOf(small, bytes(0x10, vbi(99))), { reason: RC.PACKET_TOO_LARGE }, "a smaller maxPacketSize caps CONNECT too");
  t.match(errorOf(fresh(), bytes(0x12, 0)), { reason: RC.MALFORMED_PACKET }, "CONNECT flags must be 0");
});

t.test("nothing after the CONNECT is yielded until it is accepted (MQTT-3.1.4-5)", async (t) => {
  const f = createFramer({ maxPacketSize: 1024 });
  f.push(bytes(connect(4), pkt(0x30, str("a"), "x"), "c000"));
  const c = f.next();
  t.ok(c instanceof Buffer && c.equals(connect(4)));
  t.equal(f.phase, "connect-pending");
  t.equal(f.next(), undefined, "PUBLISH held");
  t.throws(() => f.setConnected(), /setProtocol/, "protocol level first");
  f.setProtocol(4);
  f.setConnected();
  t.equal((f.next() as Buffer)[0], 0x30);
  t.equal((f.next() as Buffer)[0], 0xc0);
  t.equal(f.next(), undefined);
});

t.test("a client that floods while its CONNECT is pending is cut off at maxPacketSize", async (t) => {
  const f = createFramer({ maxPacketSize: 200 });
  f.push(connect(4));
  f.next();
  f.push(Buffer.alloc(150, 0xc0));
  t.equal(f.next(), undefined);
  f.push(Buffer.alloc(100, 0xc0));
  t.match(f.next(), { reason: RC.QUOTA_EXCEEDED });
  t.equal(f.buffered, 0);
});

t.test("C3 and direction: a second CONNECT and server-only packets are protocol errors", async (t) => {
  t.match(errorOf(connected(4), connect(4)), { reason: RC.PROTOCOL_ERROR }, "second CONNECT");
  for (const b0 of [0x20, 0x90, 0xb0, 0xd0]) {
    t.match(errorOf(connected(5), bytes(b0, 0)), { reason: RC.PROTOCOL_ERROR }, `type ${b0 >> 4}`);
  }
});

// --- A6, A7: types and flags ---------------------------------------------------------------------
t.test("A6: reserved packet type 0 always, type 15 (AUTH) on 3.1.1", async (t) => {
  for (const level of [3, 4, 5] as const) t.match(errorOf(connected(level), bytes("0000")), { reason: RC.MALFORMED_PACKET }, `type 0 v${level}`);
  t.match(errorOf(connected(4), bytes("f000")), { reason: RC.MALFORMED_PACKET }, "AUTH on v4");
  t.match(errorOf(connected(3), bytes("f000")), { reason: RC.MALFORMED_PACKET }, "AUTH on v3");
  t.equal(errorOf(connected(5), bytes("f000")), "packet", "AUTH on v5 is framed");
  t.match(errorOf(connected(5), bytes("f100")), { reason: RC.MALFORMED_PACKET }, "AUTH flags must be 0");
});

t.test("A7: fixed-header flags", async (t) => {
  const rows: [string, number, boolean][] = [
    ["SUBSCRIBE flags 0 (first byte 0x80)", 0x80, false],
    ["SUBSCRIBE flags 3", 0x83, false],
    ["SUBSCRIBE flags 2", 0x82, true],
    ["UNSUBSCRIBE flags 0", 0xa0, false],
    ["UNSUBSCRIBE flags 2", 0xa2, true],
    ["PUBREL flags 0", 0x60, false],
    ["PUBREL flags 2", 0x62, true],
    ["PUBLISH QoS 3", 0x36, false],
    ["PUBLISH QoS 3 + DUP + RETAIN", 0x3f, false],
    ["PUBLISH QoS 2 + DUP + RETAIN", 0x3d, true],
    ["PUBACK flags 1", 0x41, false],
    ["PUBREC flags 8", 0x58, false],
    ["PUBCOMP flags 2", 0x72, false],
    ["PINGREQ flags 1", 0xc1, false],
    ["DISCONNECT flags 4", 0xe4, false],
  ];
  for (const [name, b0, ok] of rows) {
    const r = errorOf(connected(5, 1024), bytes(b0, 0x7f));
    if (ok) t.equal(r, "more", name);
    else t.match(r, { reason: RC.MALFORMED_PACKET }, name);
  }
});

// --- A8: exact lengths ---------------------------------------------------------------------------
t.test("A8: exact remaining lengths", async (t) => {
  const rows: [string, ProtocolLevel, Buffer, boolean][] = [
    ["PINGREQ rl 1, v4", 4, bytes("c00100"), false],
    ["PINGREQ rl 1, v5", 5, bytes("c00100"), false],
    ["PINGREQ rl 0", 4, bytes("c000"), true],
    ["DISCONNECT rl 1, v4", 4, bytes("e00100"), false],
    ["DISCONNECT rl 0, v4", 4, bytes("e000"), true],
    ["DISCONNECT rl 1 (reason only), v5", 5, bytes("e00104"), true],
    ["PUBACK rl 3, v4", 4, bytes("4003000100"), false],
    ["PUBACK rl 1, v4", 4, bytes("400100"), false],
    ["PUBREC rl 3, v3", 3, bytes("5003000100"), false],
    ["PUBREL rl 4, v4", 4, bytes("620400010000"), false],
    ["PUBCOMP rl 2, v4", 4, bytes("70020001"), true],
    ["PUBACK rl 1, v5", 5, bytes("400100"), false],
    ["PUBACK rl 3 (reason), v5", 5, bytes("4003000110"), true],
    ["PUBACK rl 4 (reason + props), v5", 5, bytes("400400011000"), true],
    ["PUBLISH QoS 1 rl 3 (no room for the id), v4", 4, bytes("3203000161"), false],
    ["PUBLISH QoS 0 rl 2 without property length, v5", 5, bytes("30020000"), false],
  ];
  for (const [name, level, data, ok] of rows) {
    const r = errorOf(connected(level), data);
    if (ok) t.equal(r, "packet", name);
    else t.match(r, { reason: RC.MALFORMED_PACKET }, name);
  }
});

// --- A10: stream property ----------------------------------------------------------------------
t.test("A10: pipelined in one chunk, split into 1-byte chunks or any size: identical results", async (t) => {
  const stream = bytes(
    connect(5),
    pkt(0x30, str("a/b"), [0], "hello"),
    pkt(0x32, str("a/c"), [0, 7], [0], Buffer.alloc(300, 1)),
    pkt(0x82, [0, 8], [0], str("x/#"), 1),
    bytes("c000"),
    pkt(0x62, [0, 7]),
    bytes("e000"),
  );
  const whole = feed(stream);
  t.equal(whole.length, 7);
  t.notOk(whole.some((o) => o.startsWith("E")));
  for (const size of [1, 2, 3, 5, 7, 64, 299]) t.same(feed(stream, size), whole, `chunks of ${size}`);
  // With a fault in the middle, the same packets come out before the same error.
  const bad = bytes(connect(4), bytes("c000"), bytes("c001"), bytes("c000"));
  const expected = [connect(4).toString("hex"), "c000", "E81"];
  t.same(feed(bad), expected);
  t.same(feed(bad, 1), expected);
});

t.test("whole packets inside one chunk are returned without copying", async (t) => {
  const f = connected(4);
  const chunk = bytes(pkt(0x30, str("a"), "x"), pkt(0x30, str("b"), "y"));
  f.push(chunk);
  const a = f.next() as Buffer;
  const b = f.next() as Buffer;
  t.equal(a.buffer, chunk.buffer, "same memory");
  t.equal(b.byteOffset, chunk.byteOffset + a.length);
  t.equal(f.buffered, 0);
});

t.test("options and helpers", async (t) => {
  t.throws(() => createFramer({ maxPacketSize: 1 }), RangeError);
  const f = createFramer({ maxPacketSize: 100 });
  t.throws(() => f.setConnected(), /before a CONNECT/);
  t.throws(() => f.setProtocol(6 as ProtocolLevel), RangeError);
  t.equal(fixedHeaderLength(bytes("c000")), 2);
  t.equal(fixedHeaderLength(bytes(0x30, vbi(20000))), 4);
  t.equal(fixedHeaderLength(bytes("3080808080")), -1);
});

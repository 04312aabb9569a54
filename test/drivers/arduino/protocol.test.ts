// hubproto 1 (drivers/arduino/PROTOCOL.md): the CRC-8 against its catalogue check value, every line
// type both ways, escapes, forward compatibility (unknown fields and verbs), refusal of damaged
// lines, the line splitter, and a fuzz run: no input makes the parser throw, and a damaged valid
// line is never accepted as a different message.
import fc from "fast-check";
import t from "tap";
import {
  type BoardMessage,
  crc8,
  escapeToken,
  formatBoardMessage,
  formatHubCommand,
  formatLine,
  lineSplitter,
  parseBoardLine,
  parseHubLine,
  unescapeToken,
} from "../../../drivers/arduino/protocol.js";

const strip = (s: string) => s.replace(/\n$/, "");

t.test("CRC-8/SMBUS catalogue check value and a hand-computed line", async (t) => {
  t.equal(crc8("123456789"), 0xf4, "check value of CRC-8/SMBUS (poly 0x07, init 0)");
  t.equal(crc8(""), 0);
  t.equal(crc8(Buffer.from("123456789")), 0xf4, "bytes and strings agree");
  // 0x41 ('A'): 0x41 shifted through poly 0x07 eight times = 0xC0 (computed by hand from the definition)
  t.equal(crc8("A"), 0xc0);
  t.equal(formatLine("PING 1"), `PING 1*${crc8("PING 1").toString(16).toUpperCase().padStart(2, "0")}\n`);
});

t.test("banner: version, board, channels with units, unknown fields ignored", async (t) => {
  const line = strip(formatLine("HELLO hubproto=1 board=greenhouse fw=1.2 future=yes ch=soil:sensor:% ch=temp:sensor:\\xC2\\xB0C ch=pump:output ch=door:binary ch=x:laser ch=Bad:sensor"));
  const r = parseBoardLine(line);
  t.ok(r.ok);
  if (!r.ok || r.message.type !== "hello") return;
  t.equal(r.message.version, 1);
  t.equal(r.message.board, "greenhouse");
  t.same(r.message.channels, [
    { name: "soil", kind: "sensor", unit: "%" },
    { name: "temp", kind: "sensor", unit: "°C" },
    { name: "pump", kind: "output" },
    { name: "door", kind: "binary" },
  ]);
  t.same(r.message.fields, { fw: "1.2", future: "yes" }, "unknown fields are kept as data, not errors");
  t.equal(r.message.notes.length, 2, "unknown kind and bad name are noted, not fatal");
  t.notOk(parseBoardLine(strip(formatLine("HELLO board=x"))).ok, "hubproto is required");
});

t.test("readings, events, pong, errors and unknown verbs", async (t) => {
  const p = (body: string) => parseBoardLine(strip(formatLine(body)));
  t.same(p("R soil 41.5"), { ok: true, message: { type: "reading", channel: "soil", value: 41.5 } });
  t.same(p("R t -3e2 extra=1"), { ok: true, message: { type: "reading", channel: "t", value: -300 } }, "extra tokens ignored");
  t.same(p("EV button pressed\\sthree\\stimes"), { ok: true, message: { type: "event", name: "button", text: "pressed three times" } });
  t.same(p("PONG 17"), { ok: true, message: { type: "pong", token: "17" } });
  t.same(p("ERR unknown_channel pumpx"), { ok: true, message: { type: "error", code: "unknown_channel", text: "pumpx" } });
  t.same(p("TELEMETRY a=1"), { ok: true, message: { type: "unknown", verb: "TELEMETRY" } }, "new verbs are ignored, not errors");
  t.equal((p("R soil nan") as { reason?: string }).reason, "malformed");
  t.equal((p("R soil 0x10") as { reason?: string }).reason, "malformed");
  t.equal((p("R soil") as { reason?: string }).reason, "malformed");
  t.equal((p("R soil 1e999") as { reason?: string }).reason, "malformed", "infinite");
});

t.test("damaged lines are refused with a reason", async (t) => {
  const good = strip(formatLine("R soil 41.5"));
  t.ok(parseBoardLine(good).ok);
  t.ok(parseBoardLine(`${good}\r`).ok, "println's CRLF");
  t.same(parseBoardLine(good.replace("41.5", "42.5")), { ok: false, reason: "checksum", detail: parseBoardLine(good.replace("41.5", "42.5")).ok ? "" : (parseBoardLine(good.replace("41.5", "42.5")) as { detail: string }).detail });
  t.equal((parseBoardLine("R soil 41.5") as { reason?: string }).reason, "malformed", "no checksum");
  t.equal((parseBoardLine(good.toLowerCase()) as { reason?: string }).reason, "checksum", "lower-case hex is accepted as hex; the body changed");
  t.equal((parseBoardLine(`R s\u0001il 1*00`) as { reason?: string }).reason, "malformed", "control byte");
  t.equal((parseBoardLine("x".repeat(600)) as { reason?: string }).reason, "malformed", "too long");
  t.equal((parseBoardLine("*00") as { reason?: string }).reason, "malformed", "empty body");
});

t.test("hub commands round-trip", async (t) => {
  for (const c of [{ type: "set", channel: "pump", value: 1 }, { type: "set", channel: "fan", value: 127.5 }, { type: "ping", token: "42" }, { type: "report" }] as const) {
    t.same(parseHubLine(strip(formatHubCommand(c))), { ok: true, message: c }, JSON.stringify(c));
  }
  t.match(formatHubCommand({ type: "set", channel: "pump", value: 1 }), /^SET pump 1\*[0-9A-F]{2}\n$/);
});

t.test("escapes", async (t) => {
  t.equal(escapeToken("a b\\c°"), "a\\sb\\\\c\\xC2\\xB0");
  t.equal(unescapeToken("a\\sb\\\\c\\xC2\\xB0"), "a b\\c°");
  t.equal(unescapeToken("bad\\q"), undefined);
  t.equal(unescapeToken("\\xFF"), undefined, "not UTF-8");
  fc.assert(fc.property(fc.string({ unit: "grapheme" }), (s) => unescapeToken(escapeToken(s)) === s));
});

t.test("splitter: lines, CRLF, chunk boundaries, overlong lines dropped whole", async (t) => {
  const lines: string[] = [];
  let over = 0;
  const s = lineSplitter((l) => lines.push(l), () => over++, 16);
  s.push(Buffer.from("ab"));
  s.push(Buffer.from("c\r\nde"));
  s.push(Buffer.from("f\n"));
  s.push(Buffer.from("x".repeat(40)));
  s.push(Buffer.from("yy\nok\n"));
  s.push(Buffer.from("0123456789abcdefgh\n"));
  t.same(lines, ["abc\r", "def", "ok"]);
  t.equal(over, 2);
});

const boardMessage: fc.Arbitrary<BoardMessage> = fc.oneof(
  fc.record({ type: fc.constant("reading" as const), channel: fc.stringMatching(/^[a-z0-9_-]{1,32}$/), value: fc.integer({ min: -1e6, max: 1e6 }) }),
  fc.record({ type: fc.constant("event" as const), name: fc.stringMatching(/^[a-z0-9_-]{1,32}$/), text: fc.string({ minLength: 1, maxLength: 40 }) }),
  fc.record({ type: fc.constant("pong" as const), token: fc.stringMatching(/^[0-9]{1,9}$/) }),
);

t.test("fuzz: arbitrary text and bytes never make the parsers throw", async (t) => {
  fc.assert(
    fc.property(fc.string({ maxLength: 700 }), (s) => {
      parseBoardLine(s);
      parseHubLine(s);
    }),
    { numRuns: 3000 },
  );
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 600 }), (b) => {
      const lines: string[] = [];
      lineSplitter((l) => lines.push(l), () => {}).push(b);
      for (const l of lines) parseBoardLine(l);
      parseBoardLine(Buffer.from(b).toString("latin1"));
    }),
    { numRuns: 3000 },
  );
  t.pass("no throw");
});

t.test("fuzz: a valid line round-trips, and a flipped byte is never accepted as another message", async (t) => {
  fc.assert(
    fc.property(boardMessage, fc.nat(), fc.integer({ min: 1, max: 255 }), (m, at, mask) => {
      const line = strip(formatBoardMessage(m));
      const r = parseBoardLine(line);
      if (!r.ok || JSON.stringify(r.message) !== JSON.stringify(m)) return false;
      const i = at % line.length;
      const damaged = line.slice(0, i) + String.fromCharCode((line.charCodeAt(i) ^ mask) & 0xff) + line.slice(i + 1);
      const d = parseBoardLine(damaged);
      // A single damaged byte is a burst of at most 8 bits: CRC-8 always catches it.
      return !d.ok || damaged.toUpperCase() === line.toUpperCase();
    }),
    { numRuns: 3000 },
  );
  t.pass("round trip and detection");
});

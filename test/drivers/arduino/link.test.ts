// The Arduino link over a real pseudo-terminal pair (socat) with a scripted board on the other end
// and a fake clock: banner handshake after discarded boot noise, readings, set → a SET line on the
// board, damaged lines dropped and counted, a hung board found by the heartbeat, and unplugging
// (killing socat) → offline → replugging (a new socat at the same path) → online with the outputs
// re-sent. Skipped with a reason when socat is missing.
import t from "tap";
import { hubprotoSession } from "../../../drivers/arduino/hubproto.js";
import { createLink, type LinkListener } from "../../../drivers/arduino/link.js";
import { formatBoardMessage, formatLine, parseHubLine } from "../../../drivers/arduino/protocol.js";
import { memoryLogger } from "../../../hub/log.js";
import { fakeClock } from "../../support/fake-clock.js";
import { advanceUntil, eventLog, openBoard, opensWhile, ptyPair, ptySkipReason, watchedSerial } from "./pty.js";

const skip = ptySkipReason();
if (skip) t.comment(`skipping the pty link tests: ${skip}`);

const BANNER = formatLine("HELLO hubproto=1 board=greenhouse fw=0.1 ch=soil:sensor:% ch=pump:output");

function rig(t: { teardown(fn: () => unknown): void }) {
  const pty = ptyPair(t);
  const clock = fakeClock();
  const log = memoryLogger();
  const io = eventLog<string>();
  const ev = eventLog<{ e: string; a?: unknown; b?: unknown }>();
  const listener: LinkListener = {
    online: (i) => ev.push({ e: "online", a: i }),
    offline: (r) => ev.push({ e: "offline", a: r }),
    reading: (c, v) => ev.push({ e: "reading", a: c, b: v }),
    event: (n, x) => ev.push({ e: "event", a: n, b: x }),
  };
  const link = createLink(
    { path: pty.hubPath, baudRate: 115200, bannerTimeoutMs: 4000, heartbeatIntervalMs: 5000, heartbeatTimeoutMs: 2000, retryMinMs: 500, retryMaxMs: 4000 },
    { serial: watchedSerial(io), clock, log, session: hubprotoSession },
    listener,
  );
  t.teardown(() => link.stop());
  return { pty, clock, log, io, ev, link };
}

t.test("handshake, readings, set, bad lines, heartbeat", { skip }, async (t) => {
  const r = rig(t);
  await r.pty.plug();
  const board = await openBoard(r.pty.boardPath);
  t.teardown(() => board.conn.close());
  r.link.start();
  await r.io.wait((e) => e === "open", "the hub to open the port");
  t.equal(r.link.set("pump", 1), false, "set while the handshake is pending is only remembered");
  // The bootloader's noise and a half line before the banner are discarded, not counted as errors.
  await board.send("\x00\xf0garbage\r\nR soil 1*00\n");
  await board.send(BANNER);
  const online = await r.ev.wait((e) => e.e === "online", "online");
  t.match(online.a, { board: "greenhouse", protocol: "hubproto", channels: [{ name: "soil", kind: "sensor", unit: "%" }, { name: "pump", kind: "output" }], fields: { fw: "0.1" } });
  t.equal(r.link.diagnostics().discarded_lines, 2);
  t.equal(r.link.diagnostics().checksum_errors, 0);
  // On the handshake the link re-sends what is wanted, then asks for a full report.
  const set = await board.lines.wait((l) => l.startsWith("SET"), "SET on the board");
  t.same(parseHubLine(set), { ok: true, message: { type: "set", channel: "pump", value: 1 } }, "checksummed SET line");
  await board.lines.wait((l) => l.startsWith("REPORT"), "REPORT on the board");

  await board.send(formatBoardMessage({ type: "reading", channel: "pump", value: 1 }));
  await board.send(formatBoardMessage({ type: "reading", channel: "soil", value: 41.5 }));
  await r.ev.wait((e) => e.e === "reading" && e.a === "soil" && e.b === 41.5, "soil reading");

  // A damaged line (one digit changed after the checksum was computed), then a good one.
  const n = r.ev.events.length;
  await board.send(formatLine("R soil 42.5").replace("42.5", "92.5"));
  await board.send("R soil 55\n"); // no checksum at all
  await board.send(formatBoardMessage({ type: "event", name: "door", text: "opened twice" }));
  await r.ev.wait((e) => e.e === "event", "event after the bad lines", n);
  t.same(
    r.ev.events.slice(n).filter((e) => e.e === "reading"),
    [],
    "neither damaged reading was delivered",
  );
  t.same(r.ev.events.at(-1), { e: "event", a: "door", b: "opened twice" });
  t.equal(r.link.diagnostics().checksum_errors, 1);
  t.equal(r.link.diagnostics().bad_lines, 1);

  r.link.set("pump", 0);
  t.same(parseHubLine(await board.lines.wait((l) => l.startsWith("SET pump 0"), "SET pump 0")), { ok: true, message: { type: "set", channel: "pump", value: 0 } });

  // Heartbeat: a ping every 5 s; answered, the board stays online.
  const before = board.lines.events.length;
  r.clock.advance(5000);
  const ping = parseHubLine(await board.lines.wait((l) => l.startsWith("PING"), "PING", before));
  t.ok(ping.ok && ping.message.type === "ping");
  const token = ping.ok && ping.message.type === "ping" ? ping.message.token : "";
  await board.send(formatBoardMessage({ type: "pong", token }));
  await board.send(formatBoardMessage({ type: "reading", channel: "soil", value: 40 }));
  await r.ev.wait((e) => e.e === "reading" && e.b === 40, "reading after the pong");
  r.clock.advance(2000);
  t.ok(r.link.online, "still online after the timeout would have passed");

  // The sketch hangs: the next ping goes unanswered, and 2 s later the link gives up on the port.
  const b2 = board.lines.events.length;
  r.clock.advance(3000);
  await board.lines.wait((l) => l.startsWith("PING"), "second PING", b2);
  r.clock.advance(2000);
  await r.ev.wait((e) => e.e === "offline" && e.a === "heartbeat timeout", "offline by heartbeat");
  await r.io.wait((e) => e === "close", "the port closed");
  t.equal(r.link.diagnostics().heartbeat_timeouts, 1);
  // It reopens (which resets a real board), and the reset board announces itself again.
  const opens = r.io.events.filter((e) => e === "open").length;
  await advanceUntil(r.clock, r.io.wait((e) => e === "open", "reopen", r.io.events.lastIndexOf("close") + 1));
  t.equal(r.io.events.filter((e) => e === "open").length, opens + 1);
  const b3 = board.lines.events.length;
  await board.send(BANNER);
  await r.ev.wait((e) => e.e === "online", "online again", r.ev.events.findIndex((e) => e.e === "offline"));
  t.same(parseHubLine(await board.lines.wait((l) => l.startsWith("SET"), "SET re-sent", b3)), { ok: true, message: { type: "set", channel: "pump", value: 0 } }, "the latest desired value is re-sent");
  t.equal(r.link.diagnostics().reconnects, 1);
});

t.test("unplug (socat killed) → offline, no writes; replug → online with outputs re-sent", { skip }, async (t) => {
  const r = rig(t);
  await r.pty.plug();
  let board = await openBoard(r.pty.boardPath);
  r.link.start();
  await r.io.wait((e) => e === "open", "open");
  await board.send(BANNER);
  await r.ev.wait((e) => e.e === "online", "online");
  r.link.set("pump", 1);
  await board.lines.wait((l) => l.startsWith("SET pump 1"), "SET");

  await r.pty.unplug();
  await r.io.wait((e) => e === "close:disconnected", "a disconnected close");
  await r.ev.wait((e) => e.e === "offline" && e.a === "disconnected", "offline");
  t.equal(r.link.online, false);
  t.equal(r.link.diagnostics().disconnects, 1);
  await board.conn.close();
  // While unplugged the link only polls for the path: setting an output is remembered, not written.
  t.equal(r.link.set("pump", 0), false);
  t.equal(await opensWhile(r.clock, r.io), 0, "no open while the path is missing");

  await r.pty.plug();
  board = await openBoard(r.pty.boardPath);
  t.teardown(() => board.conn.close());
  const at = r.io.events.length;
  // The next poll finds the path (backoff capped at retryMaxMs).
  await advanceUntil(r.clock, r.io.wait((e) => e === "open", "reopen after replug", at), 500);
  await board.send(BANNER);
  await r.ev.wait((e) => e.e === "online", "online after replug", r.ev.events.findIndex((e) => e.e === "offline"));
  t.same(parseHubLine(await board.lines.wait((l) => l.startsWith("SET"), "SET re-sent")), { ok: true, message: { type: "set", channel: "pump", value: 0 } });
  t.equal(r.link.diagnostics().reconnects, 1);
  t.equal(r.link.online, true);
});

t.test("no banner: the port is closed and retried with backoff", { skip }, async (t) => {
  const r = rig(t);
  await r.pty.plug();
  const board = await openBoard(r.pty.boardPath);
  t.teardown(() => board.conn.close());
  r.link.start();
  await r.io.wait((e) => e === "open", "open");
  await advanceUntil(r.clock, r.io.wait((e) => e === "close", "closed after the banner timeout"));
  t.equal(r.link.diagnostics().banner_timeouts, 1);
  t.match(r.log.lines.join("\n"), /no banner/);
  await advanceUntil(r.clock, r.io.wait((e) => e === "open", "retried", r.io.events.indexOf("close")));
});

t.test("a board of a newer protocol is refused, not misread", { skip }, async (t) => {
  const r = rig(t);
  await r.pty.plug();
  const board = await openBoard(r.pty.boardPath);
  t.teardown(() => board.conn.close());
  r.link.start();
  await r.io.wait((e) => e === "open", "open");
  await board.send(formatLine("HELLO hubproto=2 board=x"));
  await r.io.wait((e) => e === "close", "closed");
  t.equal(r.link.online, false);
  t.match(r.link.diagnostics().last_offline, /hubproto=2/);
});

// The Firmata protocol path (drivers/arduino/firmata.ts over firmata-io) against a byte-level
// StandardFirmata 2.5 peer (drivers/io/sim/firmata-board.ts) on the far end of a real socat
// pseudo-terminal pair, through the same link as hubproto and a fake clock: the handshake (version,
// firmware, capability and analog-mapping queries), analog and digital inputs to readings, outputs
// and PWM to the right bytes on the board, the heartbeat (REPORT_VERSION as a ping) finding a hung
// board, and unplugging (killing socat) → offline → replugging → online with outputs re-sent.
// Opening the hub's end "resets" the peer, as DTR resets an Uno. Skipped when socat is missing.
import t from "tap";
import { type FirmataChannel, firmataSession } from "../../../drivers/arduino/firmata.js";
import { createLink, type LinkListener } from "../../../drivers/arduino/link.js";
import type { SerialConnection, SerialProvider } from "../../../drivers/io/serial.js";
import { nodeSerial } from "../../../drivers/io/serial-node.js";
import { createSimFirmata, FIRMATA, type FirmataReceived, PIN_MODE } from "../../../drivers/io/sim/firmata-board.js";
import { memoryLogger } from "../../../hub/log.js";
import { fakeClock } from "../../support/fake-clock.js";
import { advanceUntil, eventLog, opensWhile, ptyPair, ptySkipReason } from "./pty.js";

const skip = ptySkipReason();
if (skip) t.comment(`skipping the Firmata pty tests: ${skip}`);

const CHANNELS: Record<string, FirmataChannel> = {
  light: { kind: "sensor", pin: "A0" },
  button: { kind: "binary", pin: 2, pullup: true },
  led: { kind: "output", pin: 13 },
  door: { kind: "binary", pin: 8 }, // same port as the led, no pull-up
  fan: { kind: "pwm", pin: 9 },
  // Pin 4 cannot do PWM on an Uno: the channel is skipped with a warning and never written.
  dim: { kind: "pwm", pin: 4 },
};
const BOOT_MS = 3000;

type Ev = { e: string; a?: unknown; b?: unknown };

function rig(t: { teardown(fn: () => unknown): void }, o: { resetOnOpen?: boolean } = {}) {
  const pty = ptyPair(t);
  const clock = fakeClock();
  const log = memoryLogger();
  const io = eventLog<string>();
  const ev = eventLog<Ev>();
  const seen = eventLog<FirmataReceived>();
  const board = createSimFirmata({ clock, random: () => 0.5, bootMs: BOOT_MS, observe: (m) => seen.push(m) });
  const real = nodeSerial();
  let peer: SerialConnection | undefined;
  // What the board sends while the hub's end is closed is lost (as on a real board).
  let hubOpen = false;
  const restart = () => {
    const p = peer;
    if (p?.isOpen) board.reset((bytes) => void (hubOpen ? p.write(bytes).catch(() => {}) : undefined));
  };
  // The board's end of the pair: bytes in go to the simulated sketch, its bytes go out.
  const plug = async () => {
    await pty.plug();
    const c = await real.open(pty.boardPath, 57600);
    c.onData((b) => board.receive(b));
    c.onClose(() => board.powerOff());
    peer = c;
    t.teardown(() => c.close());
  };
  const serial: SerialProvider = {
    exists: (p) => real.exists(p),
    async open(path, baud) {
      const c = await real.open(path, baud);
      io.push("open");
      hubOpen = true;
      c.onClose((i) => {
        hubOpen = false;
        io.push(i.disconnected ? "close:disconnected" : "close");
      });
      // DTR: opening the port resets the board, which boots for BOOT_MS (on the fake clock).
      if (o.resetOnOpen !== false) restart();
      return c;
    },
  };
  const listener: LinkListener = {
    online: (i) => ev.push({ e: "online", a: i }),
    offline: (r) => ev.push({ e: "offline", a: r }),
    reading: (c, v) => ev.push({ e: "reading", a: c, b: v }),
  };
  const link = createLink(
    { path: pty.hubPath, baudRate: 57600, bannerTimeoutMs: 4000, heartbeatIntervalMs: 5000, heartbeatTimeoutMs: 2000, retryMinMs: 500, retryMaxMs: 4000 },
    {
      serial,
      clock,
      log,
      // firmataSession, with its pongs (answers to REPORT_VERSION) recorded for the heartbeat test.
      session: (h) =>
        firmataSession({ channels: CHANNELS, samplingIntervalMs: 1000 })({
          ...h,
          pong() {
            ev.push({ e: "pong" });
            h.pong();
          },
        }),
    },
    listener,
  );
  t.teardown(() => link.stop());
  /** Opens, lets the board boot, and waits for the handshake to finish (no clock moves during it). */
  const online = async (from = 0) => {
    await io.wait((e) => e === "open", "the hub to open the port", from);
    clock.advance(BOOT_MS);
    return ev.wait((e) => e.e === "online", "online", ev.events.length);
  };
  const reading = (ch: string, v: number, what: string) => ev.wait((e) => e.e === "reading" && e.a === ch && e.b === v, what, 0);
  return { pty, clock, log, io, ev, seen, board, link, plug, online, reading, restart };
}

const isSysex = (cmd: number) => (m: FirmataReceived) => m.type === "sysex" && m.command === cmd;

t.test("handshake, analog and digital inputs, outputs and PWM as Firmata bytes", { skip }, async (t) => {
  const r = rig(t);
  await r.plug();
  r.link.start();
  const online = await r.online();
  t.match(online.a, { board: "StandardFirmata.ino", protocol: "firmata", version: "2.5" }, "firmware name and protocol version from the board");
  t.same(
    (online.a as { channels: unknown[] }).channels.map((c) => (c as { name: string }).name),
    ["light", "button", "led", "door", "fan", "dim"],
  );
  // firmata-io asked for capabilities and the analog mapping before the pins were configured.
  t.ok(r.seen.events.some(isSysex(FIRMATA.CAPABILITY_QUERY)), "capability query");
  t.ok(r.seen.events.some(isSysex(FIRMATA.ANALOG_MAPPING_QUERY)), "analog mapping query");
  await r.seen.wait(isSysex(FIRMATA.SAMPLING_INTERVAL), "sampling interval");
  t.same(r.seen.events.find(isSysex(FIRMATA.SAMPLING_INTERVAL)), { type: "sysex", command: FIRMATA.SAMPLING_INTERVAL, data: [1000 & 0x7f, 1000 >> 7] }, "1000 ms as two 7-bit bytes");
  t.equal(r.board.samplingIntervalMs, 1000);
  t.equal(r.board.pinMode(2), PIN_MODE.PULLUP, "button: input with pull-up");
  t.equal(r.board.pinMode(13), PIN_MODE.OUTPUT, "led: output");
  t.equal(r.board.pinMode(9), PIN_MODE.PWM, "fan: PWM");
  t.equal(r.board.pinMode(14), PIN_MODE.ANALOG, "A0: analog input");
  t.notOk(r.seen.events.some((m) => m.type === "pin_mode" && m.pin === 4), "no mode sent for a pin that cannot do PWM");
  t.match(r.log.lines.join("\n"), /pin does not support this use.*dim/);
  t.ok(r.seen.events.some((m) => m.type === "report_analog" && m.channel === 0 && m.on === 1), "A0 reported");
  t.ok(r.seen.events.some((m) => m.type === "report_digital" && m.port === 0 && m.on === 1), "port 0 (pin 2) reported");
  t.equal(r.board.pinMode(8), PIN_MODE.INPUT, "door: plain input");

  // Analog: StandardFirmata sends the value at once when reporting starts, then every sample.
  await r.reading("light", 300, "the first A0 value");
  await r.reading("button", 1, "the released button (pull-up: 1)");
  r.board.setAnalog(0, 517);
  r.clock.advance(1000);
  await r.reading("light", 517, "A0 after one sampling interval");
  r.board.setInput(2, 0);
  await r.reading("button", 0, "the pressed button");
  r.board.setInput(2, undefined);
  await r.ev.wait((e) => e.e === "reading" && e.a === "button" && e.b === 1, "the released button again", r.ev.events.length - 1);

  // The door input (pin 8, port 1 with the led) reads high.
  r.board.setInput(8, 1);
  await r.reading("door", 1, "the door input high");

  // Outputs: pin 13 is bit 5 of port 1; PWM on pin 9 is an ANALOG_MESSAGE E9 lsb msb. The port
  // message carries 0 for the door's bit: a 1 would switch on pin 8's pull-up (StandardFirmata).
  let n = r.seen.events.length;
  t.equal(r.link.set("led", 1), true);
  t.same(await r.seen.wait((m) => m.type === "digital" || m.type === "pin_value", "the led write", n), { type: "digital", port: 1, value: 1 << 5 });
  t.equal(r.board.pinState(13), 1, "pin 13 is high");
  t.equal(r.board.pinMode(8), PIN_MODE.INPUT, "the door input got no pull-up");
  r.link.set("fan", 200);
  t.same(await r.seen.wait((m) => m.type === "analog", "the fan write", n), { type: "analog", pin: 9, value: 200 });
  t.equal(r.board.pinState(9), 200);
  await r.reading("led", 1, "the written led state as a reading");
  await r.reading("fan", 200, "the written fan duty as a reading");
  n = r.seen.events.length;
  r.link.set("led", 0);
  t.same(await r.seen.wait((m) => m.type === "digital", "led off", n), { type: "digital", port: 1, value: 0 });
  t.equal(r.board.pinState(13), 0);
  // A write to the skipped channel sends nothing (and does not break the session).
  r.link.set("dim", 10);
  r.link.set("led", 1);
  t.same(await r.seen.wait((m) => m.type === "digital" || m.type === "analog", "led on again", n + 1), { type: "digital", port: 1, value: 1 << 5 });
  t.notOk(r.seen.events.some((m) => m.type === "analog" && m.pin === 4), "nothing written to pin 4");
  t.equal(r.link.diagnostics().bad_lines, 0, "nothing the board sent was refused");
});

t.test("heartbeat: REPORT_VERSION answered keeps it online; a hung board is reset and gets its outputs back", { skip }, async (t) => {
  const r = rig(t);
  await r.plug();
  r.link.start();
  await r.online();
  r.link.set("led", 1);
  r.link.set("fan", 77);
  await r.reading("fan", 77, "fan set");

  // A ping (REPORT_VERSION) 5 s after the handshake; the board's answer (F9 2 5) comes back over
  // the pty, and once the session has taken it as a pong the timeout passing changes nothing.
  const n = r.seen.events.length;
  r.clock.advance(5000);
  await r.seen.wait((m) => m.type === "version", "a ping (REPORT_VERSION)", n);
  await r.ev.wait((e) => e.e === "pong", "the pong");
  r.clock.advance(2000);
  t.ok(r.link.online, "answered pings keep the board online");
  t.equal(r.link.diagnostics().heartbeat_timeouts, 0);

  // The sketch hangs: the next ping (5 s after the pong) goes unanswered, and 2 s later the link
  // gives up on the port.
  r.board.hang(true);
  const opens = r.io.events.filter((e) => e === "open").length;
  r.clock.advance(3000);
  t.ok(r.link.online, "online until the ping times out");
  r.clock.advance(2000);
  await r.ev.wait((e) => e.e === "offline", "offline by heartbeat");
  t.equal(r.ev.events.find((e) => e.e === "offline")?.a, "heartbeat timeout");
  t.equal(r.link.diagnostics().heartbeat_timeouts, 1);
  await r.io.wait((e) => e === "close", "the port closed");
  // Reopening the port resets the board (DTR), which is what a hung sketch needs.
  await advanceUntil(r.clock, r.io.wait((e) => e === "open", "reopen", r.io.events.indexOf("close") + 1), 100);
  t.equal(r.io.events.filter((e) => e === "open").length, opens + 1);
  const m = r.seen.events.length;
  await r.online(r.io.events.length - 1);
  await r.seen.wait((x) => x.type === "analog" && x.pin === 9, "the fan re-sent", m);
  await r.seen.wait((x) => x.type === "digital" && x.port === 1, "the led re-sent", m);
  t.equal(r.board.pinState(13), 1, "led back on after the reset");
  t.equal(r.board.pinState(9), 77, "fan back at 77 after the reset");
  t.equal(r.link.diagnostics().reconnects, 1);
});

t.test("unplug (socat killed) → offline, nothing written; replug → online with outputs re-sent", { skip }, async (t) => {
  const r = rig(t);
  await r.plug();
  r.link.start();
  await r.online();
  r.link.set("led", 1);
  await r.reading("led", 1, "led on");

  await r.pty.unplug();
  await r.io.wait((e) => e === "close:disconnected", "a disconnected close");
  await r.ev.wait((e) => e.e === "offline" && e.a === "disconnected", "offline");
  t.equal(r.link.diagnostics().disconnects, 1);
  t.equal(r.link.set("led", 0), false, "remembered, not written, while unplugged");
  t.equal(r.link.set("fan", 128), false);
  t.equal(await opensWhile(r.clock, r.io), 0, "no open while the path is missing");

  await r.plug();
  const at = r.io.events.length;
  await advanceUntil(r.clock, r.io.wait((e) => e === "open", "reopen after replug", at), 500);
  const m = r.seen.events.length;
  await r.online(at);
  await r.seen.wait((x) => x.type === "analog" && x.pin === 9, "fan re-sent", m);
  await r.seen.wait((x) => x.type === "digital" && x.port === 1, "led re-sent", m);
  t.equal(r.board.pinState(13), 0, "the latest desired led state (off)");
  t.equal(r.board.pinState(9), 128);
  t.equal(r.link.diagnostics().reconnects, 1);
  t.ok(r.link.online);
});

t.test("a board that restarts while the port stays open is set up again", { skip }, async (t) => {
  const r = rig(t);
  await r.plug();
  r.link.start();
  await r.online();
  r.link.set("led", 1);
  await r.reading("led", 1, "led on");
  // A brown-out: the sketch restarts, forgets its pin modes, and announces itself again.
  r.restart();
  t.equal(r.board.pinMode(13), PIN_MODE.OUTPUT);
  t.equal(r.board.pinState(13), 0, "the reset board has the led off");
  t.equal(r.board.pinMode(2), PIN_MODE.OUTPUT, "and pin 2 back at its reset mode");
  const m = r.seen.events.length;
  r.clock.advance(BOOT_MS);
  await r.ev.wait((e) => e.e === "online", "online again", r.ev.events.findIndex((e) => e.e === "online") + 1);
  await r.seen.wait((x) => x.type === "digital" && x.port === 1, "led re-sent", m);
  t.equal(r.board.pinState(13), 1, "led on again");
  t.equal(r.board.pinMode(2), PIN_MODE.PULLUP, "button pin set up again");
  await r.seen.wait((x) => x.type === "report_analog" && x.channel === 0, "A0 reported again", m);
  t.equal(r.link.diagnostics().reconnects, 1);
  t.match(r.log.lines.join("\n"), /board restarted/);
});

t.test("a board that does not reset on open (native USB) is asked for its version", { skip }, async (t) => {
  const r = rig(t, { resetOnOpen: false });
  await r.plug();
  r.restart();
  r.clock.advance(BOOT_MS); // it has been running for a while; its boot report went nowhere
  // and the last program to use it left A0 as a digital output (reports only flow in ANALOG mode).
  r.board.receive(Uint8Array.of(FIRMATA.SET_PIN_MODE, 14, PIN_MODE.OUTPUT));
  t.equal(r.board.pinMode(14), PIN_MODE.OUTPUT);
  r.link.start();
  await r.io.wait((e) => e === "open", "open");
  // The link builds its session (and arms the 2 s timer) in the promise jobs after the open.
  await new Promise((res) => setImmediate(res));
  const n = r.seen.events.length;
  r.clock.advance(2000);
  await r.ev.wait((e) => e.e === "online", "online");
  t.same(r.seen.events.slice(n, n + 2), [{ type: "version" }, { type: "sysex", command: FIRMATA.REPORT_FIRMWARE, data: [] }], "REPORT_VERSION and a firmware query, 2 s after opening");
  await r.reading("light", 300, "A0 reported");
  t.equal(r.board.pinMode(14), PIN_MODE.ANALOG, "the hub put A0 back in ANALOG mode");
  await r.seen.wait(isSysex(FIRMATA.SAMPLING_INTERVAL), "sampling interval");
  r.board.setAnalog(0, 700);
  r.clock.advance(1000);
  await r.reading("light", 700, "A0 sampled");
});

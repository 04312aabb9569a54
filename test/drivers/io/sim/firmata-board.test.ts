// The simulated StandardFirmata board at byte level, without a client: what it sends after a
// reset, its answers to queries (checked byte for byte against the Firmata protocol's message
// layouts), and the commands firmata-io never sends but StandardFirmata 2.5 obeys
// (SET_DIGITAL_PIN_VALUE, EXTENDED_ANALOG, PIN_STATE_QUERY). The pty tests in
// test/drivers/arduino/firmata.test.ts cover it against the real client.
import t from "tap";
import { createSimFirmata, FIRMATA, PIN_MODE } from "../../../../drivers/io/sim/firmata-board.js";
import { fakeClock } from "../../../support/fake-clock.js";

function booted() {
  const clock = fakeClock();
  const out: number[][] = [];
  const board = createSimFirmata({ clock, random: () => 0.5, name: "SF" });
  board.reset((b) => out.push([...b]));
  const send = (...bytes: number[]) => board.receive(Uint8Array.from(bytes));
  return { clock, out, board, send };
}

t.test("boot: nothing until the sketch runs, then version and firmware", async (t) => {
  const { clock, out, board, send } = booted();
  send(FIRMATA.REPORT_VERSION); // lost: the bootloader owns the UART
  clock.advance(2999);
  t.same(out, []);
  clock.advance(1);
  t.same(out, [
    [0xf9, 2, 5],
    [0xf0, 0x79, 2, 5, 0x53, 0, 0x46, 0, 0xf7], // "SF" as 7-bit LSB/MSB pairs
  ]);
  t.equal(board.received.length, 0);
});

t.test("queries: capabilities, analog mapping, pin state", async (t) => {
  const { clock, out, send } = booted();
  clock.advance(3000);
  out.length = 0;
  send(0xf0, FIRMATA.ANALOG_MAPPING_QUERY, 0xf7);
  t.same(out.pop(), [0xf0, 0x6a, ...Array(14).fill(0x7f), 0, 1, 2, 3, 4, 5, 0xf7], "A0..A5 on pins 14..19");
  send(0xf0, FIRMATA.CAPABILITY_QUERY, 0xf7);
  const caps = out.pop()!;
  t.same(caps.slice(0, 4), [0xf0, 0x6c, 0x7f, 0x7f], "pins 0 and 1 (the serial port) have no modes");
  // Pin 2: INPUT, PULLUP, OUTPUT, SERVO (14 bit); pin 3 also PWM (8 bit); A0 (pin 14) also ANALOG (10 bit).
  t.same(caps.slice(4, 13), [0, 1, 0x0b, 1, 1, 1, 4, 14, 0x7f]);
  t.same(caps.slice(13, 24), [0, 1, 0x0b, 1, 1, 1, 3, 8, 4, 14, 0x7f]);
  t.equal(caps.filter((b) => b === 0x7f).length, 20, "20 pins");
  send(0xf4, 13, PIN_MODE.OUTPUT, 0xf5, 13, 1, 0xf0, FIRMATA.PIN_STATE_QUERY, 13, 0xf7);
  t.same(out.pop(), [0xf0, 0x6e, 13, PIN_MODE.OUTPUT, 1, 0xf7], "pin 13: output, high");
});

t.test("writes: SET_DIGITAL_PIN_VALUE, DIGITAL_MESSAGE, ANALOG_MESSAGE, EXTENDED_ANALOG", async (t) => {
  const { clock, board, send } = booted();
  clock.advance(3000);
  send(0xf4, 13, PIN_MODE.OUTPUT, 0xf5, 13, 1);
  t.equal(board.pinState(13), 1);
  send(0x91, 0, 0); // port 1 all low
  t.equal(board.pinState(13), 0);
  send(0xf4, 9, PIN_MODE.PWM, 0xe9, 200 & 0x7f, 200 >> 7);
  t.equal(board.pinState(9), 200);
  send(0xf0, FIRMATA.EXTENDED_ANALOG, 9, 17, 1, 0xf7);
  t.equal(board.pinState(9), 17 + 128);
  send(0xf4, 4, PIN_MODE.PWM);
  t.not(board.pinMode(4), PIN_MODE.PWM, "pin 4 cannot do PWM");
  // A 1 for an INPUT pin in a port message switches its pull-up on (digitalWriteCallback).
  send(0xf4, 8, PIN_MODE.INPUT, 0x91, 1, 0);
  t.equal(board.pinMode(8), PIN_MODE.PULLUP);
});

t.test("reports: analog every sampling interval, digital on change", async (t) => {
  const { clock, out, board, send } = booted();
  clock.advance(3000);
  out.length = 0;
  send(0xf0, FIRMATA.SAMPLING_INTERVAL, 500 & 0x7f, 500 >> 7, 0xf7, 0xc1, 1);
  t.same(out, [[0xe1, 380 & 0x7f, 380 >> 7]], "A1 at once when reporting starts");
  board.setAnalog(1, 1023);
  clock.advance(500);
  t.same(out.at(-1), [0xe1, 0x7f, 0x07]);
  out.length = 0;
  send(0xf4, 2, PIN_MODE.PULLUP, 0xd0, 1);
  t.same(out, [[0x90, 0b100, 0]], "port 0 at once: pin 2 high (pull-up)");
  board.setInput(2, 0);
  board.setInput(2, 0);
  t.same(out.at(-1), [0x90, 0, 0]);
  t.equal(out.length, 2, "only changes are sent");
  board.hang(true);
  board.setInput(2, 1);
  send(0xf9);
  clock.advance(1000);
  t.equal(out.length, 2, "a hung board sends nothing");
});

// What `--simulate` runs for a `protocol: firmata` arduino device: attachSimArduinos puts the
// simulated StandardFirmata Uno (drivers/io/sim/firmata-board.ts) at the configured path, and the
// hub's Arduino host talks Firmata to it through the in-process serial ports (fake clock, memory
// bus): analog and digital inputs on hub/<device>/<channel>, /set commands to pin writes, unplug →
// offline → replug → online with the outputs set again.
import t from "tap";
import { attachSimArduinos } from "../../../drivers/io/sim/arduino-board.js";
import { createSimFirmata, PIN_MODE, type SimFirmata } from "../../../drivers/io/sim/firmata-board.js";
import { createSimSerial } from "../../../drivers/io/sim/serial.js";
import { type ArduinoConfig, createArduinoHost } from "../../../hub/arduino.js";
import { memoryLogger } from "../../../hub/log.js";
import { hubTopics } from "../../../hub/topics.js";
import { fakeClock } from "../../support/fake-clock.js";
import { memoryBus } from "../../support/memory-bus.js";
import { settle } from "../helpers.js";

const PATH = "/dev/serial/by-id/usb-1a86_USB_Serial-if00-port0";
const CFG = {
  name: "workbench",
  type: "arduino",
  path: PATH,
  protocol: "firmata",
  banner_timeout: 4000,
  ping_interval: 5000,
  ping_timeout: 2000,
  sampling_interval: 1000,
  channels: {
    light: { kind: "sensor", pin: "A0", pullup: false },
    button: { kind: "binary", pin: 2, pullup: true },
    led: { kind: "output", pin: 13, pullup: false },
    fan: { kind: "pwm", pin: 9, pullup: false },
  },
} as ArduinoConfig;

t.test("a firmata device under --simulate: readings, commands, unplug and replug", async (t) => {
  const clock = fakeClock();
  const bus = memoryBus();
  const sim = createSimSerial({ clock });
  let board: SimFirmata | undefined;
  attachSimArduinos(sim, [CFG], {
    clock,
    random: () => 0.5,
    // The default board, kept in hand so the test can look at its pins.
    firmataBoard: () => (board = createSimFirmata({ clock, random: () => 0.5, wander: true })),
  });
  t.ok(board, "the firmata device got a simulated Firmata board");
  const host = createArduinoHost([CFG], { bus, clock, log: memoryLogger(), topics: hubTopics("hub"), serial: sim });
  await host.start();
  t.teardown(() => host.stop());
  const until = (cond: () => boolean) =>
    settle(
      clock,
      (async () => {
        while (!cond()) await new Promise((r) => setImmediate(r));
      })(),
      20_000,
    );
  await until(() => bus.last("hub/workbench/availability") === "online");
  await until(() => bus.last("hub/workbench/light") !== undefined && bus.last("hub/workbench/button") !== undefined);
  t.equal(bus.last("hub/workbench/light"), "300", "A0's simulated value");
  t.equal(bus.last("hub/workbench/button"), "ON", "a released pull-up button reads 1");
  board!.setAnalog(0, 640);
  await until(() => bus.last("hub/workbench/light") === "640");

  const cmd = (ch: string, payload: string) => bus.publish({ topic: `hub/workbench/${ch}/set`, payload: Buffer.from(payload), qos: 1, retain: false });
  await cmd("led", "ON");
  await until(() => bus.last("hub/workbench/led") === "ON");
  t.equal(board!.pinState(13), 1, "pin 13 driven high");
  await cmd("fan", "180");
  await until(() => bus.last("hub/workbench/fan") === "180");
  t.equal(board!.pinState(9), 180, "PWM duty on pin 9");

  sim.unplug(PATH);
  await until(() => bus.last("hub/workbench/availability") === "offline");
  sim.plug(PATH);
  await until(() => bus.last("hub/workbench/availability") === "online");
  await until(() => board!.pinState(13) === 1 && board!.pinState(9) === 180);
  t.equal(board!.pinMode(2), PIN_MODE.PULLUP, "the button pin is set up again after the replug");
});

t.test("attachSimArduinos gives firmata devices a StandardFirmata board by default", async (t) => {
  const attached: Array<{ path: string; name?: string }> = [];
  attachSimArduinos({ attach: (path, _b, name) => attached.push({ path, name }) }, [CFG], { clock: fakeClock(), random: () => 0.5 });
  t.same(attached, [{ path: PATH, name: "workbench" }]);
});

// The device host with GPIO devices on the simulated chip (fake clock, in-memory bus): binary sensors
// publish on change, switches obey hub/<device>/set with every accepted payload and warn on the rest,
// the hub's own switch-offs (max_on) and the safe state at stop are published.
import t from "tap";
import { gpioInput } from "../drivers/gpio-input.js";
import { gpioOutput } from "../drivers/gpio-output.js";
import { createSimGpioChip } from "../drivers/io/sim/gpio.js";
import type { DriverDefinition } from "../drivers/types.js";
import type { Message } from "../hub/contracts.js";
import { createDeviceHost, parseSwitchCommand, type DeviceSpec } from "../hub/devices.js";
import { memoryLogger } from "../hub/log.js";
import { hubTopics } from "../hub/topics.js";
import { fakeClock } from "./support/fake-clock.js";
import { memoryBus } from "./support/memory-bus.js";

const flush = async () => {
  for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
};

function house(relay: Record<string, unknown> = {}) {
  const clock = fakeClock();
  const log = memoryLogger();
  const bus = memoryBus();
  const chip = createSimGpioChip({ clock });
  const specs: DeviceSpec[] = [
    { name: "button", driver: gpioInput as DriverDefinition<unknown>, options: { pin: 17, active_low: true, debounce: 50 } },
    { name: "relay", driver: gpioOutput as DriverDefinition<unknown>, options: { pin: 27, active_low: false, safe_state: "OFF", ...relay } },
  ];
  const host = createDeviceHost(specs, { bus, clock, log, topics: hubTopics("hub"), random: () => 0.5, io: { gpio: chip.provider } });
  const command = (payload: string, retain = false) => bus.publish({ topic: "hub/relay/set", payload: Buffer.from(payload), qos: 1, retain });
  const payloads = (topic: string) => bus.published.filter((m: Message) => m.topic === topic).map((m) => m.payload.toString());
  return { clock, log, bus, chip, host, command, payloads };
}

t.test("parseSwitchCommand", async (t) => {
  for (const p of ["ON", "1", "true", "on", " ON\n", "True"]) t.equal(parseSwitchCommand(p), true, JSON.stringify(p));
  for (const p of ["OFF", "0", "false", "off", "FALSE"]) t.equal(parseSwitchCommand(p), false, JSON.stringify(p));
  for (const p of ["TOGGLE", "toggle"]) t.equal(parseSwitchCommand(p), "toggle", p);
  for (const p of ["", "2", "onn", "yes", "ON OFF", '{"state":"ON"}', "-1", "null"]) t.equal(parseSwitchCommand(p), undefined, JSON.stringify(p));
});

t.test("a button press is published ON then OFF, retained, on hub/<device>", async (t) => {
  const h = house();
  await h.host.start();
  await flush();
  t.same(h.payloads("hub/button"), ["OFF"], "the state at start");
  t.equal(h.bus.last("hub/button/availability"), "online");
  h.chip.press(17, 300);
  h.clock.advance(100);
  await flush();
  t.same(h.payloads("hub/button"), ["OFF", "ON"]);
  h.clock.advance(400);
  await flush();
  t.same(h.payloads("hub/button"), ["OFF", "ON", "OFF"], "bounce on both edges is filtered out");
  t.ok(h.bus.published.filter((m) => m.topic === "hub/button").every((m) => m.retain && m.qos === 1));
  await h.host.stop();
  t.equal(h.bus.last("hub/button/availability"), "offline");
  t.equal(h.chip.mode(17), undefined, "line released");
});

t.test("every accepted /set payload switches the relay; the state comes back on hub/<device>", async (t) => {
  const h = house();
  await h.host.start();
  await flush();
  t.same(h.payloads("hub/relay"), ["OFF"]);
  const steps: Array<[string, 0 | 1, string]> = [
    ["ON", 1, "ON"],
    ["OFF", 0, "OFF"],
    ["1", 1, "ON"],
    ["0", 0, "OFF"],
    ["true", 1, "ON"],
    ["false", 0, "OFF"],
    ["TOGGLE", 1, "ON"],
    ["TOGGLE", 0, "OFF"],
    ["OFF", 0, "OFF"], // unchanged, but acknowledged
  ];
  for (const [payload, level, state] of steps) {
    await h.command(payload);
    await flush();
    t.equal(h.chip.level(27), level, `${payload}: line level ${level}`);
    t.equal(h.bus.last("hub/relay"), state, `${payload}: state ${state}`);
  }
  t.equal(h.payloads("hub/relay").length, 1 + steps.length, "one state message per command");
  t.notMatch(h.log.lines.join("\n"), /WARN/);
  await h.host.stop();
});

t.test("anything else is a warning and changes nothing", async (t) => {
  const h = house({ initial: "ON" });
  await h.host.start();
  await flush();
  t.equal(h.chip.level(27), 1);
  const states = () => h.bus.published.filter((m) => !m.topic.endsWith("/set")).length;
  const before = states();
  for (const bad of ["", "2", "onn", "yes", '{"state":"OFF"}', "OFF please", "\u0000"]) {
    await h.command(bad);
    await flush();
    t.equal(h.chip.level(27), 1, `${JSON.stringify(bad)}: still on`);
  }
  t.equal(states(), before, "no state published");
  const warnings = h.log.lines.filter((l) => l.includes("WARN") && l.includes("invalid command; expected ON, OFF, TOGGLE, 1, 0, true or false"));
  t.equal(warnings.length, 7, "one warning per bad command");
  t.match(warnings[4], /topic=hub\/relay\/set payload="\{\\"state\\":\\"OFF\\"}"/);
  await h.host.stop();
});

t.test("a retained command is ignored (it would replay at every start)", async (t) => {
  const h = house();
  await h.host.start();
  await flush();
  await h.command("ON", true);
  await flush();
  t.equal(h.chip.level(27), 0);
  t.match(h.log.lines.join("\n"), /WARN .*ignoring a retained command/);
  await h.host.stop();
});

t.test("max_on: the hub's own switch-off is published", async (t) => {
  const h = house({ max_on: 60_000 });
  await h.host.start();
  await flush();
  await h.command("ON");
  await flush();
  t.equal(h.bus.last("hub/relay"), "ON");
  h.clock.advance(60_000);
  await flush();
  t.equal(h.chip.level(27), 0);
  t.same(h.payloads("hub/relay"), ["OFF", "ON", "OFF"]);
  await h.host.stop();
});

t.test("stop applies the safe state and publishes it before going offline", async (t) => {
  const h = house();
  await h.host.start();
  await flush();
  await h.command("ON");
  await flush();
  t.equal(h.chip.level(27), 1);
  await h.host.stop();
  t.equal(h.chip.level(27), 0, "safe_state OFF");
  const tail = h.bus.published.filter((m) => m.topic.startsWith("hub/relay")).slice(-2);
  t.same(
    tail.map((m) => `${m.topic} ${m.payload}`),
    ["hub/relay OFF", "hub/relay/availability offline"],
  );
  t.equal(h.bus.last("hub/relay"), "OFF");
  await h.command("ON");
  await flush();
  t.equal(h.chip.level(27), 0, "no longer listening after stop");
  t.equal(h.clock.pending(), 0);
});

t.test("a switch that cannot open is offline; commands meanwhile are refused with a warning; it recovers", async (t) => {
  const h = house();
  h.chip.failOpen(27, "EACCES");
  h.chip.failOpen(17, "EBUSY");
  await h.host.start();
  await flush();
  t.equal(h.bus.last("hub/relay/availability"), "offline");
  t.equal(h.bus.last("hub/button/availability"), "offline");
  h.chip.failOpen(27, undefined);
  h.clock.advance(1_000);
  await flush();
  t.equal(h.bus.last("hub/relay/availability"), "online", "retried after 1 s");
  t.equal(h.bus.last("hub/button/availability"), "offline", "the other device is unaffected");
  await h.command("ON");
  await flush();
  t.equal(h.chip.level(27), 1);
  await h.host.stop();
});

t.test("a failing write takes the switch offline; commands meanwhile get a warning; it comes back", async (t) => {
  let failWrites = 1;
  let opens = 0;
  const flaky: DriverDefinition<unknown> = {
    kind: "flaky_switch",
    quantities: () => ({ state: {} }),
    async open() {
      opens++;
      let state = false;
      return {
        read: async () => ({ state }),
        async write(c) {
          if (failWrites-- > 0) throw new Error("EIO");
          state = c.state === true;
          return { state };
        },
        async close() {},
      };
    },
  };
  const clock = fakeClock();
  const log = memoryLogger();
  const bus = memoryBus();
  const host = createDeviceHost([{ name: "pump", driver: flaky, options: {} }], { bus, clock, log, topics: hubTopics("hub"), random: () => 0.5 });
  const command = (p: string) => bus.publish({ topic: "hub/pump/set", payload: Buffer.from(p), qos: 0, retain: false });
  await host.start();
  await flush();
  await command("ON");
  await flush();
  t.equal(bus.last("hub/pump/availability"), "offline");
  t.equal(bus.last("hub/pump"), "OFF", "no ON published for a failed write");
  await command("ON");
  await flush();
  t.match(log.lines.join("\n"), /WARN .*command ignored: device offline/);
  clock.advance(1_000);
  await flush();
  t.equal(opens, 2, "reopened after the backoff");
  t.equal(bus.last("hub/pump/availability"), "online");
  await command("ON");
  await flush();
  t.equal(bus.last("hub/pump"), "ON");
  t.equal(bus.published.filter((m) => m.topic === "hub/pump" && m.payload.toString() === "ON").length, 1, "one subscription across reopening");
  await host.stop();
  t.equal(clock.pending(), 0);
});

// End to end over a real socket: the hub built by buildApp with the simulated GPIO chip (fake clock),
// an `mqtt` client on the embedded broker. A simulated button press appears on hub/button; the client's
// hub/relay/set ON drives the simulated relay line high and comes back as hub/relay ON; Home Assistant
// discovery configs are there, retained.
import t from "tap";
import type mqtt from "mqtt";
import { createSimGpioChip } from "../drivers/io/sim/gpio.js";
import { buildApp } from "../hub/app.js";
import { formatProblems, loadConfigText } from "../hub/config/load.js";
import { memoryLogger } from "../hub/log.js";
import { fakeClock } from "./support/fake-clock.js";
import { connect, end } from "./support/mqtt.js";

/** Resolves with the first message (already received or future) for which `pred` holds. */
function waiter(c: mqtt.MqttClient) {
  const got: Array<{ topic: string; payload: string; retain: boolean }> = [];
  const waiting = new Set<{ pred: (topic: string, payload: string) => boolean; resolve: () => void }>();
  c.on("message", (topic, payload, packet) => {
    got.push({ topic, payload: payload.toString(), retain: packet.retain });
    for (const w of waiting) {
      if (w.pred(topic, payload.toString())) {
        waiting.delete(w);
        w.resolve();
      }
    }
  });
  return {
    got,
    /** Waits for a message matching `pred` at or after index `from` of `got`. */
    until(pred: (topic: string, payload: string) => boolean, from = got.length): Promise<void> {
      if (got.slice(from).some((m) => pred(m.topic, m.payload))) return Promise.resolve();
      return new Promise((resolve) => waiting.add({ pred, resolve }));
    },
    /** Waits for `payload` on `topic` at or after index `from` of `got`. */
    next(topic: string, payload: string, from = got.length): Promise<void> {
      return this.until((tp, p) => tp === topic && p === payload, from);
    },
  };
}

t.test("button press -> hub/button; hub/relay/set ON -> relay line high and hub/relay ON", async (t) => {
  const dir = t.testdir();
  const loaded = loadConfigText(
    `
hardware: simulate
state_dir: ${dir}
broker:
  listeners: [{ host: 127.0.0.1, port: 0 }]
  sys_interval: 0s
  # The store's group commit runs on the injected clock, which this test moves only when it needs to.
  storage: { enabled: false }
devices:
  - { name: button, type: gpio_input, pin: 17, active_low: true, debounce: 50ms }
  - { name: relay, type: gpio_output, pin: 27, safe_state: "OFF" }
`,
    "e2e.yaml",
    { readFile: () => "", env: {} },
  );
  if (!loaded.ok) throw new Error(formatProblems(loaded.problems));
  const clock = fakeClock();
  const chip = createSimGpioChip({ clock });
  const app = await buildApp({ config: loaded.config, clock, log: memoryLogger(), version: "test", random: () => 0.5, gpio: chip.provider });
  await app.lifecycle.start();
  t.teardown(() => app.lifecycle.stop(5000));
  const url = `mqtt://127.0.0.1:${app.broker!.addresses()[0]!.port}`;

  // keepalive 0: the fake clock does not run the broker's keep-alive anyway, but be explicit.
  const client = await connect(url, { protocolVersion: 5, keepalive: 0, clientId: "e2e" });
  t.teardown(() => end(client));
  const w = waiter(client);
  await client.subscribeAsync(["hub/#", "homeassistant/#"], { qos: 1 });
  await w.next("hub/button", "OFF", 0);
  await w.next("hub/relay", "OFF", 0);
  await w.until((tp) => tp.startsWith("homeassistant/switch/") && tp.endsWith("/relay/config"), 0);
  t.ok(w.got.find((m) => m.topic === "hub/button")?.retain, "states are retained");

  const from = w.got.length;
  chip.press(17, 300);
  clock.advance(100);
  await w.next("hub/button", "ON", from);
  t.pass("the press reached the client as hub/button ON");
  clock.advance(400);
  await w.next("hub/button", "OFF", from);

  t.equal(chip.level(27), 0);
  const before = w.got.length;
  await client.publishAsync("hub/relay/set", "ON", { qos: 1 });
  await w.next("hub/relay", "ON", before);
  t.equal(chip.level(27), 1, "the simulated relay line is high");

  await client.publishAsync("hub/relay/set", "nonsense", { qos: 1 });
  await client.publishAsync("hub/relay/set", "TOGGLE", { qos: 1 });
  await w.next("hub/relay", "OFF", before);
  t.equal(chip.level(27), 0, "the invalid command changed nothing; TOGGLE switched it off");

  const sw = w.got.find((m) => m.topic.startsWith("homeassistant/switch/") && m.topic.endsWith("/relay/config"));
  t.ok(sw, "the relay is announced to Home Assistant");
  t.match(JSON.parse(sw!.payload), { command_topic: "hub/relay/set", state_topic: "hub/relay", availability_mode: "all" });
  t.ok(w.got.some((m) => m.topic.startsWith("homeassistant/binary_sensor/") && m.topic.endsWith("/button/config")));
});

// End to end over the real embedded broker and TCP: the hub built from a YAML config with a rule; a
// temperature sensor and a relay are MQTT clients. The temperature stays above the limit for 2
// minutes (fake clock) -> the rule publishes hub/relay/set ON -> the relay switches and reports ON.
import t from "tap";
import { buildApp } from "../../hub/app.js";
import { formatProblems, loadConfigText } from "../../hub/config/load.js";
import type { Message } from "../../hub/contracts.js";
import { memoryLogger } from "../../hub/log.js";
import { fakeClock } from "../support/fake-clock.js";
import { connect, end } from "../support/mqtt.js";
import { flush } from "./harness.js";

t.test("temperature above 25 °C for 2 minutes turns the fan relay on", async (t) => {
  const dir = t.testdir();
  const loaded = loadConfigText(
    `
state_dir: ${dir}
broker:
  listeners: [{ host: 127.0.0.1, port: 0 }]
  sys_interval: 0s
  # The store's group commit runs on the injected clock, which this test moves only in big steps.
  storage: { enabled: false }
rules:
  - id: fan_on_when_hot
    triggers:
      - { trigger: numeric, topic: hub/living_room/temperature, above: 25, hysteresis: 0.5, for: 2m }
    conditions:
      - { condition: state, topic: hub/relay, state: "OFF" }
    actions:
      - { action: set, device: relay, payload: "ON" }
      - { action: publish, topic: hub/alerts, payload: "{{ trigger.value }} °C for 2 minutes: fan on" }
`,
    "e2e.yaml",
    { readFile: () => "", env: {} },
  );
  if (!loaded.ok) throw new Error(formatProblems(loaded.problems));
  const clock = fakeClock();
  const log = memoryLogger("debug");
  const app = await buildApp({ config: loaded.config, clock, log, version: "test", random: () => 0.5 });
  await app.lifecycle.start();
  t.teardown(() => app.lifecycle.stop(5000));
  const url = `mqtt://127.0.0.1:${app.broker!.addresses()[0]!.port}`;

  // What the rule publishes, seen in-process (synchronously), so "not yet" can be asserted.
  const commands: string[] = [];
  await app.bus.subscribe("hub/relay/set", (m: Message) => commands.push(m.payload.toString()));
  let relayOn: () => void = () => {};
  const relayReportsOn = new Promise<void>((resolve) => (relayOn = resolve));
  await app.bus.subscribe("hub/relay", (m: Message) => {
    if (m.payload.toString() === "ON") relayOn();
  });

  // The relay: obeys /set and reports its state, retained. keepalive 0: the fake clock jumps minutes.
  const relay = await connect(url, { protocolVersion: 5, keepalive: 0, clientId: "relay" });
  relay.on("message", (topic, payload) => {
    if (topic === "hub/relay/set") void relay.publishAsync("hub/relay", payload.toString(), { qos: 1, retain: true });
  });
  await relay.subscribeAsync("hub/relay/set", { qos: 1 });
  await relay.publishAsync("hub/relay", "OFF", { qos: 1, retain: true });

  const sensor = await connect(url, { protocolVersion: 5, keepalive: 0, clientId: "sensor" });
  const reading = async (c: number) => {
    await sensor.publishAsync("hub/living_room/temperature", c.toFixed(1), { qos: 1, retain: true });
    await flush();
  };
  const minutes = async (m: number) => {
    for (let s = 0; s < m * 60; s += 10) {
      clock.advance(10_000);
      await flush();
    }
  };

  await reading(24);
  await reading(25.6);
  await minutes(1.5);
  await reading(24.2); // below 25 - 0.5: the count is interrupted
  await minutes(3);
  t.same(commands, [], "hot for 90 s only: nothing");

  await reading(25.8);
  await minutes(1);
  await reading(26.1); // still above: the count goes on
  await minutes(0.5);
  await reading(25.2); // within the hysteresis band: still counts as above
  t.same(commands, [], "not yet 2 minutes");
  await minutes(0.5);
  t.same(commands, ["ON"], "2 minutes above 25 °C: the rule sent ON");
  await relayReportsOn;
  t.pass("the relay received it over TCP and reports ON");

  const status = JSON.parse((await new Promise<Buffer>((resolve) => {
    void app.bus.subscribe("hub/rules/fan_on_when_hot/last_run", (m) => resolve(m.payload));
  })).toString());
  t.equal(status.result, "ok", "the retained status says the run succeeded");
  t.match(log.lines.join("\n"), /INFO {2}hub\/rules: rule ran rule=fan_on_when_hot result=ok/);

  await reading(27);
  await minutes(5);
  t.same(commands, ["ON"], "still hot: no second command (it fires on entering the range)");
  await end(relay, sensor);
});

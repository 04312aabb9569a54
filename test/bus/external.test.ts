// External broker mode: no embedded broker; the hub's parts talk through an MQTT 5 client of an
// existing broker (here a second broker on a loopback port stands in for the house's mosquitto).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { buildApp } from "../../hub/app.js";
import { systemClock } from "../../hub/clock.js";
import { loadConfigText } from "../../hub/config/load.js";
import { memoryLogger } from "../../hub/log.js";
import { startBroker } from "../support/broker.js";
import { collect, connect, end } from "../support/mqtt.js";

t.test("devices publish to the external broker and hub/status is online, then offline", async (t) => {
  const house = await startBroker();
  t.teardown(house.stop);
  const dir = mkdtempSync(join(tmpdir(), "hub-ext-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const r = loadConfigText(
    [
      "hardware: simulate",
      `state_dir: ${dir}`,
      "broker:",
      "  external:",
      `    url: ${house.url}`,
      "    client_id: hub-under-test",
      "devices:",
      "  - name: den",
      "    type: simulated_sensor",
      "    interval: 1h",
      "    quantities:",
      "      temperature: { start: 20, min: 10, max: 30, step: 0.5 }",
    ].join("\n"),
    "ext.yaml",
    { readFile: () => "", env: {} },
  );
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  const watcher = await connect(house.url, { protocolVersion: 5 });
  const rx = collect(watcher);
  await watcher.subscribeAsync("hub/#", { qos: 1 });
  const log = memoryLogger();
  const app = await buildApp({ config: r.config, clock: systemClock(), log, version: "test", random: () => 0.5 });
  t.equal(app.broker, undefined, "no embedded broker");
  await app.lifecycle.start();
  const got = (await rx.count(3)).slice(0, 3);
  const topics = got.map((m) => `${m.topic}=${m.payload}`).sort();
  t.same(topics, ["hub/den/availability=online", "hub/den/temperature=20.0", "hub/status=online"]);
  t.ok(house.broker.core.sessions.has("hub-under-test"));
  // A command from the house broker reaches a part subscribed through the Bus.
  const commands: string[] = [];
  const cmd = new Promise<void>((resolve) => {
    void app.bus.subscribe("hub/+/set", (m) => {
      commands.push(m.payload.toString());
      resolve();
    });
  });
  // The subscription is in place once the external broker has it (the hub's own session holds
  // other filters too, e.g. homeassistant/status, so look for this one).
  await new Promise<void>((resolve) => {
    const check = () => {
      const hub = house.broker.core.sessions.get("hub-under-test");
      if (hub && house.broker.core.tree.get(hub, "hub/+/set")) resolve();
      else setImmediate(check);
    };
    check();
  });
  await watcher.publishAsync("hub/den/set", "ON", { qos: 1 });
  await cmd;
  t.same(commands, ["ON"]);
  const before = rx.got.length; // includes the echo of hub/den/set
  await app.lifecycle.stop(5000);
  const after = await rx.count(before + 2);
  t.ok(after.some((m) => m.topic === "hub/status" && m.payload === "offline"));
  await end(watcher);
});

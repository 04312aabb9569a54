// End to end: the hub's app in simulate mode publishes the simulated sensors' readings on
// hub/<device>/<quantity> through the embedded broker to a real MQTT client; in linux mode on a
// machine without I2C and 1-Wire the hub refuses to start, with a message saying what to enable.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { buildApp } from "../../hub/app.js";
import { systemClock } from "../../hub/clock.js";
import { loadConfigText } from "../../hub/config/load.js";
import { memoryLogger } from "../../hub/log.js";
import { collect, connect, end } from "../support/mqtt.js";

function config(dir: string, hardware: string, extra: string[] = []) {
  const r = loadConfigText(
    [
      `hardware: ${hardware}`,
      `state_dir: ${dir}`,
      "broker:",
      "  listeners: [{ host: 127.0.0.1, port: 0 }]",
      "  sys_interval: 0s",
      "devices:",
      "  - name: bathroom",
      "    type: bme280",
      "    interval: 1h",
      "  - name: hall",
      "    type: bh1750",
      "    address: 0x5c",
      "    interval: 1h",
      "  - name: boiler",
      "    type: ds18b20",
      "    interval: 1h",
      ...extra,
    ].join("\n"),
    "e2e.yaml",
    { readFile: () => "", env: {} },
  );
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  return r.config;
}

t.test("simulate: BME280, BH1750 and DS18B20 readings arrive on hub/<device>/<quantity>", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "hub-e2e-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const app = await buildApp({ config: config(dir, "simulate"), clock: systemClock(), log: memoryLogger(), version: "test", random: () => 0.5 });
  await app.lifecycle.start();
  t.teardown(() => app.lifecycle.stop(5000));
  const port = app.broker!.addresses()[0]!.port;
  const client = await connect(`mqtt://127.0.0.1:${port}`, { protocolVersion: 5 });
  t.teardown(() => end(client));
  const rx = collect(client);
  await client.subscribeAsync("hub/#", { qos: 1 });
  const want = ["hub/bathroom/temperature", "hub/bathroom/humidity", "hub/bathroom/pressure", "hub/hall/lux", "hub/boiler/temperature"];
  for (const d of ["bathroom", "hall", "boiler"]) want.push(`hub/${d}/availability`);
  const value = new Map<string, string>();
  for (let n = 1; want.some((w) => !value.has(w)); n++) {
    const got = await rx.count(n);
    value.set(got[n - 1]!.topic, got[n - 1]!.payload);
  }
  const num = (topic: string) => Number(value.get(topic));
  t.ok(num("hub/bathroom/temperature") > 15 && num("hub/bathroom/temperature") < 30, `temperature ${value.get("hub/bathroom/temperature")}`);
  t.match(value.get("hub/bathroom/temperature"), /^\d+\.\d\d$/, "two decimals");
  t.ok(num("hub/bathroom/humidity") > 20 && num("hub/bathroom/humidity") < 80, `humidity ${value.get("hub/bathroom/humidity")}`);
  t.ok(num("hub/bathroom/pressure") > 980 && num("hub/bathroom/pressure") < 1040, `pressure ${value.get("hub/bathroom/pressure")} hPa`);
  t.ok(num("hub/hall/lux") >= 0 && num("hub/hall/lux") < 1000, `lux ${value.get("hub/hall/lux")}`);
  t.ok(num("hub/boiler/temperature") > 15 && num("hub/boiler/temperature") < 30, `DS18B20 ${value.get("hub/boiler/temperature")}`);
  for (const d of ["bathroom", "hall", "boiler"]) t.equal(value.get(`hub/${d}/availability`), "online", `${d} online`);
});

t.test("linux on a machine without I2C or 1-Wire: the hub refuses to start, naming what to enable", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "hub-e2e-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const log = memoryLogger();
  const cfg = config(dir, "linux");
  // A bus number no machine here has, so the test does not depend on the host.
  for (const d of cfg.devices) if ("bus" in d) d.bus = 99;
  for (const d of cfg.devices) if (d.type === "ds18b20") d.dir = join(dir, "no-w1");
  const app = await buildApp({ config: cfg, clock: systemClock(), log, version: "test", random: () => 0.5 });
  t.teardown(() => app.lifecycle.stop(5000));
  const err = await app.lifecycle.start().then(
    () => undefined,
    (e: Error) => e,
  );
  t.ok(err, "start fails");
  const text = String(err?.message);
  t.match(text, /^hardware: linux, but this machine lacks what the configured devices need:/);
  t.match(text, /devices bathroom, hall \(I2C bus 99\): I2C is not enabled \(raspi-config → Interface → I2C\): \/dev\/i2c-99 does not exist/);
  t.match(text, /device boiler \(1-Wire\): the directory does not exist: .*no-w1 is missing/);
  t.match(text, /run the same config on simulated hardware with --simulate/);
  t.same(app.broker!.addresses(), [], "nothing started: the broker never listened");
});

// The device host: opens each configured device through its driver, polls it, publishes readings
// as retained plain payloads on hub/<device>/<quantity> and availability on hub/<device>/availability.
// Each device is independent: a failing one goes offline and is retried with capped backoff
// (through the injected clock) without touching the others. Logs on state transitions only.
import type { Bus, Cancel, Clock, Logger, Service, Topics } from "./contracts.js";
import type { Device, DriverContext, DriverDefinition, Reading } from "../drivers/types.js";

export interface DeviceSpec {
  name: string;
  interval: number;
  driver: DriverDefinition<unknown>;
  options: unknown;
}

export interface DeviceHostDeps {
  bus: Bus;
  clock: Clock;
  log: Logger;
  topics: Topics;
  random: () => number;
  /** Log every reading at info (simulation, so a newcomer sees data flowing); else at debug. */
  logReadings?: boolean;
}

const BACKOFF_MIN_MS = 1_000;
const BACKOFF_MAX_MS = 60_000;

export function formatValue(v: number | boolean | string, precision: number | undefined): string {
  if (typeof v === "number") return precision === undefined ? String(v) : v.toFixed(precision);
  if (typeof v === "boolean") return v ? "ON" : "OFF";
  return v;
}

export function createDeviceHost(specs: DeviceSpec[], deps: DeviceHostDeps): Service {
  const { bus, clock, topics } = deps;
  const running: Array<{ stop(): Promise<void> }> = [];

  const runDevice = (spec: DeviceSpec) => {
    const log = deps.log.child(spec.name);
    const ctx: DriverContext = { clock, log, random: deps.random };
    const info = spec.driver.quantities(spec.options);
    let device: Device | undefined;
    let online: boolean | undefined;
    let backoff = BACKOFF_MIN_MS;
    let timer: Cancel | undefined;
    let stopped = false;

    const publish = (topic: string, payload: string) =>
      bus.publish({ topic, payload: Buffer.from(payload), qos: 1, retain: true }).catch((err) => {
        log.warn("could not publish", { topic, error: err });
      });
    const setOnline = (up: boolean, why?: unknown) => {
      if (online === up) return;
      online = up;
      if (up) log.info("device online");
      else log.warn("device offline; will retry", { error: why, retry_ms: backoff });
      void publish(topics.availability(spec.name), up ? "online" : "offline");
    };
    const publishReading = (r: Reading) => {
      const fields: Record<string, string> = {};
      for (const [q, v] of Object.entries(r)) fields[q] = formatValue(v, info[q]?.precision);
      if (deps.logReadings) log.info("reading", fields);
      else log.debug("reading", fields);
      for (const [quantity, value] of Object.entries(r)) {
        void publish(topics.state(spec.name, quantity), formatValue(value, info[quantity]?.precision));
      }
    };
    const fail = async (err: unknown) => {
      setOnline(false, err);
      const d = device;
      device = undefined;
      await d?.close().catch(() => {});
      if (stopped) return;
      timer = clock.after(backoff, tick);
      backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
    };
    async function tick(): Promise<void> {
      if (stopped) return;
      try {
        if (!device) device = await spec.driver.open(spec.options, ctx);
        if (device.read) publishReading(await device.read());
        backoff = BACKOFF_MIN_MS;
        setOnline(true);
        if (!stopped) timer = clock.after(spec.interval, tick);
      } catch (err) {
        await fail(err);
      }
    }
    void tick();
    return {
      async stop() {
        stopped = true;
        timer?.();
        await device?.close().catch(() => {});
        await publish(topics.availability(spec.name), "offline");
      },
    };
  };

  return {
    name: "devices",
    async start() {
      for (const spec of specs) running.push(runDevice(spec));
      deps.log.info("devices started", { count: specs.length });
    },
    async stop() {
      await Promise.all(running.splice(0).map((d) => d.stop()));
    },
  };
}

// The device host: opens each configured device through its driver, polls it, publishes readings
// as retained plain payloads on hub/<device>/<quantity> and availability on hub/<device>/availability.
// A quantity named `state` is the device's own on/off state and goes to hub/<device> (DESIGN.md §5).
// Devices with watch() publish on change; devices with write() are switches that obey
// hub/<device>/set (ON, OFF, TOGGLE, 1, 0, true, false). Optional report-on-change: a `deadband`
// and a `heartbeat` (maximum silence). Each device is independent: a failing one goes offline and is
// retried with capped backoff (through the injected clock) without touching the others. Logs on
// state transitions only.
import type { Bus, Cancel, Clock, Logger, Message, Service, Topics } from "./contracts.js";
import type { Device, DriverContext, DriverDefinition, Reading } from "../drivers/types.js";

export interface DeviceSpec {
  name: string;
  /** Time between reads; omitted for devices that report through watch() only. */
  interval?: number;
  /** Report on change: publish a number only when it moved this much from the last published value. */
  deadband?: number | Record<string, number>;
  /** Report on change: publish anyway when a quantity has not been published for this long (ms). */
  heartbeat?: number;
  driver: DriverDefinition<unknown>;
  options: unknown;
}

export interface DeviceHostDeps {
  bus: Bus;
  clock: Clock;
  log: Logger;
  topics: Topics;
  random: () => number;
  /** Hardware seams handed to drivers (the DriverContext fields beyond clock, log and random). */
  io?: Omit<DriverContext, "clock" | "log" | "random">;
  /** Log every reading at info (simulation, so a newcomer sees data flowing); else at debug. */
  logReadings?: boolean;
}

const BACKOFF_MIN_MS = 1_000;
const BACKOFF_MAX_MS = 60_000;

/** The quantity that is the device itself: published on hub/<device>, commanded on hub/<device>/set. */
export const STATE_QUANTITY = "state";

export function stateTopic(topics: Topics, device: string, quantity: string): string {
  return quantity === STATE_QUANTITY ? topics.state(device) : topics.state(device, quantity);
}

export function formatValue(v: number | boolean | string, precision: number | undefined): string {
  if (typeof v === "number") return precision === undefined ? String(v) : v.toFixed(precision);
  if (typeof v === "boolean") return v ? "ON" : "OFF";
  return v;
}

/** A switch command payload: true (on), false (off), "toggle", or undefined when it is none of them. */
export function parseSwitchCommand(payload: string): boolean | "toggle" | undefined {
  switch (payload.trim().toUpperCase()) {
    case "ON":
    case "1":
    case "TRUE":
      return true;
    case "OFF":
    case "0":
    case "FALSE":
      return false;
    case "TOGGLE":
      return "toggle";
    default:
      return undefined;
  }
}

interface Published {
  value: number | boolean | string;
  text: string;
  at: number;
}

/**
 * Report-on-change. Without deadband and heartbeat every reading is published. With either, a
 * quantity is published when its text changed and (numbers) it moved at least `deadband` from the
 * last PUBLISHED value (so slow drift is still reported), or when `heartbeat` ms passed since then.
 */
export function changeFilter(spec: Pick<DeviceSpec, "deadband" | "heartbeat">) {
  const active = spec.deadband !== undefined || spec.heartbeat !== undefined;
  const last = new Map<string, Published>();
  const band = (q: string): number => {
    const d = spec.deadband;
    if (typeof d === "number") return d;
    return d !== undefined && Object.hasOwn(d, q) ? d[q]! : 0;
  };
  return {
    due(q: string, value: number | boolean | string, text: string, now: number): boolean {
      if (!active) return true;
      const p = last.get(q);
      if (p === undefined) return true;
      if (spec.heartbeat !== undefined && now - p.at >= spec.heartbeat) return true;
      if (text === p.text) return false;
      // 1e-9: 21.5 - 21.3 is 0.19999999999999929, which must count as a move of 0.2.
      if (typeof value === "number" && typeof p.value === "number") return Math.abs(value - p.value) >= band(q) - 1e-9;
      return true;
    },
    mark(q: string, value: number | boolean | string, text: string, now: number): void {
      last.set(q, { value, text, at: now });
    },
  };
}

export function createDeviceHost(specs: DeviceSpec[], deps: DeviceHostDeps): Service {
  const { bus, clock, topics } = deps;
  const running: Array<{ stop(): Promise<void> }> = [];

  const runDevice = (spec: DeviceSpec) => {
    const log = deps.log.child(spec.name);
    const ctx: DriverContext = { ...deps.io, clock, log, random: deps.random };
    const info = spec.driver.quantities(spec.options);
    const filter = changeFilter(spec);
    // Watch-only devices with a heartbeat are re-read that often, so their state is re-published.
    const pollEvery = spec.interval ?? spec.heartbeat;
    let device: Device | undefined;
    let unwatch: Cancel | undefined;
    let commands: Promise<Cancel | undefined> | undefined;
    let online: boolean | undefined;
    let backoff = BACKOFF_MIN_MS;
    let timer: Cancel | undefined;
    let stopped = false;
    // Reads, commands and reopening run one at a time per device.
    let chain: Promise<void> = Promise.resolve();
    const serial = (fn: () => Promise<void>): Promise<void> => {
      chain = chain.then(fn).catch((err) => log.error("internal error", { error: err }));
      return chain;
    };

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
    const publishReading = (r: Reading, force: boolean) => {
      const now = clock.monotonic();
      let fields: Record<string, string> | undefined;
      for (const [q, v] of Object.entries(r)) {
        const text = formatValue(v, info[q]?.precision);
        if (!force && !filter.due(q, v, text, now)) continue;
        filter.mark(q, v, text, now);
        fields ??= {};
        fields[q] = text;
        void publish(stateTopic(topics, spec.name, q), text);
      }
      if (!fields) return;
      if (deps.logReadings) log.info("reading", fields);
      else log.debug("reading", fields);
    };
    const closeDevice = async () => {
      const d = device;
      device = undefined;
      // Closed before unwatching: a switch reports the safe state its close() applies.
      await d?.close().catch((err) => log.warn("error closing device", { error: err }));
      unwatch?.();
      unwatch = undefined;
    };
    const fail = async (err: unknown) => {
      setOnline(false, err);
      timer?.();
      await closeDevice();
      if (stopped) return;
      timer = clock.after(backoff, () => void serial(tick));
      backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
    };

    const onCommand = (m: Message) => {
      const text = m.payload.toString("utf8");
      // A retained command would be replayed at every start and override safe_state/initial.
      if (m.retain) {
        log.warn("ignoring a retained command; clear it with an empty retained message", { topic: m.topic, payload: text.slice(0, 64) });
        return;
      }
      const cmd = parseSwitchCommand(text);
      if (cmd === undefined) {
        log.warn("invalid command; expected ON, OFF, TOGGLE, 1, 0, true or false", { topic: m.topic, payload: text.slice(0, 64) });
        return;
      }
      void serial(async () => {
        const d = device;
        if (!d?.write) {
          log.warn("command ignored: device offline", { payload: text.slice(0, 64) });
          return;
        }
        try {
          let on: boolean;
          if (cmd === "toggle") on = (d.read ? (await d.read())[STATE_QUANTITY] : undefined) !== true;
          else on = cmd;
          const r = await d.write({ [STATE_QUANTITY]: on });
          // Published even when unchanged: the sender sees its command acknowledged.
          publishReading(r, true);
        } catch (err) {
          await fail(err);
        }
      });
    };

    const open = async () => {
      const d = await spec.driver.open(spec.options, ctx);
      device = d;
      if (d.watch) unwatch = d.watch((r) => publishReading(r, false));
      if (d.write && !commands) {
        commands = bus.subscribe(topics.set(spec.name), onCommand, { qos: 1 }).catch((err) => {
          log.error("could not subscribe to commands", { topic: topics.set(spec.name), error: err });
          return undefined;
        });
      }
    };

    async function tick(): Promise<void> {
      timer = undefined;
      if (stopped) return;
      try {
        if (!device) await open();
        const d = device!;
        if (d.read) publishReading(await d.read(), false);
        backoff = BACKOFF_MIN_MS;
        setOnline(true);
        if (!stopped && pollEvery !== undefined) timer = clock.after(pollEvery, () => void serial(tick));
      } catch (err) {
        await fail(err);
      }
    }
    void serial(tick);
    return {
      async stop() {
        stopped = true;
        timer?.();
        (await commands)?.();
        await chain;
        timer?.();
        await closeDevice();
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

// Test harness for the rules engine: the real broker core (no sockets) on a fake clock, rules written
// as YAML and checked by the real schema, and a recorder of everything published.
import { parse } from "yaml";
import type { Clock, Logger, Message } from "../../hub/contracts.js";
import { createBroker } from "../../hub/broker/broker.js";
import { memoryLogger } from "../../hub/log.js";
import { createRulesEngine, type RulesEngine } from "../../rules/engine.js";
import { type Rule, rulesSchema } from "../../rules/schema.js";
import type { TimerStore } from "../../rules/timers.js";
import { defaultLimits } from "../support/broker.js";
import { type FakeClock, fakeClock } from "../support/fake-clock.js";

/** Lets promise chains and callbacks queued by the last step run to completion (no real time passes). */
export async function flush(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise<void>((r) => setImmediate(r));
}

export function rules(yaml: string): Rule[] {
  return rulesSchema.parse(parse(yaml));
}

/** 2024-01-15 (a Monday) 12:00:00 UTC = 13:00 in Berlin. */
export const MONDAY_NOON_UTC = Date.UTC(2024, 0, 15, 12, 0, 0);

export interface Harness {
  clock: FakeClock;
  engine: RulesEngine;
  lines: string[];
  seen: Message[];
  /** Payloads published on a topic, oldest first. */
  on(topic: string): string[];
  publish(topic: string, payload: string, retain?: boolean): Promise<void>;
  /** Advances the clock in steps of `step` ms, letting async work settle after each. */
  advance(ms: number, step?: number): Promise<void>;
  stop(): Promise<void>;
}

/** The real broker core (no sockets) on `clock`, with a test client's publish and recorder. */
export async function testBroker(clock: Clock, log: Logger) {
  const broker = createBroker({ limits: defaultLimits(), listeners: [], sysIntervalMs: 0, version: "test", clock, log: log.child("broker") });
  await broker.start();
  const bus = broker.bus("test");
  return {
    broker,
    bus,
    /** Publishes as the test client, then lets what it causes settle. */
    async publish(topic: string, payload: string, retain = false): Promise<void> {
      await bus.publish({ topic, payload: Buffer.from(payload), qos: 0, retain });
      await flush();
    },
    /** The payloads published on `filter` from now on, oldest first (a live list). */
    async record(filter: string): Promise<string[]> {
      const out: string[] = [];
      await bus.subscribe(filter, (m) => out.push(m.payload.toString()));
      return out;
    },
  };
}

export async function harness(
  yaml: string,
  opts: { start?: number; timeZone?: string; before?: (publish: Harness["publish"]) => Promise<void>; location?: { latitude: number; longitude: number }; status?: boolean; timers?: TimerStore } = {},
): Promise<Harness> {
  const clock = fakeClock(opts.start ?? MONDAY_NOON_UTC);
  const log = memoryLogger("debug");
  const { broker, bus, publish } = await testBroker(clock, log);
  const seen: Message[] = [];
  await bus.subscribe("#", (m) => seen.push(m));
  if (opts.before) await opts.before(publish);
  const engine = createRulesEngine({
    rules: rules(yaml),
    bus: broker.bus("rules"),
    clock,
    log: log.child("rules"),
    topicsBase: "hub",
    timeZone: opts.timeZone ?? "Europe/Berlin",
    location: opts.location,
    publishStatus: opts.status ?? true,
    timers: opts.timers,
  });
  await engine.start();
  await flush();
  return {
    clock,
    engine,
    lines: log.lines,
    seen,
    on: (topic) => seen.filter((m) => m.topic === topic).map((m) => m.payload.toString()),
    publish,
    async advance(ms, step = 1000) {
      for (let left = ms; left > 0; left -= step) {
        clock.advance(Math.min(step, left));
        await flush();
      }
    },
    async stop() {
      await engine.stop();
      await broker.stop();
    },
  };
}

// `hub rules test`: replays a recorded scenario (messages at given times, and time passing) against
// rules on a virtual clock and an in-memory bus, and reports what each rule did and why: for every
// evaluation its trace (which trigger, each condition passed or failed, each action), everything the
// rules published, and the rules that never fired. Nothing real is touched; a day replays in
// milliseconds.
//
//   start: 2025-01-06T17:00:00+01:00     # wall clock at the first event (default 2025-01-06T12:00:00Z)
//   events:
//     - { at: 0s, topic: hub/garden/lux, payload: 800, retain: true }   # known before the rules start
//     - { at: 2m, topic: hub/garden/lux, payload: 500 }
//     - { at: 10m }                                                   # let time pass
import { z } from "zod";
import type { Bus, Cancel, Clock, LogFields, Logger, Message } from "../hub/contracts.js";
import { duration } from "./duration.js";
import { createRulesEngine } from "./engine.js";
import type { Rule } from "./schema.js";
import { locationSchema } from "./schema.js";
import { validTimeZone } from "./time.js";
import { topicMatches, validTopicName } from "./values.js";

export const scenarioSchema = z.strictObject({
  start: z
    .string({ error: "an ISO 8601 time such as 2025-01-06T17:00:00+01:00" })
    .refine((s) => Number.isFinite(Date.parse(s)), { error: "an ISO 8601 time such as 2025-01-06T17:00:00+01:00" })
    .default("2025-01-06T12:00:00Z")
    .transform((s) => Date.parse(s)),
  time_zone: z.string({ error: "an IANA time zone" }).refine(validTimeZone, { error: "an IANA time zone such as Europe/Berlin" }).optional(),
  location: locationSchema.optional(),
  events: z
    .array(
      z.strictObject({
        at: duration().describe("Time since the start."),
        topic: z.string({ error: "an MQTT topic" }).refine(validTopicName, { error: "an MQTT topic without wildcards" }).optional(),
        payload: z.union([z.string(), z.number(), z.boolean()], { error: "a payload (text, number or true/false)" }).default(""),
        retain: z.boolean({ error: "true or false" }).default(false),
      }),
      { error: "a list of events" },
    )
    .superRefine((evs, ctx) => {
      for (let i = 1; i < evs.length; i++) {
        if (evs[i]!.at < evs[i - 1]!.at) ctx.addIssue({ code: "custom", message: "times in order (not earlier than the event before)", path: [i, "at"], input: evs[i]!.at });
      }
    }),
});
export type Scenario = z.output<typeof scenarioSchema>;

interface Timer {
  at: number;
  seq: number;
  fn: () => void;
  every?: number;
  dead: boolean;
}

/** Lets promise chains started by the last step finish. */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise<void>((r) => setImmediate(r));
}

function virtualClock(start: number) {
  let mono = 0;
  let seq = 0;
  const timers: Timer[] = [];
  const add = (ms: number, fn: () => void, every?: number): Cancel => {
    const t: Timer = { at: mono + Math.max(0, ms), seq: seq++, fn, every, dead: false };
    timers.push(t);
    return () => {
      t.dead = true;
    };
  };
  const clock: Clock = { now: () => start + mono, monotonic: () => mono, after: (ms, fn) => add(ms, fn), every: (ms, fn) => add(ms, fn, Math.max(1, ms)) };
  return {
    clock,
    elapsed: () => mono,
    /** Fires every timer due up to `target` in order, letting async work settle after each. */
    async runUntil(target: number) {
      for (;;) {
        let next: Timer | undefined;
        for (const t of timers) if (!t.dead && t.at <= target && (!next || t.at < next.at || (t.at === next.at && t.seq < next.seq))) next = t;
        if (next === undefined) break;
        mono = next.at;
        if (next.every !== undefined) next.at += next.every;
        else next.dead = true;
        next.fn();
        await settle();
        for (let i = timers.length - 1; i >= 0; i--) if (timers[i]!.dead) timers.splice(i, 1);
      }
      mono = Math.max(mono, target);
    },
  };
}

/** A bus with retained messages and topic matching, delivering synchronously. */
function memoryBus(onPublish: (m: Message) => void): Bus {
  const subs = new Set<{ filter: string; fn: (m: Message) => void }>();
  const retained = new Map<string, Message>();
  return {
    async publish(m) {
      if (m.retain) {
        if (m.payload.length === 0) retained.delete(m.topic);
        else retained.set(m.topic, m);
      }
      onPublish(m);
      for (const s of [...subs]) if (topicMatches(s.filter, m.topic)) s.fn(m);
    },
    async subscribe(filter, fn) {
      const s = { filter, fn };
      subs.add(s);
      for (const m of retained.values()) if (topicMatches(filter, m.topic)) fn({ ...m, retain: true });
      return () => subs.delete(s);
    },
  };
}

/** The engine's log lines, interleaved in the report (debug left out). */
function reportLogger(lines: string[], clockNow: () => number, base: number): Logger {
  const line = (level: string) => (msg: string, fields?: LogFields) => {
    if (level === "debug") return;
    const f = fields ? Object.entries(fields).map(([k, v]) => ` ${k}=${typeof v === "string" ? v : JSON.stringify(v)}`) : [];
    lines.push(`${stamp(clockNow(), base)}  log ${level}: ${msg}${f.join("")}`);
  };
  const l: Logger = { debug: line("debug"), info: line("info"), warn: line("warn"), error: line("error"), child: () => l };
  return l;
}

function stamp(now: number, start: number): string {
  const s = Math.round((now - start) / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor(s / 60) % 60;
  const sec = s % 60;
  return `+${h > 0 ? `${h}h` : ""}${h > 0 || m > 0 ? `${String(m).padStart(h > 0 ? 2 : 1, "0")}m` : ""}${String(sec).padStart(h > 0 || m > 0 ? 2 : 1, "0")}s`.padEnd(10);
}

/**
 * Replays `scenario` against `rules` and returns the report, one line per entry. Retained events at
 * 0s are in place before the rules start (so they are startup values, as on a real hub).
 */
export async function replay(rules: readonly Rule[], scenario: Scenario, opts: { topicsBase?: string } = {}): Promise<string[]> {
  const start = scenario.start;
  const vc = virtualClock(start);
  const out: string[] = [];
  const ran = new Set<string>();
  let fromRules = false;
  const bus = memoryBus((m) => {
    if (fromRules) out.push(`${stamp(vc.clock.now(), start)}  -> ${m.topic} ${JSON.stringify(m.payload.toString())}${m.retain ? " (retained)" : ""}`);
  });
  const rulesBus: Bus = {
    publish: async (m) => {
      fromRules = true;
      try {
        await bus.publish(m);
      } finally {
        fromRules = false;
      }
    },
    subscribe: (f, fn, o) => bus.subscribe(f, fn, o),
  };
  const pre = scenario.events.filter((e) => e.at === 0 && e.retain && e.topic !== undefined);
  for (const e of pre) {
    out.push(`${stamp(start, start)}  ${e.topic} = ${JSON.stringify(String(e.payload))} (retained, before the rules start)`);
    await bus.publish({ topic: e.topic!, payload: Buffer.from(String(e.payload)), qos: 0, retain: true });
  }
  const engine = createRulesEngine({
    rules,
    bus: rulesBus,
    clock: vc.clock,
    log: reportLogger(out, vc.clock.now, start),
    topicsBase: opts.topicsBase ?? "hub",
    location: scenario.location,
    timeZone: scenario.time_zone ?? scenario.location?.time_zone ?? "UTC",
    clockSynchronised: () => true,
    publishStatus: false,
    onRun: (r) => {
      ran.add(r.rule);
      out.push(`${stamp(r.at, start)}  rule ${r.rule}: ${r.result}`);
      for (const t of r.trace) out.push(`${" ".repeat(12)}${t}`);
    },
  });
  await engine.start();
  await settle();
  for (const e of scenario.events) {
    if (pre.includes(e)) continue;
    await vc.runUntil(e.at);
    if (e.topic === undefined) continue;
    out.push(`${stamp(vc.clock.now(), start)}  ${e.topic} = ${JSON.stringify(String(e.payload))}${e.retain ? " (retained)" : ""}`);
    await bus.publish({ topic: e.topic, payload: Buffer.from(String(e.payload)), qos: 0, retain: e.retain });
    await settle();
  }
  await engine.stop();
  for (const r of rules) {
    if (ran.has(r.id)) continue;
    const why = r.enabled ? `no trigger fired (${r.triggers.map((t) => describe(t)).join("; ")})` : "disabled";
    out.push(`rule ${r.id}: never ran: ${why}`);
  }
  return out;
}

function describe(t: Rule["triggers"][number]): string {
  switch (t.trigger) {
    case "numeric":
      return `numeric ${t.topic}${t.above === undefined ? "" : ` above ${t.above}`}${t.below === undefined ? "" : ` below ${t.below}`}${t.for === undefined ? "" : ` for ${t.for / 1000}s`}`;
    case "state":
      return `state ${t.topic}${t.from === undefined ? "" : ` from ${JSON.stringify(t.from)}`}${t.to === undefined ? "" : ` to ${JSON.stringify(t.to)}`}${t.for === undefined ? "" : ` for ${t.for / 1000}s`}`;
    case "mqtt":
      return `mqtt ${t.topic}${t.payload === undefined ? "" : ` payload ${JSON.stringify(t.payload)}`}`;
    case "cron":
      return `cron ${t.cron}`;
    case "sun":
      return `sun ${t.event}`;
    case "startup":
      return "startup";
  }
}

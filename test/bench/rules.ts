// `npm run bench:rules`: the rules engine under load (issue "rules engine", item 9). The embedded
// broker on a loopback port, N rules (default 1,000) over 100 sensor topics, an MQTT client
// publishing R messages/s (default 10,000) for S seconds over TCP, and a second client receiving
// what the rules publish. Reported, not asserted (numbers depend on the machine and its load):
//   - messages/s delivered to the engine, and trigger evaluations/s (each message reaches only the
//     rules listening on its topic: N/100 of them, through the topic index);
//   - runs/s (triggers whose conditions held and whose actions ran), with status topics published;
//   - publish -> action latency p50/p99: from the publisher's send to the rule's publish arriving
//     at the receiving client (both over TCP);
//   - CPU of this process (broker + engine + both clients) and event-loop delay;
//   - GC pauses in the measured window (young-generation scavenges, old-space mark-compacts): the
//     p99 latency follows the longest of them and the moments the OS runs something else instead
//     (event-loop delay without a GC pause to match).
// Usage: node dist/test/bench/rules.js [--rules N] [--rate R] [--seconds S]
import { constants as perfConstants, monitorEventLoopDelay, PerformanceObserver, performance } from "node:perf_hooks";
import mqtt from "mqtt";
import { createBroker } from "../../hub/broker/broker.js";
import { systemClock } from "../../hub/clock.js";
import type { Bus, Message } from "../../hub/contracts.js";
import { createLogger } from "../../hub/log.js";
import { createRulesEngine } from "../../rules/engine.js";
import { rulesSchema } from "../../rules/schema.js";
import { defaultLimits } from "../support/broker.js";

const TOPICS = 100;
/** One rule in this many acts on every message (publishes with the send time); the rest rarely fire. */
const ACTING_EVERY = 10;

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i < 0 ? Number.NaN : Number(process.argv[i + 1]);
  return Number.isFinite(v) && v > 0 ? v : dflt;
}

/** The rules: every tenth publishes the message's send time; the others are numeric/state triggers with conditions. */
function makeRules(n: number): unknown[] {
  const out: unknown[] = [];
  for (let i = 0; i < n; i++) {
    const topic = `bench/s/${i % TOPICS}`;
    if (i % ACTING_EVERY === 0)
      out.push({
        id: `act_${i}`,
        mode: "parallel",
        max: 1000,
        triggers: [{ trigger: "mqtt", topic, value: "t" }],
        actions: [{ action: "publish", topic: `bench/out/${i}`, payload: "{{ trigger.value }}" }],
      });
    else if (i % 2 === 0)
      out.push({
        id: `hot_${i}`,
        triggers: [{ trigger: "numeric", topic, value: "v", above: 99.9, hysteresis: 0.05, for: "1m" }],
        conditions: [{ condition: "expression", expression: `trigger.value * 1.8 + 32 > 200 and state('${topic}') != null` }],
        actions: [{ action: "publish", topic: `bench/alert/${i}`, payload: "hot" }],
      });
    else
      out.push({
        id: `band_${i}`,
        triggers: [{ trigger: "numeric", topic, value: "v", above: 50, below: 50.05 }],
        conditions: [{ condition: "time", after: "00:00", before: "23:59:59" }],
        actions: [{ action: "log", message: "band {{ trigger.value }}", level: "debug" }],
      });
  }
  return out;
}

function pct(sorted: number[], p: number): number {
  return sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function main(): Promise<void> {
  const nRules = arg("rules", 1000);
  const rate = arg("rate", 10_000);
  const seconds = arg("seconds", 10);
  const clock = systemClock();
  const log = createLogger({ level: "warn", format: "text", write: (line) => process.stderr.write(`${line}\n`) });
  const broker = createBroker({ limits: defaultLimits(), listeners: [{ host: "127.0.0.1", port: 0 }], sysIntervalMs: 0, version: "bench", clock, log });
  await broker.start();
  const url = `mqtt://127.0.0.1:${broker.addresses()[0]!.port}`;

  // Counts what the broker delivers to the engine (one subscription per distinct filter).
  let delivered = 0;
  const inner = broker.bus("rules");
  const bus: Bus = {
    publish: (m) => inner.publish(m),
    subscribe: (filter, fn, opts) =>
      inner.subscribe(
        filter,
        (m: Message) => {
          delivered++;
          fn(m);
        },
        opts,
      ),
  };
  let runs = 0;
  const rules = rulesSchema.parse(makeRules(nRules));
  const engine = createRulesEngine({ rules, bus, clock, log, topicsBase: "hub", timeZone: "UTC", onRun: (r) => void (r.result === "ok" && runs++) });
  await engine.start();

  const sub = await mqtt.connectAsync(url, { protocolVersion: 5, clientId: "bench-rx", reconnectPeriod: 0 });
  const latencies: number[] = [];
  let measuring = false;
  sub.on("message", (_t, payload) => {
    if (measuring) latencies.push(performance.now() - Number(payload.toString()));
  });
  await sub.subscribeAsync("bench/out/#", { qos: 0 });
  const pub = await mqtt.connectAsync(url, { protocolVersion: 5, clientId: "bench-tx", reconnectPeriod: 0 });

  // Publish every 5 ms what the rate owes since the last tick (timers fire late; at most 20 ms is
  // made up, so a stalled process does not turn into one huge burst).
  let sent = 0;
  let k = 0;
  let last = performance.now();
  const slice = () => {
    const now = performance.now();
    const owe = Math.round((Math.min(now - last, 20) * rate) / 1000);
    last = now;
    for (let i = 0; i < owe; i++) {
      const v = 20 + ((k * 7919) % 1000) / 10; // 20.0 .. 119.9, deterministic
      pub.publish(`bench/s/${k % TOPICS}`, `{"v":${v},"t":${performance.now()}}`, { qos: 0 });
      k++;
      sent++;
    }
  };
  const warm = setInterval(slice, 5);
  await new Promise((r) => setTimeout(r, 1000));
  clearInterval(warm);
  await new Promise((r) => setTimeout(r, 200));

  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  const gc = { minor: 0, major: 0, minorMs: 0, majorMs: 0, maxMs: 0 };
  const gcSeen = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const kind = (e as unknown as { detail?: { kind?: number } }).detail?.kind;
      if (kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR) {
        gc.major++;
        gc.majorMs += e.duration;
      } else {
        gc.minor++;
        gc.minorMs += e.duration;
      }
      gc.maxMs = Math.max(gc.maxMs, e.duration);
    }
  });
  gcSeen.observe({ entryTypes: ["gc"] });
  const d0 = delivered;
  const r0 = runs;
  const s0 = sent;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  measuring = true;
  last = performance.now();
  const timer = setInterval(slice, 5);
  await new Promise((r) => setTimeout(r, seconds * 1000));
  clearInterval(timer);
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  await new Promise((r) => setTimeout(r, 500)); // let the last messages arrive
  measuring = false;
  delay.disable();
  gcSeen.disconnect();

  const perTopic = nRules / TOPICS;
  const msgs = (delivered - d0) / elapsed;
  latencies.sort((a, b) => a - b);
  const f = (x: number, d = 0) => (Number.isFinite(x) ? x.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d }) : "n/a");
  const lines = [
    `# Rules benchmark (${new Date().toISOString()}, node ${process.version})`,
    "",
    `${nRules} rules over ${TOPICS} topics (${perTopic} per topic; one in ${ACTING_EVERY} publishes on every message), ${f(rate)} msg/s offered for ${seconds} s over TCP`,
    "",
    "| metric | value |",
    "| --- | --- |",
    `| messages published | ${f((sent - s0) / elapsed)} /s |`,
    `| messages delivered to the engine | ${f(msgs)} /s |`,
    `| trigger evaluations (messages × rules on the topic) | ${f(msgs * perTopic)} /s |`,
    `| rule runs (actions run, status published) | ${f((runs - r0) / elapsed)} /s |`,
    `| publish → action latency p50 / p99 | ${f(pct(latencies, 50), 2)} / ${f(pct(latencies, 99), 2)} ms (${f(latencies.length)} samples) |`,
    `| CPU of this process (broker, engine, both clients) | ${f(((cpu.user + cpu.system) / 1e6 / elapsed) * 100)} % of one core |`,
    `| event-loop delay p99 / max | ${f(delay.percentile(99) / 1e6, 1)} / ${f(delay.max / 1e6, 1)} ms |`,
    `| GC pauses: scavenges / mark-compacts, longest | ${f(gc.minor)} (${f(gc.minorMs)} ms) / ${f(gc.major)} (${f(gc.majorMs, 1)} ms), ${f(gc.maxMs, 1)} ms |`,
    "",
  ];
  process.stdout.write(lines.join("\n"));
  await pub.endAsync();
  await sub.endAsync();
  await engine.stop();
  await broker.stop();
}

main().catch((e) => {
  process.stderr.write(`bench failed: ${(e as Error).stack ?? e}\n`);
  process.exitCode = 1;
});

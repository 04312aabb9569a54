// Bridge benchmark (issue 8, item 6): how fast the bridge drains a backlog from its SQLite queue to an
// upstream mosquitto, and its steady forwarding rate, with the hub's CPU (this process: the embedded
// broker, the bridge and the local publisher) and mosquitto's, both in CPU-seconds per 1,000 messages.
// Loopback only; a message counts when mosquitto acknowledged it (the bridge's `sent`).
// Usage: node dist/test/bench/bridge.js [--messages 100000] [--qos 0|1|2] [--window 32] [--rate 1000]
//          [--seconds 10] [--out file.md]
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { type Bridge, createBridge } from "../../hub/bridge/bridge.js";
import { openQueue } from "../../hub/bridge/queue.js";
import { bridgeSchema } from "../../hub/bridge/schema.js";
import { systemClock } from "../../hub/clock.js";
import type { QoS } from "../../hub/contracts.js";
import { memoryLogger } from "../../hub/log.js";
import { startMosquitto } from "../bridge/fixtures/cloud.js";
import { startBroker, type TestBroker } from "../support/broker.js";

interface Args {
  messages: number;
  qos: QoS;
  window: number;
  rate: number;
  seconds: number;
  out: string | null;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { messages: 100_000, qos: 1, window: 32, rate: 1000, seconds: 10, out: null };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    const v = argv[++i];
    if (v === undefined) throw new Error(`${k} needs a value`);
    if (k === "--messages") a.messages = Number(v);
    else if (k === "--qos") a.qos = Number(v) as QoS;
    else if (k === "--window") a.window = Number(v);
    else if (k === "--rate") a.rate = Number(v);
    else if (k === "--seconds") a.seconds = Number(v);
    else if (k === "--out") a.out = v;
    else throw new Error(`unknown option ${k}`);
  }
  return a;
}

/** USER_HZ, the unit of /proc/<pid>/stat times: 100 on every Linux the hub runs on. */
const TICK = 100;

/** CPU seconds (user + system) of a process from /proc/<pid>/stat. */
function procCpu(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8");
  const rest = f.slice(f.lastIndexOf(")") + 2).split(" ");
  return (Number(rest[11]) + Number(rest[12])) / TICK;
}
const selfCpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

async function waitFor(cond: () => boolean, timeoutMs: number, what: string) {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

interface Result {
  scenario: string;
  messages: number;
  seconds: number;
  hubCpu: number;
  mosqCpu: number;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  // `npm run bench` runs this before the broker benchmark, which works without mosquitto: so do we.
  if (spawnSync("mosquitto", ["-h"], { stdio: "ignore" }).error !== undefined) {
    process.stdout.write("Bridge benchmark skipped: mosquitto is not installed (apt-get install mosquitto).\n");
    return;
  }
  const dir = mkdtempSync(join(os.tmpdir(), "hub-bench-bridge-"));
  const cloud = await startMosquitto(dir);
  const mosqPid = cloud.proc.proc.pid!;
  const results: Result[] = [];
  const log = memoryLogger("info");
  const payload = Buffer.from('{"temperature":21.5,"humidity":48.2}');
  let local: TestBroker | undefined;
  let bridge: Bridge | undefined;
  const cfg = (clientId: string) =>
    bridgeSchema.parse({
      name: "bench",
      url: cloud.url,
      client_id: clientId,
      max_inflight: args.window,
      stats_interval: "1h",
      queue: { max_messages: args.messages * 2, max_bytes: 1 << 30 },
      topics: [{ pattern: "#", qos: args.qos, local_prefix: "bench/", remote_prefix: "up/" }],
    });
  try {
    // 1. Backlog drain: the queue file already holds `messages` when the bridge starts.
    const q = openQueue(join(dir, "bridge-bench.db"), { maxMessages: args.messages * 2, maxBytes: 1 << 30, policy: "drop_oldest", synchronous: "normal" }, { clock: systemClock(), log });
    for (let i = 0; i < args.messages; i++) q.append({ topic: `up/sensor/${i % 50}/state`, payload, qos: args.qos, retain: false });
    q.close();
    local = await startBroker();
    bridge = createBridge(cfg("bench-drain"), { bus: local.broker.bus("bridge"), clock: systemClock(), log, stateDir: dir });
    const b1 = bridge;
    let c0 = selfCpu();
    let m0 = procCpu(mosqPid);
    let t0 = performance.now();
    await b1.start();
    await waitFor(() => b1.stats().sent >= args.messages, 600_000, "backlog drained");
    results.push({ scenario: `backlog drain (${args.messages.toLocaleString("en-US")} queued)`, messages: args.messages, seconds: (performance.now() - t0) / 1000, hubCpu: selfCpu() - c0, mosqCpu: procCpu(mosqPid) - m0 });
    await b1.stop();
    await local.stop();

    // 2. Steady forwarding at full speed: local publishes as fast as the hub takes them.
    local = await startBroker();
    const bus = local.broker.bus("bench");
    mkdirSync(join(dir, "live"));
    bridge = createBridge(cfg("bench-live"), { bus: local.broker.bus("bridge"), clock: systemClock(), log, stateDir: join(dir, "live") });
    const b2 = bridge;
    await b2.start();
    await waitFor(() => b2.stats().online, 10_000, "online");
    const n = Math.min(args.messages, 50_000);
    c0 = selfCpu();
    m0 = procCpu(mosqPid);
    t0 = performance.now();
    for (let i = 0; i < n; i += 500) {
      const batch: Promise<void>[] = [];
      for (let j = i; j < Math.min(n, i + 500); j++) batch.push(bus.publish({ topic: `bench/sensor/${j % 50}/state`, payload, qos: args.qos, retain: false }));
      await Promise.all(batch);
      await new Promise((r) => setImmediate(r));
    }
    await waitFor(() => b2.stats().sent >= n, 600_000, "live messages forwarded");
    results.push({ scenario: "steady forwarding, as fast as possible", messages: n, seconds: (performance.now() - t0) / 1000, hubCpu: selfCpu() - c0, mosqCpu: procCpu(mosqPid) - m0 });

    // 3. A realistic steady rate: CPU at `rate` messages/s for `seconds`.
    const sentBefore = b2.stats().sent;
    const total = args.rate * args.seconds;
    c0 = selfCpu();
    m0 = procCpu(mosqPid);
    t0 = performance.now();
    let published = 0;
    while (published < total) {
      const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * args.rate));
      for (; published < due; published++) void bus.publish({ topic: `bench/sensor/${published % 50}/state`, payload, qos: args.qos, retain: false });
      await new Promise((r) => setTimeout(r, 10));
    }
    await waitFor(() => b2.stats().sent - sentBefore >= total, 60_000, "paced messages forwarded");
    results.push({ scenario: `steady ${args.rate.toLocaleString("en-US")} msg/s for ${args.seconds} s`, messages: total, seconds: (performance.now() - t0) / 1000, hubCpu: selfCpu() - c0, mosqCpu: procCpu(mosqPid) - m0 });
    await b2.stop();
  } finally {
    await bridge?.stop().catch(() => {});
    await local?.stop().catch(() => {});
    await cloud.stop();
    rmSync(dir, { recursive: true, force: true });
  }

  const lines = [
    `Bridge benchmark: QoS ${args.qos}, max_inflight ${args.window}, ${payload.length}-byte payloads, mosquitto on loopback; ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? "?"}), node ${process.version}`,
    "",
    "| scenario | messages | msg/s | hub CPU % of a core | hub CPU-s per 1,000 | mosquitto CPU-s per 1,000 |",
    "|---|---:|---:|---:|---:|---:|",
    ...results.map(
      (r) =>
        `| ${r.scenario} | ${r.messages.toLocaleString("en-US")} | ${Math.round(r.messages / r.seconds).toLocaleString("en-US")} | ${Math.round((100 * r.hubCpu) / r.seconds)} | ${((1000 * r.hubCpu) / r.messages).toFixed(3)} | ${((1000 * r.mosqCpu) / r.messages).toFixed(3)} |`,
    ),
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
  if (args.out !== null) writeFileSync(args.out, `${lines.join("\n")}\n`);
}

main().catch((err) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});

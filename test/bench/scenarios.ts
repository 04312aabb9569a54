// The seven benchmark scenarios (issue "Embedded MQTT broker", item 8). Each runs against a freshly
// started broker and returns plain metrics; report.ts turns the medians into the table.
// Throughput scenarios use worker threads (load.ts); latency, idle connections and retained run on
// the main thread, where a common clock and a simple batch loop are what matters.
import { runThroughput, startUsage, type Usage } from "./load.js";
import { bareNodeRssKb, FSYNC_METHOD, type FsyncCounter, type Reaper, sampleTree, sleep } from "./targets.js";
import { encodePublish, encodeSubscribe, PAYLOAD_BYTES, type Proto, publishLayout } from "./codec.js";
import { type Client, closeClient, openClient, subscribe, waitFor } from "./wire.js";

export type Metrics = Record<string, number>;

export interface BenchOpts {
  proto: Proto;
  warmupMs: number; // publishing before the measured window opens
  windowMs: number; // publishing window of the throughput scenarios
  drainMs: number;
  latencyMs: number;
  latencyRate: number;
  /** latency: publishing at the same rate before the measured window (JIT warm-up). */
  latencyWarmMs: number;
  idleConns: number;
  idleBatch: number;
  retainedN: number;
  pubWorkers: number;
  settleMs: number; // pause before an RSS reading
  /** idlerss: a second reading this long after the first, once V8's memory reducer has run (0: none). */
  restMs: number;
}

export interface Ctx {
  port: number;
  pid: number;
  ticks: number;
  tag: string;
  opts: BenchOpts;
  reaper: Reaper;
  /** Counts the broker's fsyncs (durable scenarios). */
  fsync: FsyncCounter;
}

export interface Scenario {
  id: string;
  title: string;
  /** Persistence on for both brokers (hub broker.storage, mosquitto `persistence true`). */
  durable?: boolean;
  run: (ctx: Ctx) => Promise<Metrics>;
}

const TIMEOUT_MS = 10_000;

function cpu(u: Usage): Metrics {
  // other = machine − broker − generator: other processes, plus kernel work charged to neither
  const other = Math.max(0, u.cpuMachine - u.cpuBroker - u.cpuGen);
  return { "cpu.gen": u.cpuGen, "cpu.broker": u.cpuBroker, "cpu.machine": u.cpuMachine, "cpu.other": other };
}

async function fanIn(ctx: Ctx, qos: 0 | 1, persistentSubs = false): Promise<Metrics> {
  const r = await runThroughput(ctx.port, ctx.opts.proto, ctx.pid, ctx.ticks, {
    tag: ctx.tag,
    pubs: 4,
    subs: 1,
    qos,
    persistentSubs,
    pubTopic: (i) => `bench/p${i}`,
    filter: "bench/#",
    warmupMs: ctx.opts.warmupMs,
    durationMs: ctx.opts.windowMs,
    drainMs: ctx.opts.drainMs,
    pubWorkers: ctx.opts.pubWorkers,
    subWorkers: 1,
    window: 100,
    highWater: 1 << 20,
  });
  return {
    rate: r.rate,
    sent: r.sent,
    expected: r.expected,
    received: r.received,
    lost: r.lost,
    dupes: r.dupes,
    nacked: r.nacked,
    window: r.window,
    drainCut: r.drain === "cut" ? 1 : 0,
    ...cpu(r.usage),
  };
}

/**
 * QoS 1 fan-in to a persistent session with persistence on (issue 4, item 7): throughput, loss, and
 * fsync + fdatasync calls per 1,000 acknowledged messages over the whole load (warm-up, window, drain).
 */
async function durableFanIn(ctx: Ctx): Promise<Metrics> {
  await ctx.fsync.start();
  let m: Metrics;
  let n: number | null;
  try {
    m = await fanIn(ctx, 1, true);
  } finally {
    n = await ctx.fsync.stop();
  }
  // null (commits mode): filled in from the hub's log once it has stopped (broker.ts).
  const fsyncs = n ?? Number.NaN;
  return { ...m, fsyncs, fsyncPer1k: (fsyncs * 1000) / (m.expected ?? Number.NaN), fsyncMethod: FSYNC_METHOD[ctx.fsync.mode] };
}

async function fanOut(ctx: Ctx): Promise<Metrics> {
  const r = await runThroughput(ctx.port, ctx.opts.proto, ctx.pid, ctx.ticks, {
    tag: ctx.tag,
    pubs: 1,
    subs: 50,
    qos: 0,
    pubTopic: () => "bench/fan",
    filter: "bench/fan",
    warmupMs: ctx.opts.warmupMs,
    durationMs: ctx.opts.windowMs,
    drainMs: ctx.opts.drainMs,
    pubWorkers: 1,
    subWorkers: ctx.opts.pubWorkers,
    window: 100,
    highWater: 1 << 20,
  });
  return { rate: r.rate, sent: r.sent, received: r.received, lost: r.lost, drainCut: r.drain === "cut" ? 1 : 0, ...cpu(r.usage) };
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** QoS 1 at a fixed rate; publisher and subscriber share this thread, so one clock stamps both ends. */
async function latency(ctx: Ctx): Promise<Metrics> {
  const { proto, latencyMs, latencyRate, latencyWarmMs: warmMs } = ctx.opts;
  const total = Math.floor((latencyRate * latencyMs) / 1000);
  const sub = await openClient(ctx.port, `${ctx.tag}-lsub`, proto, TIMEOUT_MS);
  const pub = await openClient(ctx.port, `${ctx.tag}-lpub`, proto, TIMEOUT_MS);
  try {
    sub.lat = new Float64Array(Math.max(total, latencyRate));
    await subscribe(sub, "bench/lat", 1, TIMEOUT_MS);
    const tpl = encodePublish("bench/lat", Buffer.alloc(PAYLOAD_BYTES, 0x61), 1, false, 1, proto);
    const { pidOff, payOff } = publishLayout(tpl, proto);
    let seq = 0; // across warm-up and measurement: packet ids and the in-flight count
    const paced = async (count: number, ms: number): Promise<number> => {
      const t0 = process.hrtime.bigint();
      let sent = 0;
      // Bounded: at most two iterations per ms of the window.
      for (let i = 0; i < ms * 2 && sent < count; i++) {
        const elapsedMs = Number(process.hrtime.bigint() - t0) / 1e6;
        if (elapsedMs > ms + 2000) break;
        const due = Math.min(count, Math.floor((elapsedMs * latencyRate) / 1000) + 1);
        // never more unacknowledged PUBLISHes than the broker's Receive Maximum (MQTT-3.3.4-7)
        while (sent < due && seq - pub.pubacks < pub.connack!.receiveMax) {
          tpl.writeUInt16BE((seq % 65535) + 1, pidOff);
          tpl.writeBigUInt64BE(process.hrtime.bigint(), payOff);
          pub.sock.write(Buffer.from(tpl)); // a copy: the template is patched again before it is flushed
          sent++;
          seq++;
        }
        await sleep(1);
      }
      return sent;
    };
    const warm = await paced(Math.floor((latencyRate * warmMs) / 1000), warmMs);
    await waitFor(sub, () => sub.received >= warm, ctx.opts.drainMs, "latency warm-up").catch(() => undefined);
    sub.latN = 0;
    const usage = startUsage(ctx.pid, ctx.ticks);
    const sent = await paced(total, latencyMs);
    const u = usage();
    await waitFor(sub, () => sub.latN >= sent, ctx.opts.drainMs, "latency drain").catch(() => undefined);
    const lat = sub.lat.slice(0, sub.latN).sort();
    return {
      p50: percentile(lat, 50) / 1000,
      p99: percentile(lat, 99) / 1000,
      max: (lat.length > 0 ? lat[lat.length - 1]! : Number.NaN) / 1000,
      sent,
      rateAchieved: (sent * 1000) / u.wallMs,
      lost: sent - sub.latN,
      ...cpu(u),
    };
  } finally {
    closeClient(sub);
    closeClient(pub);
  }
}

/** N clients connect in batches, each subscribing to its own topic; RSS delta per connection. */
async function idleConnections(ctx: Ctx): Promise<Metrics> {
  const { idleConns, idleBatch, proto } = ctx.opts;
  await sleep(ctx.opts.settleMs);
  const rss0 = sampleTree(ctx.pid).rssKb;
  const clients: Client[] = [];
  let failed = 0;
  let firstError = "";
  const usage = startUsage(ctx.pid, ctx.ticks);
  for (let b = 0; b < idleConns; b += idleBatch) {
    const batch = await Promise.allSettled(
      Array.from({ length: Math.min(idleBatch, idleConns - b) }, async (_, j) => {
        const i = b + j;
        const c = await openClient(ctx.port, `${ctx.tag}-i${i}`, proto, TIMEOUT_MS);
        clients.push(c);
        await subscribe(c, `idle/${i}`, 0, TIMEOUT_MS);
        return c;
      }),
    );
    for (const r of batch) {
      if (r.status === "rejected") {
        failed++;
        if (firstError === "") firstError = String(r.reason?.message ?? r.reason);
      }
    }
    if (failed > Math.max(10, idleConns / 100)) break; // broker refusing: stop, report what we have
  }
  const u = usage();
  const ok = clients.filter((c) => !c.closed && c.subacks.length > 0).length;
  await sleep(ctx.opts.settleMs);
  const rss1 = sampleTree(ctx.pid).rssKb;
  for (const c of clients) c.sock.destroy();
  if (firstError !== "") process.stderr.write(`    idle connections: ${failed} failed, first: ${firstError}\n`);
  return {
    conns: ok,
    failed,
    secs: u.wallMs / 1000,
    hps: (ok * 1000) / u.wallMs,
    // The broker's own CPU (its process tree, all threads) per handshake: less sensitive than hps to
    // what else runs on the machine. /proc ticks are 10 ms, so ±10 µs at 1,000 connections.
    cpuUsPerHs: ok > 0 ? (u.cpuBroker * u.wallMs * 10) / ok : Number.NaN,
    kbPerConn: ok > 0 ? (rss1 - rss0) / ok : Number.NaN,
    ...cpu(u),
  };
}

/** N retained messages (QoS 1, acknowledged in windows), RSS per message, then a replay to `ret/#`. */
async function retained(ctx: Ctx): Promise<Metrics> {
  const { retainedN: n, proto } = ctx.opts;
  const pub = await openClient(ctx.port, `${ctx.tag}-rpub`, proto, TIMEOUT_MS);
  let sub: Client | null = null;
  try {
    const win = Math.max(1, Math.min(100, pub.connack!.receiveMax));
    const payload = Buffer.alloc(PAYLOAD_BYTES, 0x72);
    await sleep(ctx.opts.settleMs);
    const rss0 = sampleTree(ctx.pid).rssKb;
    // Sliding window (a new PUBLISH per PUBACK), so Nagle/delayed-ACK stalls cannot serialise batches.
    let sent = 0;
    const topUp = () => {
      while (sent < n && sent - pub.pubacks < win) {
        pub.sock.write(encodePublish(`ret/${sent}`, payload, 1, true, (sent % 65535) + 1, proto));
        sent++;
      }
      return pub.pubacks >= n;
    };
    await waitFor(pub, topUp, 60_000, "retained publish");
    await sleep(ctx.opts.settleMs);
    const rss1 = sampleTree(ctx.pid).rssKb;
    const s = await openClient(ctx.port, `${ctx.tag}-rsub`, proto, TIMEOUT_MS);
    sub = s;
    const usage = startUsage(ctx.pid, ctx.ticks);
    s.sock.write(encodeSubscribe("ret/#", 0, 1, proto));
    await waitFor(s, () => s.retained >= n, 30_000, "retained replay");
    const u = usage();
    return {
      bytesPerMsg: ((rss1 - rss0) * 1024) / n,
      replayMs: u.wallMs,
      ...cpu(u),
    };
  } finally {
    closeClient(pub);
    if (sub !== null) closeClient(sub);
  }
}

/** Broker RSS at rest (fresh start, one handshake done) next to a bare node process. */
async function idleRss(ctx: Ctx): Promise<Metrics> {
  const usage = startUsage(ctx.pid, ctx.ticks);
  await sleep(ctx.opts.settleMs * 2);
  const rssKb = sampleTree(ctx.pid).rssKb;
  const u = usage();
  // At rest: V8 collects the start-up garbage (config parsing) only when its memory reducer runs,
  // ~10-20 s after the last allocation burst. Reported beside the first reading, not instead of it.
  let restKb = Number.NaN;
  if (ctx.opts.restMs > 0) {
    await sleep(ctx.opts.restMs);
    restKb = sampleTree(ctx.pid).rssKb;
  }
  const nodeKb = await bareNodeRssKb(ctx.reaper);
  return { mb: rssKb / 1024, mbRest: restKb / 1024, nodeMb: nodeKb / 1024, ...cpu(u) };
}

export const SCENARIOS: Scenario[] = [
  { id: "fanin0", title: "fan-in QoS 0 (4→1)", run: (c) => fanIn(c, 0) },
  { id: "fanin1", title: "fan-in QoS 1 (4→1)", run: (c) => fanIn(c, 1) },
  { id: "fanout", title: "fan-out QoS 0 (1→50)", run: fanOut },
  { id: "latency", title: "latency QoS 1", run: latency },
  { id: "idle", title: "idle connections", run: idleConnections },
  { id: "retained", title: "retained messages", run: retained },
  { id: "idlerss", title: "idle RSS", run: idleRss },
  { id: "durable1", title: "durable fan-in QoS 1 (4→1 persistent, persistence on)", durable: true, run: durableFanIn },
];

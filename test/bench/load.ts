// Throughput load for the benchmark (fan-in QoS 0/1, fan-out): spreads publishers and subscribers over
// worker threads (worker.ts), publishes for a fixed window, drains for at most `drainMs`, and counts
// deliveries and losses. Also measures generator CPU (process.cpuUsage covers every worker thread)
// next to the broker's (/proc utime+stime) over the same window, so the bottleneck is visible.
import { Worker } from "node:worker_threads";
import { machineBusyTicks, sampleTree, sleep } from "./targets.js";
import { countMissing, type Proto } from "./codec.js";
import type { ClientSpec, Cmd, PubReport, Reply, SubReport } from "./worker.js";

export interface ThroughputSpec {
  tag: string; // client-id prefix, unique per run
  pubs: number;
  subs: number;
  qos: 0 | 1;
  pubTopic: (i: number) => string;
  filter: string;
  warmupMs: number; // publishing before the window opens (JIT, buffers), not counted
  durationMs: number;
  drainMs: number;
  pubWorkers: number;
  subWorkers: number;
  window: number; // QoS 1 in-flight PUBLISHes per publisher (capped by the broker's Receive Maximum)
  highWater: number; // QoS 0: queued bytes per publisher socket before it waits for 'drain'
  persistentSubs?: boolean; // subscribers keep a session that outlives the connection (durable run)
}

/**
 * How the drain after the window ended: everything expected arrived; deliveries stopped for 500 ms
 * (what is missing is gone); or the time limit hit while deliveries were still arriving (lost may
 * include messages that were merely late).
 */
export type DrainEnd = "complete" | "stalled" | "cut";

export interface ThroughputResult {
  rate: number; // deliveries per second during the window, all subscribers together
  sent: number;
  expected: number; // QoS 0: sent × subs; QoS 1: acknowledged × subs
  received: number;
  lost: number;
  dupes: number;
  nacked: number;
  window: number;
  drain: DrainEnd;
  usage: Usage; // over the measured window
}

/** Wall time, generator, broker and whole-machine CPU around an async phase, as % of one core. */
export interface Usage {
  wallMs: number;
  cpuGen: number;
  cpuBroker: number;
  cpuMachine: number; // all processes and interrupts (loopback TCP work is partly accounted here only)
}
export function startUsage(brokerPid: number, ticksPerS: number): () => Usage {
  const t0 = process.hrtime.bigint();
  const g0 = process.cpuUsage();
  const b0 = sampleTree(brokerPid).cpuTicks;
  const m0 = machineBusyTicks();
  return () => {
    const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
    const g = process.cpuUsage(g0);
    const b = sampleTree(brokerPid).cpuTicks - b0;
    const m = machineBusyTicks() - m0;
    return {
      wallMs,
      cpuGen: ((g.user + g.system) / 1000 / wallMs) * 100,
      cpuBroker: ((b / ticksPerS) * 1000 * 100) / wallMs,
      cpuMachine: ((m / ticksPerS) * 1000 * 100) / wallMs,
    };
  };
}

interface Hosted {
  w: Worker;
  dead: string | null;
}

function call(h: Hosted, m: Cmd, timeoutMs: number): Promise<Reply> {
  return new Promise((resolve, reject) => {
    if (h.dead !== null) {
      reject(new Error(h.dead));
      return;
    }
    const cleanup = () => {
      clearTimeout(timer);
      h.w.off("message", onMsg);
      h.w.off("error", onErr);
      h.w.off("exit", onExit);
    };
    const onMsg = (r: Reply) => {
      cleanup();
      if (r.ev === "error") reject(new Error(`load worker: ${r.message}`));
      else resolve(r);
    };
    const onErr = (e: Error) => {
      cleanup();
      h.dead = `load worker crashed: ${e.message}`;
      reject(new Error(h.dead));
    };
    const onExit = () => {
      cleanup();
      h.dead = "load worker exited";
      reject(new Error(h.dead));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`load worker: no reply to ${m.cmd} within ${timeoutMs} ms`));
    }, timeoutMs);
    h.w.on("message", onMsg);
    h.w.once("error", onErr);
    h.w.once("exit", onExit);
    h.w.postMessage(m);
  });
}

async function reports(hs: Hosted[], bits: boolean): Promise<{ subs: SubReport[]; pubs: PubReport[] }> {
  const rs = await Promise.all(hs.map((h) => call(h, { cmd: "report", bits }, 10_000)));
  const subs: SubReport[] = [];
  const pubs: PubReport[] = [];
  for (const r of rs) {
    if (r.ev !== "report") continue;
    subs.push(...r.subs);
    pubs.push(...r.pubs);
  }
  return { subs, pubs };
}

function sum<T>(xs: T[], f: (x: T) => number): number {
  let s = 0;
  for (const x of xs) s += f(x);
  return s;
}

function split<T>(xs: T[], parts: number): T[][] {
  const out: T[][] = Array.from({ length: Math.max(1, Math.min(parts, xs.length)) }, () => []);
  for (const [i, x] of xs.entries()) out[i % out.length]!.push(x);
  return out;
}

/** Runs one throughput measurement against the broker on `port` (pid `brokerPid`). */
export async function runThroughput(
  port: number,
  proto: Proto,
  brokerPid: number,
  ticksPerS: number,
  s: ThroughputSpec,
): Promise<ThroughputResult> {
  const subSpecs: ClientSpec[] = Array.from({ length: s.subs }, (_, i) => ({
    id: `${s.tag}-s${i}`,
    role: "sub",
    topic: s.filter,
    qos: s.qos,
    pubId: 0,
    persistent: s.persistentSubs === true,
  }));
  const pubSpecs: ClientSpec[] = Array.from({ length: s.pubs }, (_, i) => ({
    id: `${s.tag}-p${i}`,
    role: "pub",
    topic: s.pubTopic(i),
    qos: s.qos,
    pubId: i,
  }));
  const groups = [...split(subSpecs, s.subWorkers), ...split(pubSpecs, s.pubWorkers)];
  const hosts: Hosted[] = groups.map(() => ({ w: new Worker(new URL("./worker.js", import.meta.url)), dead: null }));
  try {
    const setup = (i: number) =>
      call(
        hosts[i]!,
        { cmd: "setup", port, proto, clients: groups[i]!, highWater: s.highWater, window: s.window, pubs: s.pubs },
        30_000,
      );
    const nSubGroups = groups.length - split(pubSpecs, s.pubWorkers).length;
    // Subscribers first, so nothing published in the window is missed for lack of a subscription.
    await Promise.all(hosts.slice(0, nSubGroups).map((_, i) => setup(i)));
    await Promise.all(hosts.slice(nSubGroups).map((_, i) => setup(nSubGroups + i)));

    const started = Promise.all(
      hosts.map((h) => call(h, { cmd: "start", warmupMs: s.warmupMs, durationMs: s.durationMs }, s.durationMs + s.warmupMs + 15_000)),
    );
    await sleep(s.warmupMs);
    const usage = startUsage(brokerPid, ticksPerS);
    await started;
    const u = usage();

    // Drain: wait until everything expected has arrived, progress stops for 500 ms, or drainMs passes.
    const expectedOf = (pubs: PubReport[]) => s.subs * (s.qos === 0 ? sum(pubs, (p) => p.sent) : sum(pubs, (p) => p.acked));
    let last = -1;
    let still = 0;
    let drain: DrainEnd = "cut"; // unless everything arrived or deliveries stopped first
    const drainEnd = Date.now() + s.drainMs;
    for (let i = 0; i < 100 && Date.now() < drainEnd; i++) {
      const r = await reports(hosts, false);
      const got = sum(r.subs, (x) => x.received);
      const inflight = sum(r.pubs, (p) => p.inflight);
      const progress = got + inflight * 1e9;
      still = progress === last ? still + 1 : 0;
      last = progress;
      if (got >= expectedOf(r.pubs) && inflight === 0) {
        drain = "complete";
        break;
      }
      if (still >= 5) {
        drain = "stalled";
        break;
      }
      await sleep(100);
    }
    const r = await reports(hosts, s.qos === 1);
    const expected = expectedOf(r.pubs);
    const received = sum(r.subs, (x) => x.received);
    let lost = Math.max(0, expected - received);
    if (s.qos === 1) {
      // acknowledged to a publisher but never delivered: per subscriber, per publisher id
      lost = 0;
      for (const sub of r.subs) {
        for (const p of r.pubs) {
          lost += countMissing(p.bits ?? new Uint8Array(0), sub.bits?.[p.pubId] ?? new Uint8Array(0));
        }
      }
    }
    return {
      rate: sum(r.subs, (x) => (x.windowMs > 0 ? (x.windowCount * 1000) / x.windowMs : 0)),
      sent: sum(r.pubs, (p) => p.sent),
      expected,
      received,
      lost,
      dupes: sum(r.subs, (x) => x.dupes),
      nacked: sum(r.pubs, (p) => p.nacked),
      window: Math.max(0, ...r.pubs.map((p) => p.window)),
      drain,
      usage: u,
    };
  } finally {
    await Promise.all(hosts.map((h) => call(h, { cmd: "close" }, 3_000).catch(() => undefined)));
    await Promise.all(hosts.map((h) => h.w.terminate()));
  }
}

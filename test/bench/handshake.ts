// In-process handshake benchmark: N clients each do CONNECT → CONNACK → SUBSCRIBE → SUBACK against
// an embedded broker (createBroker, storage off, no auth, log level warn: the `npm run bench` hub
// config), over in-memory duplex pairs (default: no kernel, so the broker's own CPU dominates) or
// real loopback sockets. Connections stay open, like the `idle` scenario of broker.ts. Meant to be
// run under `node --cpu-prof` to see where a handshake's CPU goes; prints handshakes/s and process
// CPU per handshake (client work included: it is a few pre-encoded writes and a byte compare).
// `--prof FILE` writes a CPU profile (.cpuprofile, for Chrome DevTools) of the timed part of the
// last round only: warm-up rounds and broker teardown stay out of it. `--heap FILE` does the same
// with the sampling heap profiler (.heapprofile), counting garbage too: where the GC work comes from.
// Usage: node dist/test/bench/handshake.js [--n 20000] [--batch 100] [--mqtt 4|5] [--tcp] [--rounds 3] [--prof FILE]
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import net from "node:net";
import type { Duplex } from "node:stream";
import { brokerLimits } from "../../hub/app.js";
import { createBroker } from "../../hub/broker/broker.js";
import { systemClock } from "../../hub/clock.js";
import { configSchema } from "../../hub/config/schema.js";
import { createLogger } from "../../hub/log.js";
import { duplexPair } from "../support/duplex-pair.js";
import { encodeConnect, encodeSubscribe, type Proto } from "./codec.js";

interface Args {
  n: number;
  batch: number;
  proto: Proto;
  tcp: boolean;
  rounds: number;
  prof: string | null;
  heap: string | null;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { n: 20_000, batch: 100, proto: 5, tcp: false, rounds: 3, prof: null, heap: null };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    const v = () => Number.parseInt(argv[++i] ?? "", 10);
    if (k === "--n") a.n = Math.max(1, v() || 1);
    else if (k === "--batch") a.batch = Math.max(1, v() || 1);
    else if (k === "--mqtt") a.proto = v() === 4 ? 4 : 5;
    else if (k === "--tcp") a.tcp = true;
    else if (k === "--rounds") a.rounds = Math.max(1, v() || 1);
    else if (k === "--prof") a.prof = argv[++i] ?? null;
    else if (k === "--heap") a.heap = argv[++i] ?? null;
    else throw new Error(`unknown option ${k}`);
  }
  return a;
}

/** One client: writes CONNECT, then SUBSCRIBE on CONNACK, resolves on SUBACK. */
function handshake(sock: Duplex, connect: Buffer, subscribe: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    let stage = 0;
    sock.on("data", (chunk: Buffer) => {
      // Packets may arrive together over TCP: walk them by their fixed headers (all < 128 bytes).
      for (let off = 0; off + 1 < chunk.length; off += 2 + chunk[off + 1]!) {
        const type = chunk[off]! >> 4;
        if (stage === 0 && type === 2) {
          if (chunk[off + 3] !== 0) return reject(new Error(`CONNACK code ${chunk[off + 3]}`));
          stage = 1;
          sock.write(subscribe);
        } else if (stage === 1 && type === 9) {
          stage = 2;
          resolve();
        }
      }
    });
    sock.on("close", () => {
      if (stage < 2) reject(new Error("closed during handshake"));
    });
    sock.write(connect);
  });
}

async function round(args: Args, roundNo: number, prof: Session | null): Promise<{ hps: number; cpuUsPerHs: number }> {
  const limits = brokerLimits(configSchema.parse({}).broker.limits);
  limits.maxConnections = args.n + 10;
  const log = createLogger({ level: "warn", format: "text", write: (l) => process.stderr.write(`${l}\n`) });
  const broker = createBroker({
    limits,
    listeners: args.tcp ? [{ host: "127.0.0.1", port: 0 }] : [],
    sysIntervalMs: 0,
    version: "bench",
    clock: systemClock(),
    log,
  });
  await broker.start();
  const port = args.tcp ? broker.addresses()[0]!.port : 0;
  // Encoded before timing: the client side should cost next to nothing.
  const connects = Array.from({ length: args.n }, (_, i) => encodeConnect(`hs-${roundNo}-${i}`, args.proto));
  const subscribes = Array.from({ length: args.n }, (_, i) => encodeSubscribe(`idle/${i}`, 0, 1, args.proto));
  const socks: Duplex[] = [];
  const open = (): Promise<Duplex> => {
    if (!args.tcp) {
      const [client, server] = duplexPair();
      broker.accept(server as never);
      return Promise.resolve(client);
    }
    return new Promise((resolve, reject) => {
      const s = net.connect({ host: "127.0.0.1", port, noDelay: true }, () => resolve(s));
      s.once("error", reject);
    });
  };
  if (prof !== null) {
    if (args.prof !== null) {
      await prof.post("Profiler.setSamplingInterval", { interval: 100 });
      await prof.post("Profiler.start");
    }
    if (args.heap !== null) {
      await prof.post("HeapProfiler.startSampling", {
        samplingInterval: 512,
        includeObjectsCollectedByMajorGC: true,
        includeObjectsCollectedByMinorGC: true,
      });
    }
  }
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let b = 0; b < args.n; b += args.batch) {
    const jobs: Promise<void>[] = [];
    for (let i = b; i < Math.min(args.n, b + args.batch); i++) {
      jobs.push(
        open().then((s) => {
          socks.push(s);
          return handshake(s, connects[i]!, subscribes[i]!);
        }),
      );
    }
    await Promise.all(jobs);
  }
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  if (prof !== null && args.prof !== null) {
    const { profile } = await prof.post("Profiler.stop");
    writeFileSync(args.prof, JSON.stringify(profile));
  }
  if (prof !== null && args.heap !== null) {
    const { profile } = await prof.post("HeapProfiler.stopSampling");
    writeFileSync(args.heap, JSON.stringify(profile));
  }
  for (const s of socks) s.destroy();
  await broker.stop();
  // Let the teardown of 10^4 streams finish here, not inside the next round's timing.
  await new Promise((r) => setTimeout(r, 300));
  return { hps: (args.n * 1000) / ms, cpuUsPerHs: (cpu.user + cpu.system) / args.n };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  process.stdout.write(`handshakes: n=${args.n} batch=${args.batch} mqtt=${args.proto} transport=${args.tcp ? "tcp" : "duplex"}\n`);
  let session: Session | null = null;
  if (args.prof !== null || args.heap !== null) {
    session = new Session();
    session.connect();
    await session.post(args.prof !== null ? "Profiler.enable" : "HeapProfiler.enable");
  }
  for (let r = 0; r < args.rounds; r++) {
    const { hps, cpuUsPerHs } = await round(args, r, r === args.rounds - 1 ? session : null);
    process.stdout.write(`round ${r + 1}: ${hps.toFixed(0)} handshakes/s, ${cpuUsPerHs.toFixed(1)} µs CPU per handshake (whole process)\n`);
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});

// `npm run bench`: side-by-side MQTT broker benchmark, the hub's broker against Debian's mosquitto
// (issue "Embedded MQTT broker", item 8). Every scenario runs against a freshly started broker on a
// loopback port, N times per broker in alternating order; the medians go into a Markdown table.
// Usage: node dist/test/bench/broker.js [--quick] [--runs N] [--only fanin0,latency,...]
//          [--hub-cmd "<command with {port} and {dir}>" | --hub-cmd mosquitto] [--mqtt 4|5]
//          [--idle-conns N] [--drain-ms N (default 2000)] [--rest-ms N] [--latency-warm-ms N (default 3000)] [--out file.md]
// Needs ~idle-conns + 1000 file descriptors: run under `ulimit -n 65536`; the script re-execs itself
// with the soft limit raised as far as the hard limit allows.
import { execFileSync, spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import os from "node:os";
import { fileURLToPath } from "node:url";
import { renderCpu, renderTable, type Cell } from "./report.js";
import { type BenchOpts, type Metrics, SCENARIOS } from "./scenarios.js";
import {
  clockTicks,
  commitsFromLog,
  FSYNC_LABEL,
  FSYNC_METHOD,
  fsyncCounter,
  fsyncMode,
  killAllNow,
  machineBusyTicks,
  MOSQUITTO_NOTES,
  mosquittoPath,
  mosquittoVersion,
  type Reaper,
  sleep,
  startTarget,
  stopTarget,
  type TargetDef,
  WANT_NOFILE,
} from "./targets.js";

interface Args {
  quick: boolean;
  runs: number;
  only: string[] | null;
  hubCmd: string | null;
  proto: 4 | 5;
  idleConns: number | null;
  drainMs: number;
  restMs: number | null;
  latencyWarmMs: number | null;
  out: string | null;
}

const USAGE = `usage: broker.js [--quick] [--runs N] [--only ${SCENARIOS.map((s) => s.id).join(",")}]
                 [--hub-cmd "<cmd with {port} {dir}>"|mosquitto] [--mqtt 4|5] [--idle-conns N] [--drain-ms N] [--rest-ms N] [--latency-warm-ms N] [--out file.md]
env: BENCH_HUB_CMD is the same as --hub-cmd; BENCH_MOSQUITTO=<path> picks the reference binary ('none' skips it).`;

function parseArgs(argv: string[]): Args {
  const a: Args = {
    quick: false,
    runs: 3,
    only: null,
    hubCmd: process.env.BENCH_HUB_CMD ?? null,
    proto: 5,
    idleConns: null,
    drainMs: 2000,
    restMs: null,
    latencyWarmMs: null,
    out: null,
  };
  let runsGiven = false;
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    const v = () => {
      const x = argv[++i];
      if (x === undefined) throw new Error(`${k} needs a value\n${USAGE}`);
      return x;
    };
    if (k === "--quick") a.quick = true;
    else if (k === "--runs") {
      a.runs = Math.max(1, Math.min(50, Number.parseInt(v(), 10) || 1));
      runsGiven = true;
    } else if (k === "--only") a.only = v().split(",").filter((s) => s !== "");
    else if (k === "--hub-cmd") a.hubCmd = v();
    else if (k === "--mqtt") a.proto = v() === "4" ? 4 : 5;
    else if (k === "--idle-conns") a.idleConns = Math.max(1, Number.parseInt(v(), 10) || 1);
    else if (k === "--drain-ms") a.drainMs = Math.max(0, Math.min(60_000, Number.parseInt(v(), 10) || 0));
    else if (k === "--rest-ms") a.restMs = Math.max(0, Math.min(120_000, Number.parseInt(v(), 10) || 0));
    else if (k === "--latency-warm-ms") a.latencyWarmMs = Math.max(0, Math.min(60_000, Number.parseInt(v(), 10) || 0));
    else if (k === "--out") a.out = v();
    else if (k === "--help" || k === "-h") {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    } else throw new Error(`unknown option ${k}\n${USAGE}`);
  }
  if (a.quick && !runsGiven) a.runs = 1;
  const unknown = (a.only ?? []).filter((id) => !SCENARIOS.some((s) => s.id === id));
  if (unknown.length > 0) throw new Error(`unknown scenario ${unknown.join(",")}\n${USAGE}`);
  return a;
}

function nofile(): { soft: number; hard: number } {
  try {
    const [soft, hard] = execFileSync("bash", ["-c", "ulimit -Sn; ulimit -Hn"], { encoding: "utf8" }).trim().split("\n");
    const n = (s: string | undefined) => (s === "unlimited" ? 1 << 30 : Number(s) || 1024);
    return { soft: n(soft), hard: n(hard) };
  } catch {
    return { soft: 1024, hard: 1024 };
  }
}

/** Re-exec under a raised fd limit when needed; returns true if the child now does the work. */
function reexecIfNeeded(need: number): boolean {
  const { soft, hard } = nofile();
  if (soft >= need || process.env.BENCH_REEXEC === "1" || (hard <= soft && process.getuid?.() !== 0)) return false;
  const script = fileURLToPath(import.meta.url);
  const raise = `ulimit -n ${WANT_NOFILE} 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$0" "$@"`;
  const child = spawn("bash", ["-c", raise, process.execPath, ...process.execArgv, script, ...process.argv.slice(2)], {
    stdio: "inherit",
    env: { ...process.env, BENCH_REEXEC: "1" },
  });
  // ^C reaches the child too (same process group); it cleans up and we mirror its exit status.
  process.on("SIGINT", () => undefined);
  process.on("SIGTERM", () => child.kill("SIGTERM"));
  child.on("exit", (code, sig) => process.exit(code ?? (sig === "SIGINT" ? 130 : 1)));
  return true;
}

/** Whole-machine CPU use over `ms`, as % of one core. */
async function machineBusyPct(ticks: number, ms: number): Promise<number> {
  const b0 = machineBusyTicks();
  const t0 = Date.now();
  await sleep(ms);
  return ((machineBusyTicks() - b0) / ticks / ((Date.now() - t0) / 1000)) * 100;
}

function hubTarget(hubCmd: string | null, mosq: string | null): TargetDef {
  if (hubCmd === null) return { label: "hub", kind: "hub", cmd: null };
  if (hubCmd === "mosquitto") {
    if (mosq === null) throw new Error("--hub-cmd mosquitto: mosquitto is not installed");
    return { label: "hub", kind: "mosquitto", cmd: mosq };
  }
  return { label: "hub", kind: "cmd", cmd: hubCmd };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const wantIdle = args.idleConns ?? (args.quick ? 1000 : 10_000);
  if (reexecIfNeeded(wantIdle + 1000)) return;
  const { soft } = nofile();
  const idleConns = Math.max(1, Math.min(wantIdle, soft - 1000));
  const opts: BenchOpts = {
    proto: args.proto,
    warmupMs: args.quick ? 300 : 500,
    windowMs: args.quick ? 1000 : 3000,
    drainMs: args.drainMs,
    latencyMs: args.quick ? 2000 : 5000,
    latencyRate: 1000,
    // A fresh process: the hub's JIT is still compiling the message path during the first seconds
    // (at 300 ms its p99 was 3-4x the warm figure); both brokers get the same warm-up.
    latencyWarmMs: args.latencyWarmMs ?? (args.quick ? 1000 : 3000),
    idleConns,
    idleBatch: 100,
    retainedN: 10_000,
    pubWorkers: 2,
    settleMs: args.quick ? 500 : 1000,
    // idlerss at rest: V8's memory reducer runs ~10-20 s after start-up (0 in --quick unless asked).
    restMs: args.restMs ?? (args.quick ? 0 : 30_000),
  };

  const reaper: Reaper = { live: new Set() };
  process.on("exit", () => killAllNow(reaper));
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.on(sig, () => {
      process.stderr.write(`\n${sig}: stopping brokers\n`);
      killAllNow(reaper);
      process.exit(130);
    });
  }

  const mosq = mosquittoPath();
  const hub = hubTarget(args.hubCmd, mosq);
  const ref: TargetDef | null = mosq !== null ? { label: "mosquitto", kind: "mosquitto", cmd: mosq } : null;
  const ticks = clockTicks();
  const scenarios = SCENARIOS.filter((s) => args.only === null || args.only.includes(s.id));
  const fmode = scenarios.some((s) => s.durable === true) ? fsyncMode() : "none";
  const head: string[] = [
    `# Broker benchmark (${new Date().toISOString()})`,
    "",
    `- machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? "?"}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, node ${process.version}, MQTT ${args.proto === 5 ? "5.0" : "3.1.1"}, loopback`,
    `- hub: ${hub.kind === "hub" ? "node --max-semi-space-size=1 dist/bundle/hub.mjs run --config <tmp>/hub.yaml --simulate" : `${hub.kind === "mosquitto" ? "mosquitto (placeholder)" : hub.cmd}`}`,
    ref !== null
      ? `- reference: mosquitto ${mosquittoVersion(ref.cmd!)} (${ref.cmd})`
      : "- reference: SKIPPED — mosquitto not found (apt-get install mosquitto) or BENCH_MOSQUITTO=none",
    `- runs: ${args.runs} per broker, alternating order, medians reported; window ${opts.windowMs / 1000} s, drain ≤ ${opts.drainMs / 1000} s, ` +
      `latency ${opts.latencyMs / 1000} s @ ${opts.latencyRate}/s after ${opts.latencyWarmMs / 1000} s of warm-up, ${idleConns} idle connections, ${opts.retainedN} retained, 64-byte payloads`,
    `- fd limit: ${soft}${idleConns < wantIdle ? ` (too low for ${wantIdle} idle connections: reduced; run under ulimit -n ${WANT_NOFILE})` : ""}`,
  ];
  if (ref !== null || hub.kind === "mosquitto") head.push(...MOSQUITTO_NOTES.map((l) => `- ${l}`));
  if (fmode !== "none") {
    const how: Record<string, string> = {
      launch: "each broker runs under `strace -f --seccomp-bpf -e trace=fsync,fdatasync` (stops only at those calls); calls counted from the first PUBLISH to the end of the drain",
      attach: "`strace -f -e trace=fsync,fdatasync -p <pid>` attached for the load (every syscall stops in ptrace: both brokers run slower)",
      commits: "strace not installed: the hub's SQLite commits instead (from its store's shutdown log line); mosquitto not measured",
    };
    head.push(`- fsyncs (durable run): ${how[fmode]}`);
    if (fmode === "commits") process.stderr.write("strace not installed: counting the hub's SQLite commits instead of fsyncs\n");
  }
  process.stderr.write(`${head.join("\n")}\n\n`);

  const busy = await machineBusyPct(ticks, 1000);
  head.push(`- machine CPU in use by other processes just before the run: ${busy.toFixed(0)}% of one core`);
  process.stderr.write(`${head.at(-1)}\n`);
  if (busy > 25) process.stderr.write("  WARNING: the machine is busy; throughput and latency figures will be noisy\n");

  const t0 = Date.now();
  const results = new Map<string, Map<string, Cell>>();
  const dead = new Map<string, string>(); // target key → why it is no longer started
  const targets: [string, TargetDef | null][] = [
    ["hub", hub],
    ["ref", ref],
  ];
  for (const [si, sc] of scenarios.entries()) {
    const byT = new Map<string, Cell>();
    results.set(sc.id, byT);
    for (let run = 0; run < args.runs; run++) {
      const order = (si + run) % 2 === 0 ? targets : [...targets].reverse();
      for (const [key, def] of order) {
        if (def === null) continue;
        const cell = byT.get(key) ?? { runs: [], errors: [] };
        byT.set(key, cell);
        const why = dead.get(key);
        if (why !== undefined) {
          if (cell.errors.length === 0) cell.errors.push(why);
          continue;
        }
        const label = key === "hub" ? "hub" : def.label;
        const tRun = Date.now();
        let r: Awaited<ReturnType<typeof startTarget>>;
        try {
          r = await startTarget(def, reaper, args.proto, { durable: sc.durable === true, fsync: sc.durable === true ? fmode : "none" });
        } catch (e) {
          const msg = `could not start ${label}: ${(e as Error).message}`;
          process.stderr.write(`  ${msg}\n`);
          dead.set(key, msg);
          cell.errors.push(msg);
          continue;
        }
        let m: Metrics | undefined;
        try {
          m = await sc.run({ port: r.port, pid: r.pid, ticks, tag: `b${run}${key}`, opts, reaper, fsync: fsyncCounter(r) });
          if (r.exited) throw new Error(`${label} exited during the scenario: ${r.log.slice(-3).join(" | ")}`);
          cell.runs.push(m);
          const shown = Object.entries(m)
            .map(([k, v]) => `${k}=${Number.isInteger(v) ? v : v.toFixed(2)}`)
            .join(" ");
          const took = ((Date.now() - tRun) / 1000).toFixed(1);
          process.stderr.write(`  [${sc.id} ${run + 1}/${args.runs}] ${label} (${took} s): ${shown}\n`);
        } catch (e) {
          const died = r.exited ? ` (${label} exited: ${r.log.slice(-3).join(" | ")})` : "";
          const msg = `${sc.id} on ${label}: ${(e as Error).message}${died}`;
          process.stderr.write(`  ${msg}\n`);
          cell.errors.push(msg);
        } finally {
          await stopTarget(r, reaper);
        }
        if (m !== undefined && sc.durable === true && fmode === "commits" && def.kind === "hub") {
          // The hub's store logs its commit count when it closes the file (at SIGTERM).
          m.fsyncs = commitsFromLog(r);
          m.fsyncPer1k = (m.fsyncs * 1000) / (m.expected ?? Number.NaN);
          m.fsyncMethod = FSYNC_METHOD.commits;
          process.stderr.write(`    ${label}: ${m.fsyncs} SQLite commits (${FSYNC_LABEL[FSYNC_METHOD.commits]})\n`);
        }
      }
    }
  }
  const secs = (Date.now() - t0) / 1000;
  const titles = new Map(SCENARIOS.map((s) => [s.id, s.title]));
  const md = [
    ...head,
    "",
    renderTable(results, "mosquitto", ref !== null),
    "",
    renderCpu(results, titles, "mosquitto"),
    "",
    `Total time: ${secs.toFixed(0)} s.`,
    "",
  ].join("\n");
  process.stdout.write(`\n${md}`);
  if (args.out !== null) writeFileSync(args.out, md);
}

main().catch((e) => {
  process.stderr.write(`bench failed: ${(e as Error).stack ?? e}\n`);
  process.exitCode = 1;
});
